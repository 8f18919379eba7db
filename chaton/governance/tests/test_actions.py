"""Decisions through their actions: proposals, votes, the gate, execution, counter-votes."""

import datetime as dt

import pytest

from chaton.core import clock
from chaton.core.errors import Forbidden, InvalidInput, NotFound
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory.models import Group, GroupMembership
from chaton.governance import actions
from chaton.governance.gate import DecisionRequired
from chaton.governance.models import (
    Ballot,
    Decision,
    Kind,
    Operation,
    OperationStatus,
    Outcome,
    Status,
    Vote,
)
from chaton.governance.policy import current
from chaton.testing.voters import own_session

pytestmark = pytest.mark.django_db(transaction=True)


def grant(community, uid="ana", until=None):
    params = {"group": "passwords", "account": uid}
    if until:
        params["expires_on"] = until
    return [{"type": "group.grant", "params": params}]


def test_adding_to_a_protected_group_needs_a_decision(community):
    with pytest.raises(DecisionRequired) as caught:
        directory_actions.do_add_to_group(community.passwords, community.voters[0],
                                          acting_user=community.admin)
    assert caught.value.code == "decision_required"
    assert caught.value.params["link"].startswith("/decisions/new/?operation=group.grant")
    assert "group=passwords" in caught.value.params["link"]
    assert not GroupMembership.objects.filter(group=community.passwords).exists()
    # an ordinary action cannot carry it either
    with pytest.raises(DecisionRequired):
        actions.do_act("Give ana the passwords", grant(community), acting_user=community.admin)
    assert not Decision.objects.exists()
    # nor can the mark be cleared directly
    with pytest.raises(DecisionRequired):
        directory_actions.do_update_group(community.passwords, acting_user=community.admin,
                                          requires_decision=False)


def test_a_forged_authorisation_does_not_open_the_gate(community):
    decision = actions.do_propose("Passwords for ana", grant(community),
                                  acting_user=community.voters[0])
    operation = decision.operations.get()
    # the decision is open, not adopted: its operation authorises nothing yet
    with pytest.raises(DecisionRequired):
        directory_actions.do_add_to_group(community.passwords, community.voters[0],
                                          acting_user=community.admin, authorised_by=operation)
    with pytest.raises(DecisionRequired):
        directory_actions.do_add_to_group(community.passwords, community.voters[0],
                                          acting_user=community.admin,
                                          authorised_by=Operation(type="group.grant"))


def test_proposal_adopted_by_a_majority_then_executed_once(community):
    ana, bo, cy, *_ = community.voters
    until = str(clock.today() + dt.timedelta(days=90))
    decision = actions.do_propose("Give ana the technical passwords",
                                  grant(community, until=until), acting_user=ana)
    ballot = decision.ballots.get()
    assert decision.status == Status.OPEN and decision.kind == Kind.EXTRAORDINARY
    assert ballot.electorate_size == 5  # fox joined 2 days ago, svc is nobody's
    actions.do_vote(decision, "for", acting_user=ana, credential=own_session(ana))
    actions.do_vote(decision, "for", acting_user=bo, credential=own_session(bo))
    decision.refresh_from_db()
    assert decision.status == Status.OPEN  # 2 of 5
    actions.do_vote(decision, "for", acting_user=cy, credential=own_session(cy))
    decision.refresh_from_db()
    ballot.refresh_from_db()
    assert decision.status == Status.ADOPTED  # 3 of 5: adopted before the deadline
    assert (ballot.outcome, ballot.votes_for, ballot.votes_against) == (Outcome.ADOPTED, 3, 0)
    assert not GroupMembership.objects.filter(group=community.passwords).exists()

    handled = actions.execute_decisions()
    assert [row.status for row in handled] == [OperationStatus.DONE]
    membership = GroupMembership.objects.get(group=community.passwords)
    assert membership.account == ana and membership.expires_at is not None
    assert actions.execute_decisions() == []  # never twice
    decision.refresh_from_db()
    assert decision.executed_at is not None

    applied = AuditLog.objects.get(action="operation.apply")
    assert applied.actor_label == f"decision #{decision.pk}"
    assert applied.after["decision"] == decision.pk
    assert applied.after["votes"]["proposal"] == {"for": 3, "against": 0, "electorate": 5,
                                                  "outcome": "adopted"}
    added = AuditLog.objects.get(action="group.add_member")
    assert added.actor_label == f"decision #{decision.pk}"


