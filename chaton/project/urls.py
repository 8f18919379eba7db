"""URL map: the API, then the web pages of each installed app (its ``AppConfig.urls``)."""

from django.urls import include, path

from chaton.core import registry
from chaton.project.api import api

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    *(path("", include(module)) for module in registry.url_modules()),
]
