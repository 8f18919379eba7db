"""The one place Chaton asks what time it is, so tests can move time forward."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

_offset = dt.timedelta(0)


def now() -> dt.datetime:
    """Return the current aware datetime (shifted by :func:`travel` in tests)."""
    return timezone.now() + _offset


def today() -> dt.date:
    """Return the current local date."""
    return timezone.localdate(now())


def travel(offset: dt.timedelta) -> None:
    """Shift the clock by ``offset`` (tests and drills only); ``timedelta(0)`` resets it."""
    global _offset
    _offset = offset
