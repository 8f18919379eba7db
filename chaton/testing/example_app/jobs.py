from collections.abc import Callable

from chaton.core.worker import JobResult, Schedule

#: None of its jobs is long.
LONG_JOBS: frozenset[str] = frozenset()


def _ping() -> JobResult:
    return JobResult("example.ping", "the example app's job ran")


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    """Given the worker's schedule, return the example job: due once an hour, and counted
    in this module's own part of the schedule."""
    if not schedule.is_due("example.ping", 3600):
        return []
    schedule.mark("example.ping")
    state = schedule.state.setdefault("example", {})
    state["runs"] = state.get("runs", 0) + 1
    return [("example.ping", _ping)]
