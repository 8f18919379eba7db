"""A decision adopted while the directory is down: its operation completes in the database at
once and reaches the real slapd at the worker's first tick after slapd is back."""

from __future__ import annotations

import datetime as dt

import pytest

from chaton.adapters.ldap import LdapUnavailable, normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core import clock, worker
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory import reconcile
from chaton.directory.models import Account, GroupMembership, SyncState
from chaton.governance import actions
from chaton.governance.models import OperationStatus, Status
from chaton.members import actions as members_actions
from chaton.testing.pytest_plugin import BASE_DN
from chaton.testing.voters import own_session, recorded_at_start
from chaton.testing.waiting import members_of

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

GROUP_DN = f"cn=passwords,ou=groups,{BASE_DN}"


def voter(uid: str, name: str) -> Account:
    person = members_actions.do_create_person(name, f"{uid}@example.org", acting_user=None)
    recorded_at_start(members_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=120)))
    return directory_actions.do_create_account(uid, acting_user=None, display_name=name,
                                               email=f"{uid}@example.org", person=person)


def test_a_decision_adopted_while_slapd_is_down_reaches_it_when_it_is_back(
        slapd: ManagedSlapd, ldap_directory: LdapDirectory) -> None:
    odile, pacome, quitterie = (voter("odile", "Odile Carafon"),
                                voter("pacome", "Pacôme Lustrin"),
                                voter("quitterie", "Quitterie Mandoline"))
    tech = directory_actions.do_create_group("tech", acting_user=None)
    directory_actions.do_add_to_group(tech, pacome, acting_user=None)
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    reconcile.sync_all()
    pacome_dn = normalize_dn(f"uid=pacome,ou=people,{BASE_DN}")
    assert pacome_dn not in members_of(ldap_directory, GROUP_DN)

    decision = actions.do_propose(
        "Give access to the technical passwords to a new tech member",
        [{"type": "group.grant", "params": {"group": "passwords", "account": "pacome"}}],
        acting_user=odile)
    slapd.stop()
    try:
        actions.do_vote(decision, "for", acting_user=odile, credential=own_session(odile))
        actions.do_vote(decision, "against", acting_user=quitterie,
                        credential=own_session(quitterie))
        actions.do_vote(decision, "for", acting_user=pacome,
                        credential=own_session(pacome))  # 2 of 3: adopted at once
        decision.refresh_from_db()
        assert decision.status == Status.ADOPTED

        [operation] = actions.execute_decisions()
        # Done in the database; the directory write waits for the worker.
        assert operation.status == OperationStatus.DONE
        assert GroupMembership.objects.filter(group__name="passwords", account=pacome).exists()
        decision.refresh_from_db()
        assert decision.executed_at is not None
        assert SyncState.get().pending_since is not None
        assert actions.execute_decisions() == []  # never twice
        with pytest.raises(LdapUnavailable):
            reconcile.sync_all()
    finally:
        slapd.start()

    results = worker.run_once()
    assert any(line.startswith("directory.sync:") for line in results), results
    assert pacome_dn in members_of(ldap_directory, GROUP_DN)
    assert SyncState.get().pending_since is None
    assert reconcile.sync_all()[0].is_noop

    # The audit log links the operation to its decision and carries the votes.
    [applied] = AuditLog.objects.filter(action="operation.apply")
    assert applied.after is not None
    assert applied.actor_label == f"decision #{decision.pk}"
    assert applied.target_type == "governance.operation"
    assert applied.target_id == str(operation.pk)
    assert applied.after["decision"] == decision.pk
    assert applied.after["votes"] == {"proposal": {"for": 2, "against": 1, "electorate": 3,
                                                   "outcome": "adopted"}}
    [added] = AuditLog.objects.filter(action="group.add_member", target_label="passwords")
    assert added.after is not None
    assert added.actor_label == f"decision #{decision.pk}"
    assert added.after["account"] == "pacome"
