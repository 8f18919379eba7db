"""The public pages of monitoring (no login) and the overview that administrators land on."""

from django.urls import path

from chaton.monitoring import overview, public

urlpatterns = [
    path("status/", public.status_page, name="status"),
    path("status.json", public.status_json, name="status-json"),
    path("status/feed.atom", public.status_feed, name="status-feed"),
    path("metrics", public.metrics, name="metrics"),
    path("overview/", overview.overview, name="overview"),
]
