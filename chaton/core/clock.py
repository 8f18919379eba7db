"""The one place Chaton asks what time it is, and what day an instant falls on.

Days are the collective's days: every conversion from an instant to a date
goes through :func:`local_day`, in the collective's time zone (``time_zone``
in ``chaton.toml``, which is Django's ``TIME_ZONE``), never the server's nor
UTC's. Its inverses are :func:`start_of_day` and :func:`end_of_day`.

Django is imported only where the collective's zone or "now" is needed, so
that ``chaton ssh-keys`` (no Django) converts days with these same functions,
passing the zone it read from the configuration.
"""

from __future__ import annotations

import datetime as dt

_offset = dt.timedelta(0)


def collective_zone() -> dt.tzinfo:
    """Return the collective's time zone (Django's ``TIME_ZONE``, never a user's active one)."""
    from django.utils import timezone

    return timezone.get_default_timezone()


def now() -> dt.datetime:
    """Return the current aware datetime (shifted by :func:`travel` in tests)."""
    from django.utils import timezone

    return timezone.now() + _offset


def local_day(moment: dt.datetime, zone: dt.tzinfo | None = None) -> dt.date:
    """Given an aware instant, return the day it falls on in ``zone`` (default: the collective's).

    Raise ValueError for a naive datetime: it names no instant, so no day.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime names no instant: give an aware one")
    return moment.astimezone(zone or collective_zone()).date()


def today() -> dt.date:
    """Return the collective's current day."""
    return local_day(now())


def start_of_day(day: dt.date, zone: dt.tzinfo | None = None) -> dt.datetime:
    """Given a day, return the instant it begins in ``zone`` (default: the collective's)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone or collective_zone())


def end_of_day(day: dt.date | None) -> dt.datetime | None:
    """Given the last day of an access, return the moment it ends (midnight after it, local
    time); None stays None (for good)."""
    if day is None:
        return None
    return start_of_day(day + dt.timedelta(days=1))


def last_day(moment: dt.datetime | None) -> dt.date | None:
    """The inverse of :func:`end_of_day`: the last day an access ending at ``moment`` lasts."""
    if moment is None:
        return None
    return local_day(moment - dt.timedelta(microseconds=1))


def first_day_after(moment: dt.datetime, zone: dt.tzinfo | None = None) -> dt.date:
    """Given the instant an access ends, return the first day it no longer covers at all.

    An access ending at midnight gives the day that midnight begins; one ending
    during a day gives the next day. This is ``shadowExpire``'s day.
    """
    return local_day(moment - dt.timedelta(microseconds=1), zone) + dt.timedelta(days=1)


def travel(offset: dt.timedelta) -> None:
    """Shift the clock by ``offset`` (tests and drills only); ``timedelta(0)`` resets it."""
    global _offset
    _offset = offset
