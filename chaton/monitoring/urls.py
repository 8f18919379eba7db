from django.urls import path

from chaton.monitoring import views

urlpatterns = [
    path("monitoring/", views.probe_list, name="monitoring-probes"),
]
