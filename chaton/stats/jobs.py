"""The worker's statistics job, in the long lane.

``stats.collect``: checked every hour; once a day it collects the day before
(complete by then) — every instance, the collective's figures, the access log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.worker import JobResult, Schedule
from chaton.stats.actions import do_collect
from chaton.stats.models import CHATON, Sample

LONG_JOBS = frozenset({"stats.collect"})
CHECK_SECONDS = 60 * 60


def collect() -> JobResult | None:
    """Collect yesterday's figures unless they are in already."""
    day = clock.today() - dt.timedelta(days=1)
    if Sample.objects.filter(figure="chaton.members", subject=CHATON, day=day).exists():
        return None
    result = do_collect(day=day, acting_user=None)
    message = _("%(samples)d sample(s) for %(day)s, %(gaps)d gap(s)") % {
        "samples": result.samples, "day": day.isoformat(), "gaps": len(result.gaps)}
    return JobResult("stats.collect", message)


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    if schedule.is_due("stats.collect", CHECK_SECONDS):
        schedule.mark("stats.collect")
        return [("stats.collect", collect)]
    return []
