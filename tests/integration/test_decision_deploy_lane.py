"""A decided opening deploys in the worker's long lane, on the real slapd, dockerd and Caddy.

The members adopt the opening of a pad for a partner association. Its
deployment blocks (a stand-in for a long start or health wait): the worker
executes the decision at its next tick all the same, and a group access that
expires meanwhile leaves the directory within 10 s. Once released, the
deployment finishes in the long lane and the pad's container runs.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaton.adapters.caddy.server import ManagedCaddy
from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.core import clock, worker
from chaton.core.models import Job, JobState
from chaton.directory import actions as directory_actions
from chaton.directory import reconcile as directory_reconcile
from chaton.directory.models import Account
from chaton.governance import actions as governance
from chaton.governance.models import OperationStatus, Status
from chaton.governance.tests.test_api import make_member
from chaton.members import actions as member_actions
from chaton.services import actions
from chaton.services.models import Host, Instance
from chaton.testing.docker import TemporaryDockerd
from chaton.testing.pytest_plugin import BASE_DN
from chaton.testing.voters import own_session
from chaton.testing.waiting import members_of, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]

TEAM_DN = f"cn=team,ou=groups,{BASE_DN}"


@pytest.fixture
def host(docker_engine: TemporaryDockerd, test_catalog: Path, caddy: ManagedCaddy,
         ldap_directory: LdapDirectory) -> Host:
    return actions.do_create_host("local", docker_engine.url, acting_user=None,
                                  address="127.0.0.1", is_default=True)


class BlockingDeploy:
    """Stands for ``actions._deploy_created``: blocks until released (60 s at most)."""

    def __init__(self, deploy: Callable[[int, Account | None], object]) -> None:
        self.deploy = deploy
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, primary_key: int, acting_user: Account | None) -> object:
        self.started.set()
        self.release.wait(60)
        return self.deploy(primary_key, acting_user)


@pytest.fixture
def blocking_deploy(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingDeploy]:
    blocking = BlockingDeploy(actions._deploy_created)
    monkeypatch.setattr(actions, "_deploy_created", blocking)
    yield blocking
    blocking.release.set()
    worker.long_lane().wait(60)


def test_a_decided_opening_deploys_in_the_long_lane_while_expiries_go_on(
        host: Host, ldap_directory: LdapDirectory, docker_engine: TemporaryDockerd,
        blocking_deploy: BlockingDeploy) -> None:
    aubin, brune, cyan = (make_member(uid) for uid in ("aubin", "brune", "cyan"))
    member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                          slug="radio-ourse", acting_user=None)
    team = directory_actions.do_create_group("team", acting_user=None)
    ends_at = clock.now() + dt.timedelta(seconds=5)
    directory_actions.do_add_to_group(team, cyan, acting_user=None, expires_at=ends_at)
    directory_reconcile.sync_all()
    cyan_dn = normalize_dn(f"uid=cyan,ou=people,{BASE_DN}")
    assert cyan_dn in members_of(ldap_directory, TEAM_DN)
    decision = governance.do_propose("A pad for Radio Ourse", [{"type": "service.open",
        "params": {"application": "webtest", "domain": "pad.chaton.test",
                   "organization": "radio-ourse"}}], acting_user=aubin)
    for voter in (aubin, brune):
        governance.do_vote(decision, "for", acting_user=voter, credential=own_session(voter))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    operation = decision.operations.get()

    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,),
                              kwargs={"tick_seconds": 1.0})
    thread.start()
    try:
        assert blocking_deploy.started.wait(10), "the deployment did not start"
        operation.refresh_from_db()
        assert operation.status == OperationStatus.DONE
        job = Job.objects.get(kind="services.deploy")
        assert job.state == JobState.RUNNING
        assert f"job:{job.pk}" in worker.long_lane().running()
        # The quick lane goes on: the access ends at its date, within a tick or two.
        wait_until(lambda: clock.now() >= ends_at, 15)
        took = wait_until(lambda: cyan_dn not in members_of(ldap_directory, TEAM_DN), 10)
        assert took < 10 and not blocking_deploy.release.is_set()
        blocking_deploy.release.set()
        wait_until(lambda: Job.objects.get(pk=job.pk).state != JobState.RUNNING, 120)
    finally:
        blocking_deploy.release.set()
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the worker did not stop"
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    operation.refresh_from_db()
    assert operation.status == OperationStatus.DONE, operation.message
    instance = Instance.objects.get(domain="pad.chaton.test")
    assert docker_engine.api.containers(filters={"label": [
        f"org.chaton.instance={instance.slug}", "org.chaton.role=app"]})
