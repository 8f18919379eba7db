"""The governance pages."""

from django.urls import path

from chaton.governance import views

urlpatterns = [
    path("decisions/", views.decision_list, name="decision-list"),
    path("decisions/new/", views.decision_new, name="decision-new"),
    path("decisions/export/", views.decision_export, name="decision-export"),
    path("decisions/policy/", views.decision_policy, name="decision-policy"),
    path("decisions/<int:pk>/", views.decision_detail, name="decision-detail"),
    path("decisions/<int:pk>/vote/", views.decision_vote, name="decision-vote"),
    path("decisions/<int:pk>/withdraw/", views.decision_withdraw, name="decision-withdraw"),
    path("decisions/<int:pk>/contest/", views.decision_contest, name="decision-contest"),
    path("decisions/<int:pk>/operations/<int:position>/retry/", views.decision_retry,
         name="decision-retry"),
]
