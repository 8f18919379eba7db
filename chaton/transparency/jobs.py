from collections.abc import Callable

from chaton.core.worker import JobResult, Schedule

LONG_JOBS: frozenset[str] = frozenset()


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    return []
