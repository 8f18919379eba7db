"""The monitoring pages (administrators only)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chaton.core.views import admin_required


@admin_required
def probe_list(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/probe_list.html", {})
