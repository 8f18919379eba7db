"""The worker's job for notifications: send the queued ones that are due.

``notifications.send`` runs in the long lane: a mail server or a webhook that
times out must not hold up the quick jobs.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _

from chaton.core.worker import JobResult, Schedule
from chaton.notifications import outbox

LONG_JOBS = frozenset({"notifications.send"})
#: Seconds between two prunings of the sent rows.
PRUNE_INTERVAL_SECONDS = 24 * 60 * 60


def send_due() -> JobResult:
    """Try the due notifications once; return the counts in one line."""
    report = outbox.drain()
    summary = _("%(sent)d sent, %(retry)d to retry, %(failed)d given up") % {
        "sent": report.sent, "retry": report.to_retry, "failed": report.failed}
    if report.errors:
        summary += " (" + "; ".join(sorted(set(report.errors))[:3]) + ")"
    return JobResult("notifications.send", summary,
                     ok=report.to_retry == 0 and report.failed == 0)


def prune_sent() -> JobResult | None:
    """Delete the rows sent long ago; None (not reported) when there were none."""
    deleted = outbox.prune()
    if not deleted:
        return None
    return JobResult("notifications.prune", _("%(count)d sent notification(s) deleted") % {
        "count": deleted})


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    """Return the send job when a queued notification is due (checked at every tick), and the
    pruning of old sent rows once a day."""
    due: list[tuple[str, Callable[[], JobResult | None]]] = []
    if schedule.is_due("notifications.prune", PRUNE_INTERVAL_SECONDS):
        schedule.mark("notifications.prune")
        due.append(("notifications.prune", prune_sent))
    if outbox.due():
        schedule.mark("notifications.send")
        due.append(("notifications.send", send_due))
    return due
