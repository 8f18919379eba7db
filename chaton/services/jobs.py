"""The services jobs of the worker (see :mod:`chaton.core.worker`)."""

from __future__ import annotations

from collections.abc import Callable

from chaton.core.worker import JobResult, Schedule


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    """Given the worker's schedule, return the services jobs due now."""
    return []
