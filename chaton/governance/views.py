"""The governance pages (to be filled)."""

from django.http import HttpRequest, HttpResponse


def decision_list(request: HttpRequest) -> HttpResponse:
    return HttpResponse("")


def decision_new(request: HttpRequest) -> HttpResponse:
    return HttpResponse("")


def decision_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("")
