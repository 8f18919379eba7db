"""The retired private keys Chaton publishes, and whether each is reachable at its URL.

A key is published once revealed, while its domain's members' decision stands, at
``<public_url>/.well-known/dkim/<sha256 of p= hex>.pem``. :func:`check` fetches each one as
the world would and compares what comes back with the key.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from django.conf import settings

from chaton.mail import keys
from chaton.mail.models import DkimKey, KeyState


@dataclass(frozen=True)
class Published:
    """One published key: where it is, and whether it answered with the right key."""

    domain: str
    selector: str
    url: str
    reachable: bool
    detail: str


def published_keys(domain_name: str | None = None) -> list[DkimKey]:
    """Return the revealed keys of the domains that publish them (of ``domain_name`` only
    when given), by domain and date."""
    found = (DkimKey.objects.select_related("domain")
             .filter(state=KeyState.REVEALED, domain__publish_retired_keys=True))
    if domain_name:
        found = found.filter(domain__name=domain_name)
    return list(found.order_by("domain__name", "revealed_at", "id"))


def url_of(key: DkimKey) -> str:
    return f"{settings.CHATON.resolved_public_url}/.well-known/dkim/{key.published_name}.pem"


def check(found: list[DkimKey], *, timeout: float = 5.0) -> list[Published]:
    """Fetch each key at its public URL; never raise (an unreachable one says why)."""
    rows = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for key in found:
            url = url_of(key)
            try:
                response = client.get(url)
            except httpx.HTTPError as error:
                rows.append(Published(key.domain.name, key.selector, url, False,
                                      str(error) or type(error).__name__))
                continue
            if response.status_code != 200:
                rows.append(Published(key.domain.name, key.selector, url, False,
                                      f"HTTP {response.status_code}"))
                continue
            try:
                same = keys.public_key_of(response.text) == key.public_key
            except ValueError:
                same = False
            rows.append(Published(key.domain.name, key.selector, url, same,
                                  "" if same else "another key, or not a key"))
    return rows
