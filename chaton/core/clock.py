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


def end_of_day(day: dt.date | None) -> dt.datetime | None:
    """Given the last day of an access, return the moment it ends (midnight after it, local
    time); None stays None (for good)."""
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))


def last_day(moment: dt.datetime | None) -> dt.date | None:
    """The inverse of :func:`end_of_day`: the last day an access ending at ``moment`` lasts."""
    if moment is None:
        return None
    return timezone.localtime(moment - dt.timedelta(microseconds=1)).date()


def travel(offset: dt.timedelta) -> None:
    """Shift the clock by ``offset`` (tests and drills only); ``timedelta(0)`` resets it."""
    global _offset
    _offset = offset
