from django.urls import path

from chaton.stats import views

urlpatterns = [
    path("stats/", views.overview, name="stats-overview"),
    path("stats/export.csv", views.export, name="stats-export"),
]
