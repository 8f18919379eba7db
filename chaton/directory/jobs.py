"""The directory's jobs of the worker (see :mod:`chaton.core.worker`):

- ``directory.sync`` (retry): a change could not reach the directory
  (``SyncState.pending_since`` is set): sync the whole directory at the next tick;
- ``directory.sync`` (periodic): every ``directory.reconcile_interval_seconds``,
  and at the first tick of each day (memberships start and end on days, and the
  "members" groups follow them), sync the whole directory, which also repairs
  hand edits and applies expiries;
- ``directory.expiry``: at the same period, mail expiry notices and record the
  expiries that passed (:func:`chaton.directory.expiry.process_expiries`); and
  at the first tick after an account or a group access reaches its expiry date,
  so that the access ends at its date (within a tick), not at the next period.

What these jobs remember between ticks (the day of the last whole reconcile,
when the expiries were last looked at) is this module's part of the schedule,
``schedule.state["directory"]``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.worker import JobResult, Schedule

logger = logging.getLogger("chaton.worker")


def _sync_directory(reason: str) -> JobResult:
    """Sync the whole directory; return what it changed. Raise LdapError when it is down."""
    from chaton.directory.reconcile import sync_all

    plan, outcome = sync_all()
    assert outcome is not None  # not a dry run
    counts = plan.counts()
    summary = _("%(reason)s: %(applied)d change(s) applied (%(add)d added, %(modify)d modified, "
                "%(delete)d deleted), %(failed)d failed, %(foreign)d foreign entry(ies) kept") % {
        "reason": reason, "applied": outcome.applied, "add": counts["add"],
        "modify": counts["modify"], "delete": counts["delete"],
        "failed": len(outcome.failures), "foreign": counts["foreign"]}
    return JobResult("directory.sync", summary, ok=outcome.ok)


def _process_expiries() -> JobResult:
    """Run the expiry job; return its report in one line."""
    # Imported here: the expiry module may be newer than the worker, and a worker
    # that cannot load one job must still run the others.
    from chaton.directory.expiry import process_expiries

    report = process_expiries()
    return JobResult("directory.expiry", "; ".join(report.lines()),
                     ok=report.notices_failed == 0)


def _expiry_passed(checked_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Return whether an expiry date passed since the expiry job last looked, at
    ``checked_at`` (False on error, or when it never looked)."""
    from chaton.directory.expiry import expired_between

    if checked_at is None:
        return False  # the periodic run, due at once in a new schedule, covers it
    try:
        return expired_between(checked_at, now)
    except Exception:  # a database hiccup: the periodic run will catch up
        logger.exception("worker: cannot look for expiries")
        return False


def _failed(name: str, summary: str) -> Callable[[], JobResult]:
    return lambda: JobResult(name, summary, ok=False)


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    """Given the worker's schedule, return the directory's jobs due at this tick, and
    mark them in it: the sync (periodic, daily, or a retry of pending changes) and the
    expiries. Never raise for the database: an unreadable sync state is a failed job."""
    from chaton.directory.models import SyncState

    state: dict[str, Any] = schedule.state.setdefault("directory", {})
    interval = settings.CHATON.directory.reconcile_interval_seconds
    jobs: list[tuple[str, Callable[[], JobResult | None]]] = []
    # Reading the flag is a query too: a database that went away must not kill the loop.
    try:
        pending_since = SyncState.get().pending_since
    except Exception:
        logger.exception("worker: cannot read the directory's sync state")
        pending_since = None
        jobs.append(("directory.sync", _failed("directory.sync",
                                               _("cannot read the sync state"))))
    today = clock.today()
    if schedule.is_due("directory.reconcile", interval) or state.get("reconciled_on") != today:
        schedule.mark("directory.reconcile")
        state["reconciled_on"] = today
        jobs.append(("directory.sync", lambda: _sync_directory(_("periodic reconcile"))))
    elif pending_since is not None:
        reason = _("retry of changes pending since %(since)s") % {
            "since": pending_since.isoformat(timespec="seconds")}
        jobs.append(("directory.sync", lambda: _sync_directory(reason)))
    now = clock.now()
    if (schedule.is_due("directory.expiry", interval)
            or _expiry_passed(state.get("expiries_checked_at"), now)):
        schedule.mark("directory.expiry")
        state["expiries_checked_at"] = now
        jobs.append(("directory.expiry", _process_expiries))
    return jobs
