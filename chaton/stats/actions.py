"""Every write of statistics: a collection (by the worker, the CLI or an administrator)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.db import transaction

from chaton.core import audit, clock
from chaton.core.errors import InvalidInput
from chaton.stats.collect import Collection, collect_day
from chaton.stats.models import CHATON, Sample

if TYPE_CHECKING:
    from chaton.directory.models import Account


def do_collect(*, day: dt.date | None = None, acting_user: Account | None,
               **options: Any) -> Collection:
    """Collect the figures of ``day`` (default: today) and record it in the audit log.

    A collector that fails leaves a gap (``Collection.gaps``), not an error. A
    day in the future is refused.
    """
    day = day or clock.today()
    if day > clock.today():
        raise InvalidInput("A day to come has no figures yet.", field="day")
    result = collect_day(day, **options)
    with transaction.atomic():
        target = Sample.objects.filter(figure="chaton.members", subject=CHATON, day=day).first()
        if target is not None:
            audit.record("stats.collect", target, acting_user=acting_user,
                         after={"day": day.isoformat(), "samples": result.samples,
                                "gaps": sorted(result.gaps), "requests": result.requests})
    return result
