"""The worker's lanes on the real slapd: quick jobs never wait behind a long one.

While a long job blocks for 60 s (a stand-in for an upgrade's health wait), a
group access that expires and a decision adopted by the members reach the
directory within 10 s; the long job is not started twice; the worker stops
cleanly once it ends.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import types
from collections.abc import Callable, Iterator

import pytest

from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.core import clock, locks, worker
from chaton.directory import actions as directory_actions
from chaton.directory import reconcile
from chaton.directory.models import Account
from chaton.governance import actions
from chaton.governance.models import Status
from chaton.members import actions as members_actions
from chaton.testing.pytest_plugin import BASE_DN
from chaton.testing.voters import own_session, recorded_at_start
from chaton.testing.waiting import members_of, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LONG_MODULE = "chaton_test_long_jobs"
LONG_JOB = "test.long"
TECH_DN = f"cn=tech,ou=groups,{BASE_DN}"
PASSWORDS_DN = f"cn=passwords,ou=groups,{BASE_DN}"


class LongJob:
    """A job that blocks until released (60 s at most), counting how often it started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.starts = 0

    def __call__(self) -> worker.JobResult:
        self.starts += 1
        self.started.set()
        self.release.wait(60)
        return worker.JobResult(LONG_JOB, "waited")


@pytest.fixture
def long_job(monkeypatch: pytest.MonkeyPatch) -> Iterator[LongJob]:
    """Add an app whose one job, due at every tick, is long (listed in LONG_JOBS)."""
    job = LongJob()
    module = types.ModuleType(LONG_MODULE)
    module.LONG_JOBS = frozenset({LONG_JOB})  # type: ignore[attr-defined]

    def due_jobs(schedule: worker.Schedule) -> list[tuple[str, Callable[[], worker.JobResult]]]:
        return [(LONG_JOB, job)]

    module.due_jobs = due_jobs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, LONG_MODULE, module)
    installed = worker.job_modules
    monkeypatch.setattr(worker, "job_modules", lambda: [*installed(), LONG_MODULE])
    try:
        yield job
    finally:
        job.release.set()


def member(uid: str, name: str) -> Account:
    person = members_actions.do_create_person(name, f"{uid}@example.org", acting_user=None)
    recorded_at_start(members_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=120)))
    return directory_actions.do_create_account(uid, acting_user=None, display_name=name,
                                               email=f"{uid}@example.org", person=person)


def test_expiries_and_decisions_reach_ldap_within_10_s_during_a_60_s_job(
        ldap_directory: LdapDirectory, long_job: LongJob) -> None:
    odile, pacome = member("odile", "Odile Carafon"), member("pacome", "Pacôme Lustrin")
    tech = directory_actions.do_create_group("tech", acting_user=None)
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    # Pacôme's access to tech ends in a few seconds: during the long job.
    ends_at = clock.now() + dt.timedelta(seconds=4)
    directory_actions.do_add_to_group(tech, pacome, acting_user=None, expires_at=ends_at)
    reconcile.sync_all()
    pacome_dn = normalize_dn(f"uid=pacome,ou=people,{BASE_DN}")
    assert pacome_dn in members_of(ldap_directory, TECH_DN)
    # Adopted by the members (both vote for), executed by the worker's next tick.
    decision = actions.do_propose(
        "Give access to the technical passwords to Pacôme",
        [{"type": "group.grant", "params": {"group": "passwords", "account": "pacome"}}],
        acting_user=odile)
    actions.do_vote(decision, "for", acting_user=odile, credential=own_session(odile))
    actions.do_vote(decision, "for", acting_user=pacome, credential=own_session(pacome))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED

    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,),
                              kwargs={"tick_seconds": 1.0})
    thread.start()
    try:
        assert long_job.started.wait(10), "the long job did not start"
        took = wait_until(lambda: pacome_dn in members_of(ldap_directory, PASSWORDS_DN), 10)
        assert not long_job.release.is_set() and took < 10
        wait_until(lambda: clock.now() >= ends_at, 10)
        took = wait_until(lambda: pacome_dn not in members_of(ldap_directory, TECH_DN), 10)
        assert not long_job.release.is_set() and took < 10
        # Still the first run: a long job is never started twice, and holds its lock.
        assert long_job.starts == 1
        assert worker.long_lane().running() == [LONG_JOB]
        with locks.held(LONG_JOB) as taken:
            assert not taken
    finally:
        long_job.release.set()
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the worker did not stop"
    assert worker.long_lane().running() == []


def test_a_long_job_is_skipped_while_another_process_holds_its_lock(
        ldap_directory: LdapDirectory, long_job: LongJob) -> None:
    with locks.held(LONG_JOB) as taken:
        assert taken
        lane = worker.LongLane()
        worker.run_jobs(worker.Schedule(), lane)
        assert lane.wait(5)
        assert long_job.starts == 0
    worker.run_jobs(worker.Schedule(), lane)
    assert long_job.started.wait(5)
    long_job.release.set()
    assert lane.stop(5) and long_job.starts == 1
