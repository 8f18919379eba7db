"""Long work as a job to poll: what the API answers ``202 Accepted`` with.

A request must not hold its connection for a backup or an upgrade. Instead the
endpoint checks what it can at once (404, 400 on its input), then calls
:func:`do_start_job`, which records a queued :class:`~chaton.core.models.Job`
and, once committed, hands it to the worker's long lane
(:func:`chaton.core.worker.long_lane`) of this process. The client polls
``GET /api/v1/jobs/{id}`` for its ``state`` (queued, running, succeeded, failed),
``progress``, ``result`` and ``error``.

Each kind of job is one function, registered beside the endpoint that starts
it (the app's ``api.py``) with :func:`register`: given the job (its ``params``
and ``created_by``), it does the work through the app's ordinary ``do_*``
actions and returns the JSON result.
A :class:`~chaton.core.errors.ChatonError` it raises becomes the job's error
(``code``, ``message``, ``field``, ``status``); anything else is logged and
recorded as ``server_error`` without details.

Exactly one thread of one process runs a job: it is claimed by an atomic
update from ``queued`` to ``running``. Two jobs with the same ``lock_key``
never run at once (a file lock, :mod:`chaton.core.locks`): the second waits.
The worker also picks up queued jobs that no process started (one that was
stopped before it could), and fails those left running by a process that died.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from chaton.core import audit, clock
from chaton.core.errors import ChatonError, InvalidInput, NotFound, coded
from chaton.core.models import Job, JobState

if TYPE_CHECKING:
    from chaton.core.worker import JobResult
    from chaton.directory.models import Account

logger = logging.getLogger("chaton.jobs")

#: Given a running job, do its work and return its result (JSON values).
Work = Callable[[Job], dict[str, Any] | None]


@dataclass(frozen=True)
class JobKind:
    name: str
    work: Work


_kinds: dict[str, JobKind] = {}


def register(name: str, work: Work) -> None:
    """Make ``name`` a kind of job that :func:`run_job` carries out with ``work``."""
    _kinds[name] = JobKind(name, work)


def _kind_modules() -> list[str]:
    """Return the modules whose import registers every kind: each app's API modules (its
    ``AppConfig.api_routers``), where each kind's work lives beside the endpoint that
    starts it."""
    from chaton.core.registry import api_routers

    return list(dict.fromkeys(target.split(":")[0] for _prefix, target in api_routers()))


def kind(name: str) -> JobKind:
    """Return the registered kind ``name``. Raise NotFound for an unknown one.

    A process that never loaded the API (``chaton worker``) imports
    every app's API modules here first.
    """
    if name not in _kinds:
        for module_name in _kind_modules():
            import_module(module_name)
    if name not in _kinds:
        raise NotFound(_("No kind of job is called %(kind)s.") % {"kind": name})
    return _kinds[name]


def runner_name() -> str:
    """Return ``host:pid``, the name of this process as a job's runner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def do_start_job(kind_name: str, *, params: dict[str, Any], target: str, lock_key: str,
                 acting_user: Account | None) -> Job:
    """Record a queued job of ``kind_name`` with its JSON ``params``; return it.

    ``target`` names what it works on, for people; ``lock_key`` is the object
    it works on (jobs with the same key run one after the other). Once the
    transaction commits, the job starts in this process's long lane. Raise
    InvalidInput for an unknown kind.
    """
    if kind_name not in _kinds:
        try:
            kind(kind_name)
        except NotFound:
            raise InvalidInput(_("No kind of job is called %(kind)s.") % {"kind": kind_name},
                               field="kind") from None
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind_name, params={**params, "language": translation.get_language() or ""},
            target_label=target[:255], lock_key=lock_key[:200], created_by=acting_user,
            created_at=clock.now())
        audit.record("job.start", job, acting_user=acting_user,
                     after={"kind": kind_name, "target": job.target_label})
        job_id = job.pk
        transaction.on_commit(lambda: submit(job_id))
    return job


def submit(job_id: int) -> bool:
    """Hand the job to this process's long lane; return False when it is already there."""
    from chaton.core.worker import long_lane

    return long_lane().start(f"job:{job_id}", lambda: run_job(job_id),
                             lock_key=_lock_key(job_id), wait_for_lock=True)