def test_deadline_adopts_without_objection_and_rejects_with_one(community):
    ana, bo, *_ = community.voters
    quiet = actions.do_propose("Quiet", grant(community, "bo"), acting_user=ana)
    contested = actions.do_propose("Contested", grant(community, "cy"), acting_user=ana)
    actions.do_vote(quiet, "for", acting_user=ana, credential=own_session(ana))
    actions.do_vote(contested, "for", acting_user=ana, credential=own_session(ana))
    actions.do_vote(contested, "against", acting_user=bo, credential=own_session(bo))
    assert actions.settle_ballots() == []
    clock.travel(dt.timedelta(days=current().proposal_days, minutes=1))
    assert len(actions.settle_ballots()) == 2
    quiet.refresh_from_db()
    contested.refresh_from_db()
    assert quiet.status == Status.ADOPTED
    assert contested.status == Status.REJECTED
    assert contested.operations.get().status == OperationStatus.SKIPPED
    actions.execute_decisions()
    assert list(GroupMembership.objects.values_list("account__uid", flat=True)) == ["bo"]


def test_votes_change_until_the_close_and_count_once(community):
    ana, bo, *_ = community.voters
    decision = actions.do_propose("Change of mind", grant(community), acting_user=ana)
    actions.do_vote(decision, "against", acting_user=bo, credential=own_session(bo))
    actions.do_vote(decision, "against", acting_user=bo,
                    credential=own_session(bo))  # the same vote again
    actions.do_vote(decision, "for", acting_user=bo, credential=own_session(bo))
    assert Vote.objects.filter(person=bo.person).get().choice == "for"
    assert AuditLog.objects.filter(action="vote.cast").count() == 1
    assert AuditLog.objects.filter(action="vote.change").count() == 1


def test_who_may_vote(community):
    ana = community.voters[0]
    decision = actions.do_propose("Voters only", grant(community), acting_user=ana)
    with pytest.raises(actions.NotAVoter):
        actions.do_vote(decision, "for", acting_user=community.outsider,
                        credential=own_session(community.outsider))
    with pytest.raises(actions.NotAVoter):
        actions.do_vote(decision, "for", acting_user=community.newcomer,
                        credential=own_session(community.newcomer))
    with pytest.raises(InvalidInput):
        actions.do_vote(decision, "maybe", acting_user=ana, credential=own_session(ana))
    with pytest.raises(Forbidden):
        actions.do_propose("Not a voter", grant(community), acting_user=community.newcomer)
    assert not Vote.objects.exists()


def test_no_vote_after_the_close(community):
    ana, bo, *_ = community.voters
    decision = actions.do_propose("Late", grant(community), acting_user=ana)
    clock.travel(dt.timedelta(days=8))
    # the deadline passed, even before the worker closed the ballot
    with pytest.raises(actions.VotingClosed):
        actions.do_vote(decision, "against", acting_user=bo, credential=own_session(bo))
    actions.settle_ballots()
    with pytest.raises(actions.VotingClosed):
        actions.do_vote(decision, "against", acting_user=bo, credential=own_session(bo))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED  # nobody objected in time


def test_invalid_operations_write_nothing(community):
    ana = community.voters[0]
    cases = [
        ([], "operations"),
        ([{"type": "group.explode", "params": {}}], "operations.0.type"),
        ([{"type": "group.grant", "params": []}], "operations.0.params"),
        ([{"type": "group.grant", "params": {"group": "passwords"}}], "operations.0.account"),
        ([{"type": "group.grant", "params": {"group": "passwords", "account": "ana",
                                             "extra": 1}}], "operations.0.extra"),
        ([{"type": "group.grant", "params": {"group": "passwords", "account": "ana",
                                             "expires_on": "2000-01-01"}}],
         "operations.0.expires_on"),
        ([{"type": "policy.change", "params": {"proposal_days": 0}}],
         "operations.0.proposal_days"),
    ]
    for specs, field in cases:
        with pytest.raises(InvalidInput) as caught:
            actions.do_propose("Bad", specs, acting_user=ana)
        assert caught.value.field == field, specs
    with pytest.raises(NotFound) as missing:
        actions.do_propose("Bad", [{"type": "group.grant", "params": {
            "group": "nope", "account": "ana"}}], acting_user=ana)
    assert missing.value.field == "operations.0.group"
    assert not Decision.objects.exists() and not Ballot.objects.exists()


