"""The worker's job of the transparency app: the software list, drawn up once a year."""

from __future__ import annotations

from collections.abc import Callable

from chaton.core import clock
from chaton.core.worker import JobResult, Schedule

#: Reading the hosts' packages runs dpkg-query: the long lane.
LONG_JOBS: frozenset[str] = frozenset({"transparency.software"})


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    """The software list is due when the newest one is from an earlier year, or there is none."""
    if not schedule.is_due("transparency.software", 3600):
        return []
    schedule.mark("transparency.software")
    return [("transparency.software", refresh_if_new_year)]


def refresh_if_new_year() -> JobResult | None:
    """Draw up this year's software list if it is not drawn up yet; None when it is."""
    from chaton.transparency import actions, queries

    latest = queries.latest_software_list()
    if latest is not None and latest.year >= clock.today().year:
        return None
    row = actions.do_refresh_software_list(acting_user=None)
    return JobResult("transparency.software",
                     f"software list {row.year}: {len(row.entries)} entries")