def _lock_key(job_id: int) -> str:
    key = Job.objects.filter(pk=job_id).values_list("lock_key", flat=True).first()
    return key or f"job:{job_id}"


def set_progress(job: Job, percent: int) -> None:
    """Record that ``job`` is ``percent`` done (bookkeeping: no audit row)."""
    job.progress = max(0, min(100, percent))
    Job.objects.filter(pk=job.pk).update(progress=job.progress)


#: Seconds between two progress writes of one job: a backup reports many times a second.
PROGRESS_INTERVAL_SECONDS = 1.0


def progress_reporter(job: Job) -> Callable[[float], None]:
    """Return a function that records ``job``'s progress given a fraction done (0 to 1).

    It writes at most once per :data:`PROGRESS_INTERVAL_SECONDS`, and only a
    percentage that moved; never 100, which only the job's end records.
    """
    last_written = [float("-inf")]

    def report(fraction: float) -> None:
        percent = max(0, min(99, int(fraction * 100)))
        now = time.monotonic()
        if percent != job.progress and now - last_written[0] >= PROGRESS_INTERVAL_SECONDS:
            last_written[0] = now
            set_progress(job, percent)

    return report


def _claim(job_id: int) -> Job | None:
    """Take the queued job for this thread; return it, or None when another took it."""
    claimed = Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
        state=JobState.RUNNING, started_at=clock.now(), runner=runner_name(), progress=0)
    if not claimed:
        return None
    return Job.objects.select_related("created_by").get(pk=job_id)


def _error_of(error: BaseException) -> dict[str, Any]:
    """Given what a job raised, return its error as the API shows errors."""
    failure = coded(error)
    if failure is not None:
        return {**failure.as_dict(), "status": failure.status}
    return {"code": "server_error", "status": 500, "field": None,
            "message": _("Something went wrong on the server.")}


def run_job(job_id: int) -> JobResult | None:
    """Claim the queued job ``job_id``, do its work and record how it ended.

    Return the worker's one-line result, or None when the job was not queued
    (another thread or process has it, or it is over). Never raise for the
    work's own failure: it is the job's error.
    """
    from chaton.core.worker import JobResult

    job = _claim(job_id)
    if job is None:
        return None
    language = str(job.params.get("language") or "") or None
    try:
        with translation.override(language):
            try:
                result = kind(job.kind).work(job)
            except Exception as error:
                if not isinstance(error, ChatonError):
                    logger.exception("jobs: %s failed", job)
                problem = _error_of(error)
                Job.objects.filter(pk=job.pk).update(
                    state=JobState.FAILED, error=problem, finished_at=clock.now())
                return JobResult(f"job.{job.kind}", _("%(job)s failed: %(error)s")
                                 % {"job": job, "error": problem["message"]}, ok=False)
            Job.objects.filter(pk=job.pk).update(
                state=JobState.SUCCEEDED, result=result, progress=100, finished_at=clock.now())
            return JobResult(f"job.{job.kind}", _("%(job)s done") % {"job": job})
    except Exception:  # the database itself failed: the worker's sweep finds the job
        logger.exception("jobs: cannot record how %s ended", job)
        raise


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_orphans() -> list[Job]:
    """Fail the jobs left running by a process of this host that is gone; return them."""
    host = socket.gethostname()
    failed = []
    for job in Job.objects.filter(state=JobState.RUNNING, runner__startswith=f"{host}:"):
        pid_text = job.runner.rsplit(":", 1)[1]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            error = {"code": "interrupted", "status": 500, "field": None,
                     "message": _("The process running this job stopped before it ended.")}
            if Job.objects.filter(pk=job.pk, state=JobState.RUNNING, runner=job.runner).update(
                    state=JobState.FAILED, error=error, finished_at=clock.now()):
                failed.append(job)
    return failed


def waiting_job_ids() -> list[int]:
    """Return the queued jobs, oldest first."""
    return list(Job.objects.filter(state=JobState.QUEUED).order_by("created_at", "id")
                .values_list("pk", flat=True))