def test_ordinary_action_counter_vote_cancels_and_reverts(community):
    ana, bo, _cy, di, _ed = community.voters
    decision = actions.do_act("Add di to the team", [
        {"type": "group.grant", "params": {"group": "team", "account": "di"}}],
        acting_user=community.admin)
    assert decision.status == Status.ADOPTED and decision.kind == Kind.ORDINARY
    assert GroupMembership.objects.filter(group=community.team, account=di).exists()
    ballot = actions.do_open_counter_vote(decision, acting_user=ana)
    decision.refresh_from_db()
    assert decision.status == Status.CONTESTED and ballot.electorate_size == 5
    with pytest.raises(actions.VotingClosed):
        actions.do_open_counter_vote(decision, acting_user=bo)  # one counter-vote
    actions.do_vote(decision, "against", acting_user=ana, credential=own_session(ana))
    actions.do_vote(decision, "for", acting_user=bo, credential=own_session(bo))
    clock.travel(dt.timedelta(days=current().counter_vote_days, minutes=1))
    actions.settle_ballots()
    decision.refresh_from_db()
    assert decision.status == Status.CANCELLED  # 1 of 2 votes cast against: half
    actions.execute_decisions()
    assert decision.operations.get().status == OperationStatus.REVERTED
    assert not GroupMembership.objects.filter(group=community.team, account=di).exists()
    assert actions.execute_decisions() == []


def test_counter_vote_upheld_and_window(community):
    ana, bo, cy, *_ = community.voters
    decision = actions.do_act("Add cy to the team", [
        {"type": "group.grant", "params": {"group": "team", "account": "cy"}}],
        acting_user=community.admin)
    actions.do_open_counter_vote(decision, acting_user=ana)
    for voter in (ana, bo, cy):
        actions.do_vote(decision, "for", acting_user=voter, credential=own_session(voter))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED  # 3 of 5 for: upheld at once
    late = actions.do_act("Add bo to the team", [
        {"type": "group.grant", "params": {"group": "team", "account": "bo"}}],
        acting_user=community.admin)
    clock.travel(dt.timedelta(days=current().counter_vote_window_days, hours=1))
    with pytest.raises(actions.VotingClosed):
        actions.do_open_counter_vote(late, acting_user=ana)
    with pytest.raises(actions.NotAVoter):
        actions.do_open_counter_vote(decision, acting_user=community.outsider)


def test_only_admins_act_and_a_failing_operation_applies_nothing(community):
    ana = community.voters[0]
    with pytest.raises(Forbidden):
        actions.do_act("Mine", [{"type": "group.grant", "params": {
            "group": "team", "account": "ana"}}], acting_user=ana)
    with pytest.raises(NotFound):
        actions.do_act("Two", [
            {"type": "group.grant", "params": {"group": "team", "account": "ana"}},
            {"type": "group.grant", "params": {"group": "team", "account": "nobody"}}],
            acting_user=community.admin)
    assert not GroupMembership.objects.exists() and not Decision.objects.exists()


def test_an_operation_that_fails_at_execution_is_recorded(community):
    ana, bo, cy, *_ = community.voters
    decision = actions.do_propose("Two steps", [
        {"type": "group.grant", "params": {"group": "passwords", "account": "bo"}},
        {"type": "group.grant", "params": {"group": "passwords", "account": "cy"}}],
        acting_user=ana)
    for voter in (ana, bo, cy):
        actions.do_vote(decision, "for", acting_user=voter, credential=own_session(voter))
    # Deleting a protected group takes a decision: here it goes behind Chaton's back.
    Group.objects.filter(pk=community.passwords.pk).delete()
    actions.execute_decisions()
    first, second = decision.operations.order_by("position")
    assert first.status == OperationStatus.FAILED and "passwords" in first.message
    assert second.status == OperationStatus.SKIPPED
    assert AuditLog.objects.filter(action="operation.fail").count() == 1


