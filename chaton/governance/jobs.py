"""The governance jobs of the worker (see :mod:`chaton.core.worker`), at every tick:

- ``governance.settle``: close the ballots whose outcome is known;
- ``governance.execute``: run the operations of adopted decisions, undo cancelled ones;
- ``governance.remind``: remind the voters who have not voted, before a deadline.

All three are cheap when there is nothing to do (a few indexed queries), and
then report nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chaton.core.worker import JobResult, Schedule


def _settle() -> JobResult | None:
    from chaton.governance.actions import settle_ballots

    closed = settle_ballots()
    if not closed:
        return None
    return JobResult("governance.settle", ngettext("%(count)d ballot closed",
                                                   "%(count)d ballots closed", len(closed))
                     % {"count": len(closed)})


def _execute() -> JobResult | None:
    from chaton.governance.actions import execute_decisions
    from chaton.governance.models import OperationStatus

    handled = execute_decisions()
    if not handled:
        return None
    failed = [row for row in handled
              if row.status in (OperationStatus.FAILED, OperationStatus.NOT_REVERTED)]
    return JobResult("governance.execute",
                     _("%(handled)d operation(s) run or reverted, %(failed)d failed")
                     % {"handled": len(handled), "failed": len(failed)}, ok=not failed)


def _remind() -> JobResult | None:
    from chaton.governance.actions import send_reminders

    reminded = send_reminders()
    if not reminded:
        return None
    return JobResult("governance.remind", _("%(count)d reminder(s) sent")
                     % {"count": len(reminded)})


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    """Given the worker's schedule, return the governance jobs: all three, at every tick."""
    return [("governance.settle", _settle), ("governance.execute", _execute),
            ("governance.remind", _remind)]
