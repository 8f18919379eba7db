"""The reverse proxy: Caddy's routes from the instances' domains (to be filled)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """One domain served over HTTPS, proxied to ``upstream`` (``host:port``)."""

    domain: str
    upstream: str


def sync_proxy(routes: Sequence[Route], *, dry_run: bool = False) -> list[str]:
    """Given every route that must exist, make Caddy serve exactly those; return the changes."""
    return []