def test_withdraw(community):
    ana, bo, *_ = community.voters
    decision = actions.do_propose("Oops", grant(community), acting_user=ana)
    with pytest.raises(Forbidden):
        actions.do_withdraw(decision, acting_user=bo)
    actions.do_withdraw(decision, acting_user=ana)
    decision.refresh_from_db()
    assert decision.status == Status.WITHDRAWN
    with pytest.raises(actions.VotingClosed):
        actions.do_vote(decision, "for", acting_user=bo, credential=own_session(bo))
    assert actions.execute_decisions() == []


def test_reminders_once_before_the_deadline(community):
    decision = actions.do_propose("Remind me", grant(community),
                                  acting_user=community.voters[0])
    assert actions.send_reminders() == []
    clock.travel(dt.timedelta(days=current().proposal_days) - dt.timedelta(hours=12))
    assert [ballot.decision_id for ballot in actions.send_reminders()] == [decision.pk]
    assert actions.send_reminders() == []


def test_policy_changes_by_decision_only(community):
    ana, bo, cy, *_ = community.voters
    with pytest.raises(DecisionRequired):
        actions.do_set_policy({"proposal_days": 3}, acting_user=community.admin)
    decision = actions.do_propose("Shorter votes, revocations voted", [
        {"type": "policy.change", "params": {"proposal_days": 3,
                                             "classes": {"group.revoke": "extraordinary"}}}],
        acting_user=ana)
    for voter in (ana, bo, cy):
        actions.do_vote(decision, "for", acting_user=voter, credential=own_session(voter))
    actions.execute_decisions()
    policy = current()
    assert policy.proposal_days == 3
    # the new class applies at once to the direct path
    directory_actions.do_add_to_group(community.team, bo, acting_user=community.admin)
    with pytest.raises(DecisionRequired):
        directory_actions.do_remove_from_group(community.team, bo, acting_user=community.admin)


def test_waived_voting_delay_lets_a_newcomer_vote(community):
    ana, bo, cy, *_ = community.voters
    fox = community.newcomer
    decision = actions.do_propose("Let fox vote", [
        {"type": "membership.waive_voting_delay", "params": {"person": "fox@example.org"}}],
        acting_user=ana)
    for voter in (ana, bo, cy):
        actions.do_vote(decision, "for", acting_user=voter, credential=own_session(voter))
    actions.execute_decisions()
    assert actions.is_voter_today(fox)
    later = actions.do_propose("Fox votes now", grant(community, "fox"), acting_user=fox)
    assert later.ballots.get().electorate_size == 6


def test_partner_account_and_membership_end(community):
    from chaton.members import actions as members_actions
    from chaton.members.models import Membership

    partner = members_actions.do_create_organization("Association Test", "asso@example.org",
                                                     acting_user=None)
    members_actions.do_start_membership(partner, acting_user=None,
                                        starts_on=clock.today() - dt.timedelta(days=30))
    decision = actions.do_act("Account and end", [
        {"type": "account.create_for_organization", "params": {
            "organization": partner.slug, "uid": "asso", "display_name": "Association Test",
            "email": "contact@asso.example.org"}},
        {"type": "membership.end", "params": {"member": partner.slug,
                                              "ends_on": str(clock.today())}}],
        acting_user=community.admin)
    assert decision.operations.filter(status=OperationStatus.DONE).count() == 2
    assert Membership.objects.get(organization=partner).ends_on == clock.today()
    actions.do_open_counter_vote(decision, acting_user=community.voters[0])
    for voter in community.voters[:3]:
        actions.do_vote(decision, "against", acting_user=voter, credential=own_session(voter))
    actions.execute_decisions()
    assert Membership.objects.get(organization=partner).ends_on is None
    from chaton.directory.models import Account, AccountState

    assert Account.objects.get(uid="asso").state == AccountState.DISABLED
