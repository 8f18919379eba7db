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

from chaton.core.worker import JobResult, Schedule
from chaton.monitoring.cycle import run_cycle
from chaton.monitoring.rollups import prune, roll_up_all

logger = logging.getLogger("chaton.monitoring")

LONG_JOBS = frozenset({"monitoring.cycle", "monitoring.rollup"})
CYCLE_SECONDS = 10
ROLLUP_SECONDS = 10 * 60


def cycle() -> JobResult | None:
    """Run one monitoring cycle; reported only when an incident opened or resolved (the
    routine checks are logged, not reported at every tick)."""
    report = run_cycle()
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
    return JobResult("monitoring.rollup", f"{written} roll-up(s) written, {pruned} raw "
                     f"result(s) pruned")


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    due: list[tuple[str, Callable[[], JobResult | None]]] = []
    if schedule.is_due("monitoring.cycle", CYCLE_SECONDS):
        schedule.mark("monitoring.cycle")
        due.append(("monitoring.cycle", cycle))
    if schedule.is_due("monitoring.rollup", ROLLUP_SECONDS):
        schedule.mark("monitoring.rollup")
        due.append(("monitoring.rollup", rollup))
    return due
