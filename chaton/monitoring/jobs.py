"""The worker's monitoring jobs, both in the long lane (the directory's sync, the expiries
and the decisions never wait for them).

- ``monitoring.cycle`` every :data:`CYCLE_SECONDS`: the reconcile, then the probes whose
  turn has come (each at its own interval).
- ``monitoring.rollup`` every :data:`ROLLUP_SECONDS`: hours and days rolled up, raw
  results older than ``monitoring.raw_hours`` pruned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.utils.translation import gettext as _

from chaton.core.worker import JobResult, Schedule
from chaton.monitoring.cycle import CYCLE_LOCK, run_cycle
from chaton.monitoring.rollups import prune, roll_up_all

logger = logging.getLogger("chaton.monitoring")

LONG_JOBS = frozenset({CYCLE_LOCK, "monitoring.rollup"})
CYCLE_SECONDS = 10
ROLLUP_SECONDS = 10 * 60


def cycle() -> JobResult | None:
    """Run one monitoring cycle; reported only when an incident opened or resolved (the
    routine checks are logged, not reported at every tick)."""
    # The worker holds the lock named after the job (CYCLE_LOCK) around it: either lane.
    report = run_cycle(lock=False)
    logger.debug("monitoring.cycle: %s", report.summary())
    if not report.opened and not report.resolved:
        return None
    return JobResult("monitoring.cycle", report.summary())


def rollup() -> JobResult | None:
    """Roll up the finished hours and days, prune old raw results."""
    written = roll_up_all()
    pruned = prune()
    if not written and not pruned:
        return None
    return JobResult("monitoring.rollup", _("%(written)d roll-up(s) written, %(pruned)d raw "
                                            "result(s) pruned") % {"written": written,
                                                                    "pruned": pruned})


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    due: list[tuple[str, Callable[[], JobResult | None]]] = []
    if schedule.is_due(CYCLE_LOCK, CYCLE_SECONDS):
        schedule.mark(CYCLE_LOCK)
        due.append((CYCLE_LOCK, cycle))
    if schedule.is_due("monitoring.rollup", ROLLUP_SECONDS):
        schedule.mark("monitoring.rollup")
        due.append(("monitoring.rollup", rollup))
    return due
