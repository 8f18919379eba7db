"""Jobs to poll: started by an action, run once by one thread, read at ``/api/v1/jobs/{id}``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chaton.core import jobs, worker
from chaton.core.actions import do_create_api_token
from chaton.core.errors import Conflict
from chaton.core.models import AuditLog, Job, JobState
from chaton.directory import actions as directory_actions

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("directory", "english")]


class Calls:
    """What the test kinds were asked to do, and a gate that holds them."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    recorded = Calls()

    def echo(job: Job) -> dict[str, Any]:
        recorded.params.append(dict(job.params))
        recorded.gate.wait(30)
        jobs.set_progress(job, 50)
        return {"echo": job.params.get("text"),
                "by": job.created_by.get_username() if job.created_by else None}

    def refuse(job: Job) -> dict[str, Any]:
        raise Conflict("Plan nightly is already running.", field="plan")

    def crash(job: Job) -> dict[str, Any]:
        raise RuntimeError("a secret detail that must not reach the client")

    monkeypatch.setitem(jobs._kinds, "test.echo", jobs.JobKind("test.echo", echo))
    monkeypatch.setitem(jobs._kinds, "test.refuse", jobs.JobKind("test.refuse", refuse))
    monkeypatch.setitem(jobs._kinds, "test.crash", jobs.JobKind("test.crash", crash))
    try:
        yield recorded
    finally:
        recorded.gate.set()


@pytest.fixture
def admin() -> Any:
    return directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                               email="wren@example.org", is_admin=True)


def headers_for(account: Any) -> dict[str, str]:
    _token, key = do_create_api_token(account, "tests", acting_user=None)
    return {"Authorization": f"Bearer {key}", "Accept-Language": "en"}


def start(kind: str, admin: Any, text: str = "hello", lock_key: str = "test:one") -> Job:
    return jobs.do_start_job(kind, params={"text": text}, target="one", lock_key=lock_key,
                             acting_user=admin)


def test_a_job_runs_once_and_is_polled_with_its_result(client, calls, admin) -> None:
    job = start("test.echo", admin)
    assert job.state == JobState.QUEUED
    [audit] = AuditLog.objects.filter(action="job.start")
    assert audit.actor == admin and audit.after == {"kind": "test.echo", "target": "one"}
    headers = headers_for(admin)
    polled = client.get(f"/api/v1/jobs/{job.pk}", headers=headers).json()
    assert (polled["state"], polled["result"], polled["error"]) == ("queued", None, None)

    result = jobs.run_job(job.pk)
    assert result is not None and result.ok
    assert jobs.run_job(job.pk) is None  # never twice
    assert len(calls.params) == 1 and calls.params[0]["text"] == "hello"
    polled = client.get(f"/api/v1/jobs/{job.pk}", headers=headers).json()
    assert polled["state"] == "succeeded" and polled["progress"] == 100
    assert polled["result"] == {"echo": "hello", "by": "wren"}
    assert polled["created_by"] == "wren" and polled["target"] == "one"
    assert polled["started_at"] and polled["finished_at"]
    assert polled["url"] == f"/api/v1/jobs/{job.pk}"
    listed = client.get("/api/v1/jobs", {"state": "succeeded"}, headers=headers).json()
    assert [item["id"] for item in listed["items"]] == [job.pk]
    assert client.get("/api/v1/jobs", {"state": "queued"}, headers=headers).json()["count"] == 0


def test_a_refused_job_carries_the_coded_error_and_a_crash_no_details(client, calls,
                                                                      admin) -> None:
    headers = headers_for(admin)
    refused = start("test.refuse", admin)
    jobs.run_job(refused.pk)
    polled = client.get(f"/api/v1/jobs/{refused.pk}", headers=headers).json()
    assert polled["state"] == "failed" and polled["result"] is None
    assert polled["error"] == {"code": "conflict", "status": 409, "field": "plan",
                               "message": "Plan nightly is already running."}
    crashed = start("test.crash", admin)
    jobs.run_job(crashed.pk)
    polled = client.get(f"/api/v1/jobs/{crashed.pk}", headers=headers).json()
    assert polled["error"]["code"] == "server_error" and polled["error"]["status"] == 500
    assert "secret detail" not in json.dumps(polled)


