from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise

from chaton.core import registry


@dataclass(frozen=True)
class NavLink:
    """A link of a navigation bar, as a page shows it."""

    label: str | Promise
    url: str
    #: Whether the page shown is this link's (``aria-current="page"``).
    current: bool


def _links(request: HttpRequest, *, admin_only: bool) -> list[NavLink]:
    match = request.resolver_match
    current = (match.url_name if match is not None else None) or ""
    return [NavLink(entry.label, reverse(entry.url_name), entry.is_current(current))
            for entry in registry.nav_entries(admin_only=admin_only)]


def chaton(request: HttpRequest) -> dict[str, object]:
    """Template context every page gets: the collective's name, and the navigation bars
    that the installed apps declare (``nav_account`` for a signed-in account,
    ``nav_admin`` for an administrator; empty for others)."""
    user = getattr(request, "user", None)
    signed_in = bool(user is not None and user.is_authenticated)
    return {
        "collective_name": settings.CHATON.collective_name,
        "nav_account": _links(request, admin_only=False) if signed_in else [],
        "nav_admin": (_links(request, admin_only=True)
                      if signed_in and getattr(user, "is_admin", False) else []),
    }
