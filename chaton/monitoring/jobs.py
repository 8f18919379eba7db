"""The worker's monitoring jobs, both in the long lane (the directory's sync, the expiries
and the decisions never wait for them).

- ``monitoring.cycle`` every :data:`CYCLE_SECONDS`: the reconcile, then the probes whose
  turn has come (each at its own interval).
- ``monitoring.rollup`` every :data:`ROLLUP_SECONDS`: hours and days rolled up, raw
  results older than ``monitoring.raw_hours`` pruned.
"""

from __future__ import annotations

from collections.abc import Callable

from chaton.core.worker import JobResult, Schedule

LONG_JOBS = frozenset({"monitoring.cycle", "monitoring.rollup"})
CYCLE_SECONDS = 10
ROLLUP_SECONDS = 10 * 60


def cycle() -> JobResult | None:
    """Run one monitoring cycle; None (not reported) when no probe was due."""
    from chaton.monitoring.cycle import run_cycle

    report = run_cycle()
    if not report.checked and not report.reconciled:
        return None
    return JobResult("monitoring.cycle", report.summary(),
                     ok=not report.opened)


def rollup() -> JobResult | None:
    """Roll up the finished hours and days, prune old raw results."""
    from chaton.monitoring.rollups import prune, roll_up_all

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
