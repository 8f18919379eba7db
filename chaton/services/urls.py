"""The services pages, under /services/."""

from django.urls import path

from chaton.services import views

urlpatterns = [
    path("services/", views.overview, name="service-overview"),
    path("services/diagram.svg", views.diagram_svg, name="service-diagram"),
    path("services/root.crt", views.root_certificate, name="service-root-certificate"),
    path("services/catalog/", views.catalog_list, name="service-catalog"),
    path("services/images/", views.images, name="service-images"),
    path("services/plan/", views.plan, name="service-plan"),
    path("services/hosts/new/", views.host_create, name="service-host-create"),
    path("services/instances/new/", views.instance_create, name="service-instance-create"),
    path("services/instances/<slug:slug>/", views.instance_detail, name="service-instance"),
    path("services/instances/<slug:slug>/settings/", views.instance_settings,
         name="service-instance-settings"),
    path("services/instances/<slug:slug>/upgrade/", views.instance_upgrade,
         name="service-instance-upgrade"),
    path("services/instances/<slug:slug>/remove/", views.instance_remove,
         name="service-instance-remove"),
]
