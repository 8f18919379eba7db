"""URL map: the web pages of each app and the API."""

from django.urls import include, path

from chaton.project.api import api

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("", include("chaton.core.urls")),
    path("", include("chaton.security.urls")),
    path("", include("chaton.members.urls")),
    path("", include("chaton.directory.urls")),
    path("", include("chaton.governance.urls")),
    path("", include("chaton.backups.urls")),
    path("", include("chaton.services.urls")),
]
