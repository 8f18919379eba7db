"""The worker: scheduled jobs that keep the real world in line with the database.

Jobs, and when they are due:

- ``directory.retry``: a change could not reach the directory
  (``SyncState.pending_since`` is set): sync the whole directory at the next tick;
- ``directory.reconcile``: every ``directory.reconcile_interval_seconds``, and at
  the first tick of each day (memberships start and end on days, and the
  "members" groups follow them), sync the whole directory, which also repairs
  hand edits and applies expiries;
- ``directory.expiry``: at the same period, mail expiry notices and record the
  expiries that passed (:func:`chaton.directory.expiry.process_expiries`); and
  at the first tick after an account or a group access reaches its expiry date,
  so that the access ends at its date (within a tick), not at the next period.

Other apps add their jobs through :data:`JOB_MODULES`: each module has a
``due_jobs(schedule) -> list[tuple[str, Callable[[], JobResult | None]]]``
that returns the jobs due at this tick (and marks them in the schedule); a job
that found nothing to do returns None and is not reported.

:func:`run_forever` runs them in a loop (``chaton worker``, or a thread of
``chaton serve``); :func:`run_once` runs what is due once (``chaton worker --once``,
from cron or a test). A job that fails is logged and reported; it never stops
the loop nor the jobs after it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.translation import gettext as _

from chaton.core import clock

logger = logging.getLogger("chaton.worker")

#: Modules whose ``due_jobs(schedule)`` adds jobs to each tick, after the directory's.
JOB_MODULES = ("chaton.governance.jobs", "chaton.backups.jobs", "chaton.services.jobs")


@dataclass
class JobResult:
    """What one job did: a line for people, and whether it went well."""

    job: str
    summary: str
    ok: bool = True

    def __str__(self) -> str:
        return f"{self.job}: {self.summary}"


@dataclass
class Schedule:
    """When each periodic job last ran, on the monotonic clock of this process.

    A new schedule has never run anything, so every periodic job is due at once.
    """

    last_run: dict[str, float] = field(default_factory=dict)
    #: Injected by tests to move time; the monotonic clock otherwise.
    monotonic: Callable[[], float] = time.monotonic
    #: When the expiry job last looked (Chaton's clock, which expiry dates are compared to).
    expiries_checked_at: dt.datetime | None = None
    #: The day of the last whole reconcile: memberships start and end on days.
    reconciled_on: dt.date | None = None

    def is_due(self, job: str, interval_seconds: float) -> bool:
        """Return whether ``job`` has not run for ``interval_seconds`` (or never ran)."""
        last = self.last_run.get(job)
        return last is None or self.monotonic() - last >= interval_seconds

    def mark(self, job: str) -> None:
        """Record that ``job`` ran now."""
        self.last_run[job] = self.monotonic()


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


def _expiry_passed(schedule: Schedule, now: dt.datetime) -> bool:
    """Return whether an expiry date passed since the expiry job last ran (False on error)."""
    from chaton.directory.expiry import expired_between

    if schedule.expiries_checked_at is None:
        return False  # the periodic run, due at once in a new schedule, covers it
    try:
        return expired_between(schedule.expiries_checked_at, now)
    except Exception:  # a database hiccup: the periodic run will catch up
        logger.exception("worker: cannot look for expiries")
        return False


def _run_job(name: str, job: Callable[[], JobResult | None]) -> JobResult | None:
    """Run one job, turning any exception into a failed result (logged with its traceback)."""
    try:
        return job()
    except Exception as error:  # one failing job never stops the others
        logger.exception("worker: job %s failed", name)
        return JobResult(name, _("failed: %(error)s") % {"error": error}, ok=False)


def run_jobs(schedule: Schedule | None = None) -> list[JobResult]:
    """Given a schedule (a new one when None), run the jobs that are due and return their results.

    The pending directory sync is checked at every call; the periodic jobs run
    when their interval has passed since ``schedule`` last ran them. Never raise
    for a job's failure: it comes back as a result with ``ok`` false.
    """
    from chaton.directory.models import SyncState

    schedule = schedule if schedule is not None else Schedule()
    interval = settings.CHATON.directory.reconcile_interval_seconds
    results: list[JobResult | None] = []
    # Reading the flag is a query too: a database that went away must not kill the loop.
    try:
        pending_since = SyncState.get().pending_since
    except Exception:
        logger.exception("worker: cannot read the directory's sync state")
        pending_since = None
        results.append(JobResult("directory.sync", _("cannot read the sync state"), ok=False))
    today = clock.today()
    if schedule.is_due("directory.reconcile", interval) or schedule.reconciled_on != today:
        schedule.mark("directory.reconcile")
        schedule.reconciled_on = today
        results.append(_run_job("directory.sync",
                                lambda: _sync_directory(_("periodic reconcile"))))
    elif pending_since is not None:
        reason = _("retry of changes pending since %(since)s") % {
            "since": pending_since.isoformat(timespec="seconds")}
        results.append(_run_job("directory.sync", lambda: _sync_directory(reason)))
    now = clock.now()
    if schedule.is_due("directory.expiry", interval) or _expiry_passed(schedule, now):
        schedule.mark("directory.expiry")
        schedule.expiries_checked_at = now
        results.append(_run_job("directory.expiry", _process_expiries))
    for module_name in JOB_MODULES:
        try:
            due = import_module(module_name).due_jobs(schedule)
        except Exception:  # one app that cannot plan its jobs must not stop the others
            logger.exception("worker: cannot list the jobs of %s", module_name)
            results.append(JobResult(module_name, _("cannot list its jobs"), ok=False))
            continue
        results.extend(_run_job(name, job) for name, job in due)
    reported = [result for result in results if result is not None]
    for result in reported:
        (logger.info if result.ok else logger.warning)("worker: %s", result)
    return reported


def run_once(schedule: Schedule | None = None) -> list[str]:
    """Run the jobs that are due (all of them with a new schedule); return what each did."""
    return [str(result) for result in run_jobs(schedule)]


def run_forever(stop: threading.Event, tick_seconds: float = 5) -> None:
    """Run the due jobs every ``tick_seconds`` until ``stop`` is set.

    Database connections are closed between ticks, so that a server restart or
    a long pause never leaves the worker holding a dead connection.
    """
    schedule = Schedule()
    logger.info("worker: started (tick %g s)", tick_seconds)
    try:
        while not stop.is_set():
            close_old_connections()
            try:
                run_jobs(schedule)
            except Exception:  # the loop itself must outlive anything a tick does
                logger.exception("worker: tick failed")
            finally:
                close_old_connections()
            stop.wait(tick_seconds)
    finally:
        # Connections are per thread: the worker's own die with it, closed cleanly.
        connections.close_all()
        logger.info("worker: stopped")
