"""Throttles: refuse an attempt once too many were counted for the same thing in a while.

A :class:`Limit` allows ``attempts`` counted events within ``window`` for one
value (a user name, a network address, an account) in one ``scope``. When an
event is the one that reaches the limit, that value is refused for
``lockout`` from then on. A caller asks before the attempt, counts after::

    wait = throttle.retry_after(throttle.LOGIN_PER_USER_NAME, user_name)
    if wait is not None:
        ...  # refuse, saying "try again in throttle.minutes(wait) minutes"
    if failed:
        throttle.hit(throttle.LOGIN_PER_USER_NAME, user_name)
    else:
        throttle.clear(throttle.LOGIN_PER_USER_NAME, user_name)

Refused attempts are not counted: the lockout ends on time, and the table
holds at most ``attempts`` rows per value and window.

Why database rows (:class:`chaton.core.models.ThrottleEvent`) and not a
cache: every web server thread and every worker process must see the same
count, and Chaton's only store shared by all of them is its database. Django's
database cache would do, but it needs its own table created by hand
(``createcachetable``) and its ``incr`` reads then writes, so two processes
can lose a count; an insert per event cannot, and its rows give the exact
times a sliding window needs. Old rows are deleted as new ones are written.

Two requests racing on the same value may both pass the check before either
is counted: a limit can be overshot by the number of requests in flight at
that instant, never more.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from chaton.core import clock
from chaton.core.models import ThrottleEvent

#: Rows older than this are deleted; every limit's window plus lockout must fit in it.
RETENTION = dt.timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` events per value within ``window``, then ``lockout`` refused.

    ``scope`` names what is counted; two limits with the same scope share their
    counts. ``lockout`` defaults to ``window``.
    """

    scope: str
    attempts: int
    window: dt.timedelta
    lockout: dt.timedelta | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"throttle {self.scope}: attempts must be at least 1")
        if self.window + self.refusal > RETENTION:
            raise ValueError(f"throttle {self.scope}: window and lockout exceed {RETENTION}")

    @property
    def refusal(self) -> dt.timedelta:
        """How long a value is refused once it reached the limit."""
        return self.lockout if self.lockout is not None else self.window


# -- the limits Chaton applies ---------------------------------------------------

#: Failed logins for one user name (whether or not such an account exists).
LOGIN_PER_USER_NAME = Limit("login-user", attempts=10, window=dt.timedelta(minutes=15))
#: Failed logins from one network address, whatever the user names.
LOGIN_PER_ADDRESS = Limit("login-address", attempts=50, window=dt.timedelta(minutes=15))
#: Password-reset mails to one account, so the form cannot flood a mailbox.
RESET_MAILS_PER_ACCOUNT = Limit("reset-account", attempts=5, window=dt.timedelta(hours=1))
#: Password-reset requests from one network address, whatever they name.
RESET_REQUESTS_PER_ADDRESS = Limit("reset-address", attempts=20, window=dt.timedelta(hours=1))


def _key(limit: Limit, value: str) -> str:
    """Return the stored key of ``value`` under ``limit``: its scope and a keyed hash.

    Hashed so the table never holds what people typed (a password typed as
    user name, say); keyed with SECRET_KEY so a hashed address cannot be
    reversed by trying every address.
    """
    digest = salted_hmac("chaton.core.throttle", value.strip().casefold(),
                         algorithm="sha256").hexdigest()
    return f"{limit.scope}:{digest}"


def retry_after(limit: Limit, value: str) -> dt.timedelta | None:
    """Given a limit and a value, return how long the value is still refused, or None.

    None means the attempt may go on. User names and emails are compared
    without case or surrounding spaces.
    """
    now = clock.now()
    moments = list(
        ThrottleEvent.objects.filter(key=_key(limit, value),
                                     at__gt=now - limit.window - limit.refusal)
        .order_by("at").values_list("at", flat=True))
    locked_until: dt.datetime | None = None
    # moments[index] reaches the limit when it and the attempts - 1 before it fit in the window.
    for index in range(limit.attempts - 1, len(moments)):
        if moments[index] - moments[index - limit.attempts + 1] <= limit.window:
            locked_until = moments[index] + limit.refusal
    if locked_until is None or locked_until <= now:
        return None
    return locked_until - now


def hit(limit: Limit, value: str) -> None:
    """Count one event for ``value`` under ``limit`` (now), and delete rows past RETENTION."""
    now = clock.now()
    ThrottleEvent.objects.filter(at__lt=now - RETENTION).delete()
    ThrottleEvent.objects.create(key=_key(limit, value), at=now)


def clear(limit: Limit, value: str) -> None:
    """Forget every event counted for ``value`` under ``limit`` (a login that succeeded)."""
    ThrottleEvent.objects.filter(key=_key(limit, value)).delete()


def minutes(wait: dt.timedelta) -> int:
    """Given a wait from :func:`retry_after`, return it in whole minutes, rounded up (≥ 1)."""
    return max(1, math.ceil(wait.total_seconds() / 60))


def client_address(request: HttpRequest) -> str:
    """Given a request, return the network address the per-address limits count it under.

    That is ``REMOTE_ADDR``, unless it is one of ``settings.TRUSTED_PROXIES``
    (a reverse proxy in front of Chaton): then the nearest address in
    ``X-Forwarded-For`` that is not a trusted proxy. The header is never read
    otherwise, since a client can write anything in it. An IPv6 address counts
    as its /64 network, because one machine is commonly given a whole /64.
    """
    trusted = set(getattr(settings, "TRUSTED_PROXIES", ()))
    address = str(request.META.get("REMOTE_ADDR", ""))
    if address in trusted:
        forwarded = [hop.strip() for hop in
                     str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
        for hop in reversed([hop for hop in forwarded if hop]):
            address = hop
            if hop not in trusted:
                break
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)
