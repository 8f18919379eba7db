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

Two lanes. The quick jobs (directory sync and expiries, ballots, decisions,
starting backups' child processes) run one after the other in the loop's own
thread, and so never wait behind a long one. A job whose name a module lists in
its ``LONG_JOBS`` (a deploy or an upgrade that waits for health, say), and every
queued :class:`~chaton.core.models.Job` (long work asked through the API, see
:mod:`chaton.core.jobs`), runs in the :class:`LongLane`: a thread of its own,
under a file lock on the object it works on, so that two long jobs on the same
object never run at once, in this process or another. A periodic long job that
is still running at its next turn is not started twice.

:func:`run_forever` runs them in a loop (``chaton worker``, or a thread of
``chaton serve``); on stop it lets the long jobs finish, for a bounded time.
:func:`run_once` runs what is due once, long jobs included, and waits for them
(``chaton worker --once``, from cron or a test). A job that fails is logged and
reported; it never stops the loop nor the jobs after it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.translation import gettext as _

from chaton.core import clock, locks

logger = logging.getLogger("chaton.worker")

#: Modules whose ``due_jobs(schedule)`` adds jobs to each tick, after the directory's.
JOB_MODULES = ("chaton.governance.jobs", "chaton.backups.jobs", "chaton.services.jobs",
               "chaton.notifications.jobs")


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


class LongLane:
    """The lane of long jobs: each one in a thread of its own, one at a time per object.

    A job is started under a name (``services.reconcile``, ``job:42``): a name
    still running in this lane is not started again. Its ``lock_key`` names the
    object it works on; the thread holds that file lock (:mod:`chaton.core.locks`)
    while the job runs. Without ``wait_for_lock`` a job whose object is busy is
    skipped (a periodic job: its next turn will come); with it, the thread waits
    for the lock (a job someone asked for).
    """

    #: Seconds between two tries of a busy lock.
    LOCK_POLL_SECONDS = 0.2

    def __init__(self) -> None:
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, name: str, job: Callable[[], JobResult | None], *, lock_key: str = "",
              wait_for_lock: bool = False) -> bool:
        """Run ``job`` in a new thread; return False when ``name`` is still running here."""
        with self._lock:
            running = self._threads.get(name)
            if running is not None and running.is_alive():
                return False
            thread = threading.Thread(target=self._run, name=f"chaton-long-{name}",
                                      args=(name, job, lock_key or name, wait_for_lock),
                                      daemon=True)
            self._threads[name] = thread
            thread.start()
        return True

    def _run(self, name: str, job: Callable[[], JobResult | None], lock_key: str,
             wait_for_lock: bool) -> None:
        try:
            while True:
                with locks.held(lock_key) as taken:
                    if taken:
                        result = _run_job(name, job)
                        if result is not None:
                            (logger.info if result.ok else logger.warning)("worker: %s", result)
                        return
                if not wait_for_lock or self._stopping.is_set():
                    logger.info("worker: %s skipped, %s is busy", name, lock_key)
                    return
                self._stopping.wait(self.LOCK_POLL_SECONDS)
        except Exception:  # the lock file itself failed: log, never kill the process
            logger.exception("worker: long job %s failed", name)
        finally:
            # Connections are per thread: this one's die with it.
            connections.close_all()
            with self._lock:
                if self._threads.get(name) is threading.current_thread():
                    del self._threads[name]

    def running(self) -> list[str]:
        """Return the names of the long jobs running (or waiting for their lock) now."""
        with self._lock:
            return sorted(name for name, thread in self._threads.items() if thread.is_alive())

    def wait(self, timeout: float, *, besides: Collection[str] = ()) -> bool:
        """Wait up to ``timeout`` seconds for every long job (except those named in
        ``besides``) to end; return whether they did."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [thread for name, thread in self._threads.items()
                           if thread.is_alive() and name not in besides]
            if not threads:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            threads[0].join(timeout=remaining)

    def stop(self, timeout: float) -> bool:
        """Start no more waiting jobs and wait up to ``timeout`` s for the running ones."""
        self._stopping.set()
        try:
            return self.wait(timeout)
        finally:
            self._stopping.clear()


_long_lane = LongLane()


def long_lane() -> LongLane:
    """Return this process's lane of long jobs (shared by the worker and the API)."""
    return _long_lane


#: Seconds a short-lived process (the CLI, ``worker --once``) waits, before it exits, for the
#: long jobs it started: a job cut short would be failed as interrupted.
FINISH_SECONDS = 3600.0


def finish_long_jobs(timeout: float = FINISH_SECONDS, *, besides: Collection[str] = ()) -> bool:
    """Wait up to ``timeout`` seconds for the long jobs of this process (a deployment that a
    decision's execution started, say), except those named in ``besides`` (already running
    before); return whether they all ended."""
    return long_lane().wait(timeout, besides=besides)


