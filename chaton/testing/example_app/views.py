from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def page(request: HttpRequest) -> HttpResponse:
    """The example app's one page."""
    return render(request, "example/page.html")
