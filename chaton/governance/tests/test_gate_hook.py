"""The gate's hook in core, from the attacker's side: the apps below governance ask the gate
through :mod:`chaton.core.gate`, and nothing but an adopted decision's operation, handed
over as that very row, opens it.

Tried: another row whose id is that of an adopted operation (a forged authorisation), an
adopted operation of another type, a gate missing altogether (an app that would run
ungated), and the effect of a deployment reported against an operation nobody runs.
"""

from __future__ import annotations

import pytest

from chaton.core import clock, gate
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory.gated import GrantGroupParams
from chaton.directory.models import GroupMembership
from chaton.governance.gate import DecisionRequired, GovernanceGate
from chaton.governance.models import Decision, Kind, Operation, OperationStatus, Status
from chaton.governance.tests.conftest import Community

pytestmark = pytest.mark.django_db


def _adopted(operation_type: str, params: dict[str, object]) -> Operation:
    """Return the pending operation of an adopted decision (as the executor holds it)."""
    decision = Decision.objects.create(kind=Kind.EXTRAORDINARY, title="Adopted",
                                       proposed_by_label="boss", created_at=clock.now(),
                                       status=Status.ADOPTED, decided_at=clock.now())
    return Operation.objects.create(decision=decision, position=1, type=operation_type,
                                    params=params, summary="adopted",
                                    status=OperationStatus.PENDING)


def _is_member(community: Community, index: int = 0) -> bool:
    return GroupMembership.objects.filter(group=community.passwords,
                                          account=community.voters[index]).exists()


def test_governance_installs_its_gate_when_django_starts() -> None:
    assert isinstance(gate.installed(), GovernanceGate)


def test_the_adopted_operation_itself_opens_the_gate(community: Community) -> None:
    voter = community.voters[0]
    operation = _adopted("group.grant", {"group": "passwords", "account": voter.uid})

    directory_actions.do_add_to_group(community.passwords, voter, acting_user=None,
                                      authorised_by=operation)

    assert _is_member(community)


def test_another_row_with_the_id_of_an_adopted_operation_opens_nothing(
        community: Community) -> None:
    voter = community.voters[0]
    operation = _adopted("group.grant", {"group": "passwords", "account": voter.uid})
    forged = community.voters[1]
    forged.pk = operation.pk  # an Account row that merely shares the operation's id

    with pytest.raises(DecisionRequired):
        directory_actions.do_add_to_group(community.passwords, voter, acting_user=None,
                                          authorised_by=forged)

    assert not _is_member(community)
    assert not gate.is_authorised(GrantGroupParams, forged)
    assert gate.is_authorised(GrantGroupParams, operation)


def test_an_adopted_operation_of_another_type_opens_nothing(community: Community) -> None:
    voter = community.voters[0]
    other = _adopted("group.revoke", {"group": "passwords", "account": voter.uid})

    with pytest.raises(DecisionRequired):
        directory_actions.do_add_to_group(community.passwords, voter, acting_user=None,
                                          authorised_by=other)

    assert not _is_member(community)


def test_without_a_gate_a_gated_change_is_refused(community: Community,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "_installed", [])
    voter = community.voters[0]
    audit_rows = AuditLog.objects.count()

    with pytest.raises(gate.GateMissing):
        directory_actions.do_add_to_group(community.team, voter, acting_user=None)

    assert not GroupMembership.objects.filter(group=community.team, account=voter).exists()
    assert AuditLog.objects.count() == audit_rows


def test_a_failed_effect_marks_only_its_own_operation(community: Community) -> None:
    voter = community.voters[0]
    operation = _adopted("group.grant", {"group": "passwords", "account": voter.uid})
    untouched = _adopted("group.grant", {"group": "passwords",
                                         "account": community.voters[1].uid})

    gate.effect_failed(operation.pk, "the engine did not answer")
    gate.effect_failed(None, "a direct action: nothing to mark")
    gate.effect_failed(10**9, "no such operation: logged, never raised")

    operation.refresh_from_db()
    untouched.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "the engine did not answer" in operation.message
    assert untouched.status == OperationStatus.PENDING


def test_the_proposal_link_carries_the_typed_params(community: Community) -> None:
    link = gate.proposal_link(GrantGroupParams(group="passwords", account="ana"))

    assert link.startswith("/decisions/new/?operation=group.grant&")
    assert "group=passwords" in link and "account=ana" in link