def test_only_administrators_read_jobs_and_bad_ids_are_404(client, calls, admin) -> None:
    job = start("test.echo", admin)
    member = directory_actions.do_create_account("alix", acting_user=None, display_name="Alix",
                                                 email="alix@example.org")
    response = client.get(f"/api/v1/jobs/{job.pk}", headers=headers_for(member))
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert client.get(f"/api/v1/jobs/{job.pk}").status_code == 401
    headers = headers_for(admin)
    for job_id in (job.pk + 1000, 0, 2**70):
        response = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    response = client.get("/api/v1/jobs", {"state": "sleeping"}, headers=headers)
    assert response.status_code == 400 and response.json()["field"] == "state"


def test_progress_is_written_seldom_and_never_says_done_early(calls, admin,
                                                             monkeypatch) -> None:
    job = start("test.echo", admin)
    report = jobs.progress_reporter(job)
    report(0.5)
    report(0.7)  # within the interval: not written
    assert Job.objects.get(pk=job.pk).progress == 50
    monkeypatch.setattr(jobs, "PROGRESS_INTERVAL_SECONDS", 0)
    report(1.0)
    assert Job.objects.get(pk=job.pk).progress == 99


def test_a_worker_that_never_loaded_the_api_knows_every_kind() -> None:
    """``chaton worker`` runs queued jobs in a process that serves no request."""
    script = ("import django; django.setup(); from chaton.core import jobs; "
              "print(' '.join(jobs.kind(name).name for name in ('backups.init', 'backups.run', "
              "'backups.retention', 'backups.drill', 'backups.restore', 'services.deploy', "
              "'services.upgrade')))")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "chaton.project.settings"}
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=60, env=environment, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["backups.init", "backups.run", "backups.retention",
                                        "backups.drill", "backups.restore", "services.deploy",
                                        "services.upgrade"]


def test_an_unknown_kind_is_refused(admin) -> None:
    with pytest.raises(Exception) as raised:
        start("test.nothing", admin)
    assert getattr(raised.value, "code", None) == "invalid"
    assert not Job.objects.exists()


def test_the_worker_runs_queued_jobs_and_fails_the_orphans(calls, admin) -> None:
    queued = start("test.echo", admin, "from the worker")
    # A job left running by a process of this host that is gone.
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = start("test.echo", admin, "orphan")
    Job.objects.filter(pk=orphan.pk).update(state=JobState.RUNNING,
                                            runner=f"{socket.gethostname()}:{dead.pid}")
    alive = start("test.echo", admin, "alive elsewhere")
    Job.objects.filter(pk=alive.pk).update(state=JobState.RUNNING,
                                           runner=f"{socket.gethostname()}:{os.getpid()}")
    lines = worker.run_once()
    assert any(line.startswith("job.test.echo:") for line in lines), lines
    assert Job.objects.get(pk=queued.pk).state == JobState.SUCCEEDED
    orphan.refresh_from_db()
    assert orphan.state == JobState.FAILED and orphan.error["code"] == "interrupted"
    assert Job.objects.get(pk=alive.pk).state == JobState.RUNNING
    assert [params["text"] for params in calls.params] == ["from the worker"]


@pytest.mark.django_db(transaction=True)
def test_jobs_on_one_object_run_in_turn_in_the_lane(calls, admin) -> None:
    calls.gate.clear()
    first = start("test.echo", admin, "first", lock_key="test:same")
    second = start("test.echo", admin, "second", lock_key="test:same")
    other = start("test.echo", admin, "other", lock_key="test:other")
    lane = worker.long_lane()
    try:
        # Committed: each went to the lane at once. The first holds test:same, so the
        # second waits for it; the other object's job is not held up.
        assert _eventually(lambda: len(calls.params) == 2), calls.params
        assert sorted(params["text"] for params in calls.params) == ["first", "other"]
        assert Job.objects.get(pk=second.pk).state == JobState.QUEUED
    finally:
        calls.gate.set()
    assert lane.wait(30)
    assert [params["text"] for params in calls.params][2:] == ["second"]
    assert set(Job.objects.values_list("state", flat=True)) == {JobState.SUCCEEDED}
    assert first.pk and other.pk


def _eventually(condition: Any, seconds: float = 10) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
