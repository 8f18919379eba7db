"""The services pages."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
