"""A session whose account has an authenticator is not fully open until the code is typed.

Installed after django-otp's ``OTPMiddleware``: a person who logged in with
their password and has a confirmed authenticator is sent to the second step
for every page but that step, logging out, switching language and static
files. The API authenticates with tokens, not sessions, and is left alone.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from chaton.core import queries as core_queries
from chaton.security import queries

#: Paths a half-logged-in session may still reach.
_OPEN_PREFIXES = ("/static/", "/i18n/", "/api/", "/logout/", "/login/")


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (user.is_authenticated and not request.path.startswith(_OPEN_PREFIXES)
                and not core_queries.passed_second_factor(user)
                and queries.has_second_factor(user)):
            target = reverse("two-factor-verify")
            return HttpResponseRedirect(
                f"{target}?{urllib.parse.urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
