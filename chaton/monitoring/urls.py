from django.urls import include, path

from chaton.monitoring import views

urlpatterns = [
    # The status page, /metrics and the administrators' overview.
    path("", include("chaton.monitoring.public_urls")),
    path("monitoring/", views.probe_list, name="monitoring-probes"),
    path("monitoring/probes/add/", views.probe_add, name="monitoring-probe-add"),
    path("monitoring/probes/<str:key>/", views.probe_detail, name="monitoring-probe"),
    path("monitoring/probes/<str:key>/delete/", views.probe_delete,
         name="monitoring-probe-delete"),
    path("monitoring/incidents/", views.incident_list, name="monitoring-incidents"),
    path("monitoring/incidents/<int:incident_id>/", views.incident_detail,
         name="monitoring-incident"),
    path("monitoring/maintenance/", views.maintenance_list, name="monitoring-maintenance"),
    path("monitoring/maintenance/<int:window_id>/delete/", views.maintenance_delete,
         name="monitoring-maintenance-delete"),
    path("monitoring/test-alert/", views.test_alert, name="monitoring-test-alert"),
]