def _queued_jobs() -> list[tuple[str, Callable[[], JobResult | None]]]:
    """Return the queued API jobs that no thread of this process has yet, after failing
    the ones a dead process left running."""
    from chaton.core import jobs

    jobs.fail_orphans()
    running = set(long_lane().running())
    return [(f"job:{job_id}", lambda job_id=job_id: jobs.run_job(job_id))  # type: ignore[misc]
            for job_id in jobs.waiting_job_ids() if f"job:{job_id}" not in running]


def run_jobs(schedule: Schedule | None = None, lane: LongLane | None = None) -> list[JobResult]:
    """Given a schedule (a new one when None), run the jobs that are due and return their results.

    The pending directory sync is checked at every call; the periodic jobs run
    when their interval has passed since ``schedule`` last ran them. With a
    ``lane``, the long jobs start in it and their results are logged when they
    end; without, they run here, after the quick ones, and the call waits for
    the jobs the quick ones started in this process's :func:`long_lane`. Never raise for a job's
    failure: it comes back as a result with ``ok`` false.
    """
    from chaton.directory.models import SyncState

    schedule = schedule if schedule is not None else Schedule()
    running_before = frozenset(long_lane().running())
    long_jobs: list[tuple[str, Callable[[], JobResult | None]]] = []
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
            module = import_module(module_name)
            due = module.due_jobs(schedule)
        except Exception:  # one app that cannot plan its jobs must not stop the others
            logger.exception("worker: cannot list the jobs of %s", module_name)
            results.append(JobResult(module_name, _("cannot list its jobs"), ok=False))
            continue
        long_names: frozenset[str] = getattr(module, "LONG_JOBS", frozenset())
        for name, job in due:
            if name in long_names:
                long_jobs.append((name, job))
            else:
                results.append(_run_job(name, job))
    try:
        queued = _queued_jobs()
    except Exception:
        logger.exception("worker: cannot list the queued jobs")
        results.append(JobResult("jobs", _("cannot list the queued jobs"), ok=False))
        queued = []
    if lane is not None:
        for name, job in long_jobs:
            lane.start(name, job)
        for name, job in queued:
            lane.start(name, job, lock_key=_job_lock_key(name), wait_for_lock=True)
    else:
        for name, job in long_jobs:
            with locks.held(name) as taken:
                if taken:
                    results.append(_run_job(name, job))
        for name, job in queued:
            with locks.held(_job_lock_key(name)) as taken:
                if taken:
                    results.append(_run_job(name, job))
        # What the quick jobs started in this process's lane (a decided opening's
        # deployment) ends before the run does: ``worker --once`` exits next.
        finish_long_jobs(besides=running_before)
    reported = [result for result in results if result is not None]
    for result in reported:
        (logger.info if result.ok else logger.warning)("worker: %s", result)
    return reported


def _job_lock_key(name: str) -> str:
    """Given a lane name ``job:<id>``, return the lock key of that job."""
    from chaton.core import jobs

    return jobs._lock_key(int(name.split(":", 1)[1]))


def run_once(schedule: Schedule | None = None) -> list[str]:
    """Run the jobs that are due (all of them with a new schedule); return what each did."""
    return [str(result) for result in run_jobs(schedule)]


#: Seconds the worker lets its long jobs finish when it stops.
LONG_JOBS_STOP_SECONDS = 20.0


def run_forever(stop: threading.Event, tick_seconds: float = 5,
                lane: LongLane | None = None) -> None:
    """Run the due jobs every ``tick_seconds`` until ``stop`` is set.

    Long jobs go to ``lane`` (this process's :func:`long_lane` by default); on
    stop, the loop ends after its current quick job and waits up to
    :data:`LONG_JOBS_STOP_SECONDS` for the long ones (a job cut short is
    finished by the next run: reconcilers are idempotent, and an API job left
    running is failed as interrupted). Database connections are closed between
    ticks, so that a server restart or a long pause never leaves the worker
    holding a dead connection.
    """
    schedule = Schedule()
    lane = lane if lane is not None else long_lane()
    logger.info("worker: started (tick %g s)", tick_seconds)
    try:
        while not stop.is_set():
            close_old_connections()
            try:
                run_jobs(schedule, lane)
            except Exception:  # the loop itself must outlive anything a tick does
                logger.exception("worker: tick failed")
            finally:
                close_old_connections()
            stop.wait(tick_seconds)
    finally:
        if not lane.stop(LONG_JOBS_STOP_SECONDS):
            logger.warning("worker: long jobs still running at stop: %s",
                           ", ".join(lane.running()))
        # Connections are per thread: the worker's own die with it, closed cleanly.
        connections.close_all()
        logger.info("worker: stopped")
