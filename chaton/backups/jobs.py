"""The backups jobs of the worker (see :mod:`chaton.core.worker`).

At each tick the worker asks :func:`due_jobs` what is due: a plan's backup
(its interval passed since the last one; a failed one is retried after
``backups.retry_minutes``), a plan's restore drill (``drill_interval_days``),
a repository's check (``check_interval_days``). A backup of a gigabyte takes
minutes and the worker's loop must keep ticking (the directory's retries run
in it), so each job only *starts* a child process, ``python -m chaton.backups
backup <plan>`` (see :mod:`chaton.backups.__main__`), and returns; the child
records its run in the database, where the next ticks see it finished. The
child's output goes to ``data_dir/backups/logs/<plan>.log``.

A plan whose lock is held (a run from the CLI, a child still running) is
skipped. A child that cannot even be started is recorded as a failed run.
Nothing here raises into the worker's loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from collections.abc import Callable

from django.utils.translation import gettext as _

from chaton.core import clock, runner
from chaton.core.worker import JobResult, Schedule

logger = logging.getLogger("chaton.backups")

#: How often the worker looks for due backups, drills and checks, in seconds.
SCAN_SECONDS = 30.0
#: The children this process started, by job name, until they are reaped.
_children: dict[str, subprocess.Popen[bytes]] = {}
#: Injected by tests: starts a child and returns it.
Starter = Callable[[list[str], str], subprocess.Popen[bytes]]


def _default_starter(command: list[str], log_path: str) -> subprocess.Popen[bytes]:
    return runner.start(command, log_path=log_path)


starter: Starter = _default_starter


def _reap() -> None:
    """Forget the children that exited (so that they leave no zombie)."""
    for name, process in list(_children.items()):
        code = process.poll()
        if code is not None:
            del _children[name]
            (logger.info if code == 0 else logger.warning)(
                "backups: %s (process %d) ended with exit code %d", name, process.pid, code)


def _log_path(name: str) -> str:
    from chaton.backups.engine import backups_directory

    directory = backups_directory() / "logs"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(directory / f"{name}.log")


def child_command(action: str, name: str) -> list[str]:
    """Return the command of the child process that runs ``action`` for ``name``."""
    return [sys.executable, "-m", "chaton.backups", action, name]


def _start_child(job: str, action: str, name: str, log_name: str,
                 on_failure: Callable[[str], None]) -> JobResult:
    """Start the child for ``job``; on failure record it with ``on_failure``. Never raise."""
    try:
        process = starter(child_command(action, name), _log_path(log_name))
    except Exception as error:
        message = _("cannot start the process: %(error)s") % {"error": error}
        logger.exception("backups: %s: cannot start", job)
        try:
            on_failure(message)
        except Exception:
            logger.exception("backups: %s: cannot record the failure", job)
        return JobResult(job, message, ok=False)
    _children[job] = process
    return JobResult(job, _("started (process %(pid)d)") % {"pid": process.pid})


def _record_failed_run(plan_id: int, kind: str, message: str) -> None:
    from chaton.backups.models import Outcome, Plan, Run

    plan = Plan.objects.select_related("repository").get(pk=plan_id)
    now = clock.now()
    Run.objects.create(repository=plan.repository, plan=plan, kind=kind, started_at=now,
                       finished_at=now, outcome=Outcome.FAILED, error=message,
                       triggered_by="worker")


def _record_failed_drill(plan_id: int, message: str) -> None:
    from chaton.backups.models import Drill, DrillOutcome, Plan

    plan = Plan.objects.get(pk=plan_id)
    now = clock.now()
    for source in plan.sources.all():
        Drill.objects.create(plan=plan, source=source, source_name=source.name,
                             source_kind=source.kind, started_at=now, duration_seconds=0,
                             outcome=DrillOutcome.FAILED, details=message)


def _record_failed_check(repository_id: int, message: str) -> None:
    from chaton.backups.models import Outcome, Repository, Run, RunKind

    repository = Repository.objects.get(pk=repository_id)
    now = clock.now()
    Run.objects.create(repository=repository, kind=RunKind.CHECK, started_at=now,
                       finished_at=now, outcome=Outcome.FAILED, error=message,
                       triggered_by="worker")


def due_action(plan_id: int, now: dt.datetime) -> str | None:
    """Return what is due for the plan now: ``"backup"``, ``"drill"`` or None."""
    from django.conf import settings

    from chaton.backups.models import Drill, Outcome, Plan, Run, RunKind

    plan = Plan.objects.get(pk=plan_id)
    last = Run.objects.filter(plan=plan, kind=RunKind.BACKUP).order_by("-started_at",
                                                                      "-id").first()
    if last is None:
        return "backup"
    wait = plan.interval
    if last.outcome == Outcome.FAILED:
        wait = min(wait, dt.timedelta(minutes=settings.CHATON.backups.retry_minutes))
    if last.outcome != Outcome.RUNNING and last.started_at + wait <= now:
        return "backup"
    if plan.drill_interval_days and Run.objects.filter(
            plan=plan, kind=RunKind.BACKUP, outcome=Outcome.SUCCEEDED).exists():
        drill = Drill.objects.filter(plan=plan).order_by("-started_at", "-id").first()
        if drill is None or drill.started_at + dt.timedelta(days=plan.drill_interval_days) <= now:
            return "drill"
    return None


def _plan_jobs(now: dt.datetime) -> list[tuple[str, Callable[[], JobResult]]]:
    from chaton.backups import engine
    from chaton.backups.models import Plan, RunKind

    jobs: list[tuple[str, Callable[[], JobResult]]] = []
    for plan in Plan.objects.filter(enabled=True).only("pk", "name"):
        if any(name.endswith(f":{plan.name}") for name in _children):
            continue  # its child still runs
        if engine.plan_is_running(plan):
            continue  # a run from the command line, say
        action = due_action(plan.pk, now)
        if action is None:
            continue
        job = f"backups.{action}:{plan.name}"

        def start(job: str = job, action: str = action, name: str = plan.name,
                  plan_id: int = plan.pk) -> JobResult:
            def record(message: str) -> None:
                if action == "backup":
                    _record_failed_run(plan_id, RunKind.BACKUP, message)
                else:
                    _record_failed_drill(plan_id, message)

            return _start_child(job, action, name, name, record)

        jobs.append((job, start))
    return jobs


def _repository_jobs(now: dt.datetime) -> list[tuple[str, Callable[[], JobResult]]]:
    from chaton.backups.models import Repository

    jobs: list[tuple[str, Callable[[], JobResult]]] = []
    for repository in Repository.objects.filter(check_interval_days__gt=0).exclude(
            initialised_at=None):
        job = f"backups.check:{repository.name}"
        if job in _children:
            continue
        if repository.checked_at is not None and repository.checked_at + dt.timedelta(
                days=repository.check_interval_days) > now:
            continue

        def start(job: str = job, name: str = repository.name,
                  repository_id: int = repository.pk) -> JobResult:
            return _start_child(job, "check", name, f"repository-{name}",
                                lambda message: _record_failed_check(repository_id, message))

        jobs.append((job, start))
    return jobs


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult]]]:
    """Given the worker's schedule, return the backups jobs due now (each starts a child).

    Looks every :data:`SCAN_SECONDS`; never raises for a job's own failure.
    """
    _reap()
    if not schedule.is_due("backups.scan", SCAN_SECONDS):
        return []
    schedule.mark("backups.scan")
    now = clock.now()
    return [*_plan_jobs(now), *_repository_jobs(now)]
