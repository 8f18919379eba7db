"""A decision's deployment runs in the worker's long lane, never in its quick one.

The members adopt the opening of a pad; its deployment blocks (a stand-in for
a slow start or health wait). Executing the decision returns at once, the
deployment is a job of the long lane, and an access that expires meanwhile
leaves the directory at the worker's next ticks. Once the deployment ends the
pad runs and the job has succeeded; a deployment that fails in the lane fails
its operation, and the decision says so.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from chaton.adapters.docker.fake import FakeEngine
from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.fake import FakeDirectory
from chaton.core import clock, worker
from chaton.core.models import Job, JobState
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account
from chaton.directory.reconcile import sync_all
from chaton.governance import actions as governance
from chaton.governance import queries
from chaton.governance.models import Decision, OperationStatus, Status
from chaton.governance.tests.test_api import make_account, make_member
from chaton.members import actions as member_actions
from chaton.services import actions
from chaton.services.models import Host, Instance
from chaton.testing.jobs import finish_jobs
from chaton.testing.pytest_plugin import BASE_DN
from chaton.testing.voters import own_session
from chaton.testing.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

OPEN_PAD_FOR_RADIO = {"type": "service.open", "params": {
    "application": "webtest", "domain": "pad.example.org", "host": "box",
    "organization": "radio-ourse"}}


@pytest.fixture
def voters(directory: FakeDirectory, host: Host) -> dict[str, Account]:
    """An administrator, three voters and a partner organization (an opening for it is
    extraordinary: the members decide it, the worker executes it)."""
    people = {"wren": make_account("wren", is_admin=True)}
    for uid in ("aubin", "brune", "cyan"):
        people[uid] = make_member(uid)
    member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                          slug="radio-ourse", acting_user=None)
    return people


class BlockingDeploy:
    """Stands for ``actions._deploy_created``: blocks until released (60 s at most)."""

    def __init__(self, deploy: Callable[..., object]) -> None:
        self.deploy = deploy
        self.started = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []

    def __call__(self, primary_key: int, acting_user: Account | None) -> object:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        self.release.wait(60)
        return self.deploy(primary_key, acting_user)


@pytest.fixture
def blocking_deploy(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingDeploy]:
    blocking = BlockingDeploy(actions._deploy_created)
    monkeypatch.setattr(actions, "_deploy_created", blocking)
    yield blocking
    blocking.release.set()
    worker.long_lane().wait(30)


def adopted(voters: dict[str, Account], specs: list[dict[str, object]]) -> Decision:
    decision = governance.do_propose("A pad for Radio Ourse", specs, acting_user=voters["aubin"])
    for uid in ("aubin", "brune"):
        governance.do_vote(decision, "for", acting_user=voters[uid],
                           credential=own_session(voters[uid]))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    return decision


def group_members(directory: FakeDirectory, name: str) -> set[str]:
    entry = directory.entries.get(normalize_dn(f"cn={name},ou=groups,{BASE_DN}")) or {}
    return {normalize_dn(value.decode() if isinstance(value, bytes) else value)
            for value in entry.get("member", [])}


def test_executing_a_decision_does_not_wait_for_its_deployment_nor_do_expiries(
        voters: dict[str, Account], engine: FakeEngine, directory: FakeDirectory,
        blocking_deploy: BlockingDeploy) -> None:
    team = directory_actions.do_create_group("team", acting_user=None)
    ends_at = clock.now() + dt.timedelta(seconds=3)
    directory_actions.do_add_to_group(team, voters["cyan"], acting_user=None, expires_at=ends_at)
    sync_all()
    cyan = normalize_dn(f"uid=cyan,ou=people,{BASE_DN}")
    assert cyan in group_members(directory, "team")
    decision = adopted(voters, [OPEN_PAD_FOR_RADIO])

    # The quick lane's job: it returns while the deployment is still blocked.
    start = time.monotonic()
    handled = governance.execute_decisions()
    assert time.monotonic() - start < 5
    assert blocking_deploy.started.wait(10), "the deployment did not start"
    assert [row.status for row in handled] == [OperationStatus.DONE]
    assert blocking_deploy.threads[0].startswith("chaton-long-job:")
    job = Job.objects.get(kind="services.deploy")
    assert job.state == JobState.RUNNING and job.target_label == "pad"
    assert job.params["operation"] == handled[0].pk
    assert not engine.workloads  # not deployed yet

    # Meanwhile the worker's quick lane goes on: the access ends at its date.
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,),
                              kwargs={"tick_seconds": 0.5})
    thread.start()
    try:
        wait_until(lambda: clock.now() >= ends_at, 10)
        took = wait_until(lambda: cyan not in group_members(directory, "team"), 10)
        assert took < 10 and not blocking_deploy.release.is_set()
        assert worker.long_lane().running() == [f"job:{job.pk}"]
        blocking_deploy.release.set()
        wait_until(lambda: Job.objects.get(pk=job.pk).state != JobState.RUNNING, 30)
    finally:
        blocking_deploy.release.set()
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the worker did not stop"
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    assert Instance.objects.get().slug == "pad" and len(engine.workloads) == 1
    assert queries.row(decision).execution == "executed"


def test_a_deployment_that_fails_in_the_long_lane_fails_its_operation(
        voters: dict[str, Account], engine: FakeEngine,
        blocking_deploy: BlockingDeploy) -> None:
    decision = adopted(voters, [OPEN_PAD_FOR_RADIO])
    engine.fail_after = engine.writes  # the engine answers the checks, then goes away
    governance.execute_decisions()
    assert blocking_deploy.started.wait(10)
    row = decision.operations.get()
    assert row.status == OperationStatus.DONE  # until its effect says otherwise
    blocking_deploy.release.set()
    finish_jobs()
    row.refresh_from_db()
    assert row.status == OperationStatus.FAILED
    assert "does not answer" in row.message, row.message
    assert queries.row(decision).execution == "failed"
    job = Job.objects.get(kind="services.deploy")
    assert job.state == JobState.FAILED and job.error is not None
    assert job.error["code"] == "engine_unreachable", job.error
    assert not Instance.objects.exists() and not engine.workloads


def test_the_worker_run_once_waits_for_the_deployment_its_decision_started(
        voters: dict[str, Account], engine: FakeEngine,
        blocking_deploy: BlockingDeploy) -> None:
    """``chaton worker --once`` exits right after: a deployment cut short would be lost."""
    decision = adopted(voters, [OPEN_PAD_FOR_RADIO])
    releaser = threading.Timer(1.0, blocking_deploy.release.set)
    releaser.start()
    worker.run_once()
    assert blocking_deploy.started.is_set() and blocking_deploy.release.is_set()
    job = Job.objects.get(kind="services.deploy")
    assert job.state == JobState.SUCCEEDED, job.error
    assert worker.long_lane().running() == []
    assert len(engine.workloads) == 1
    assert queries.row(decision).execution == "executed"
