"""The governance pages."""

from django.urls import path

from chaton.governance import views

urlpatterns = [
    path("decisions/", views.decision_list, name="decision-list"),
    path("decisions/new/", views.decision_new, name="decision-new"),
    path("decisions/<int:pk>/", views.decision_detail, name="decision-detail"),
]
