from django.urls import include, path

from chaton.monitoring import views

urlpatterns = [
    # The status page, /metrics and the administrators' overview.
    path("", include("chaton.monitoring.public_urls")),
    path("monitoring/", views.probe_list, name="monitoring-probes"),
]
