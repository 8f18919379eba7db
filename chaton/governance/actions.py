"""Every write of governance: proposals, ordinary actions, votes, counter-votes, closes, execution.

The life of a decision::

    do_act ──► ADOPTED (operations run at once) ──do_open_counter_vote──► CONTESTED
                 ▲                                                           │
                 └── upheld ◄── settle_ballots ──► cancelled ──► CANCELLED ◄─┘
                                                   (reverted by execute_decisions)
    do_propose ──► OPEN ──settle_ballots──► ADOPTED (operations run by execute_decisions)
                     │                  └─► REJECTED
                     └──do_withdraw──► WITHDRAWN

Votes go through :func:`do_vote`, which may close a ballot early. The worker
calls :func:`settle_ballots`, :func:`execute_decisions` and :func:`send_reminders`
at every tick.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from chaton.core import audit, clock
from chaton.core.errors import ChatonError, Conflict, Forbidden, InvalidInput, NotFound
from chaton.directory.models import Account
from chaton.directory.validation import clean_text
from chaton.governance import notify, operations
from chaton.governance.credentials import (
    PASSWORD_METHODS,
    PASSWORD_NOT_OWN_HELP,
    Credential,
    PasswordNotOwn,
)
from chaton.governance.gate import DecisionRequired, classify, proposal_link, require
from chaton.governance.models import (
    Ballot,
    BallotKind,
    Choice,
    Decision,
    Elector,
    Kind,
    Operation,
    OperationStatus,
    Outcome,
    Policy,
    Status,
    Vote,
)
from chaton.governance.policy import POLICY_FIELDS, current
from chaton.governance.tally import Tally, due_outcomes
from chaton.members.models import Membership
from chaton.members.queries import voting_members

logger = logging.getLogger("chaton.governance")

#: Operations one decision may carry.
MAX_OPERATIONS = 20


class VotingClosed(Conflict):
    """A vote or a counter-vote arrived after its ballot closed."""

    code = "voting_closed"


class NotAVoter(Forbidden):
    """The account belongs to nobody in the ballot's electorate."""

    code = "not_a_voter"


def _label(account: Account | None) -> str:
    if account is None:
        return _("the system")
    return account.display_name or account.get_username()


def _parse_operations(
    specs: Sequence[Mapping[str, Any]],
) -> list[tuple[operations.OperationType[Any], pydantic.BaseModel]]:
    """Given ``[{"type": …, "params": {…}}, …]``, return each operation with its validated params.

    Raise InvalidInput (``field`` names the operation: ``operations.2.group``) or NotFound.
    """
    if not specs:
        raise InvalidInput(_("A decision carries at least one operation."), field="operations")
    if len(specs) > MAX_OPERATIONS:
        raise InvalidInput(_("A decision carries at most %(count)d operations.")
                           % {"count": MAX_OPERATIONS}, field="operations")
    parsed = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
            raise InvalidInput(_("Operation %(number)d has no type.") % {"number": index + 1},
                               field=f"operations.{index}")
        try:
            parsed.append(operations.parse(spec["type"], spec.get("params", {})))
        except ChatonError as error:
            error.field = f"operations.{index}.{error.field}" if error.field else \
                f"operations.{index}"
            raise
    return parsed


def _create_operations(decision: Decision,
                       parsed: list[tuple[operations.OperationType[Any],
                                          pydantic.BaseModel]],
                       ) -> list[Operation]:
    return Operation.objects.bulk_create([
        Operation(decision=decision, position=index, type=operation.type,
                  params=params.model_dump(mode="json", exclude_none=True),
                  summary=operation.describe(params)[:300])
        for index, (operation, params) in enumerate(parsed)])


def _open_ballot(decision: Decision, kind: BallotKind, *, acting_user: Account | None,
                 electorate: list[int], days: int, now: dt.datetime) -> Ballot:
    ballot = Ballot.objects.create(decision=decision, kind=kind, opened_by=acting_user,
                                   opened_at=now, closes_at=now + dt.timedelta(days=days),
                                   electorate_size=len(electorate))
    Elector.objects.bulk_create([Elector(ballot=ballot, person_id=person_id)
                                 for person_id in electorate])
    return ballot


def _electorate(policy: Policy) -> list[int]:
    """The persons who vote on a ballot opened now: today's voters, and whoever voted the
    day an ordinary action ended their membership while that action may still be
    contested (its window open, or its counter-vote running), or was cancelled and waits
    to be undone. An ending is announced
    and open to a counter-vote: until then it does not change who votes, or an
    administrator could end members one action after another, each with a past last
    day, and leave only the rest to vote (on the counter-votes, and on anything else
    proposed meanwhile)."""
    from chaton.members.queries import voters_before_their_end

    now = clock.now()
    electorate = set(voting_members(clock.today(), policy.voting_delay_days)
                     .values_list("pk", flat=True))
    pending = Operation.objects.filter(
        Q(decision__status__in=[Status.CONTESTED, Status.CANCELLED])
        | Q(decision__status=Status.ADOPTED, decision__counter_vote_until__gt=now),
        type="membership.end", status=OperationStatus.DONE, decision__kind=Kind.ORDINARY,
    ).values_list("result", "decision__created_at")
    for result, taken_at in pending:
        if not (isinstance(result, dict) and result.get("membership")):
            continue
        previous = result.get("ends_on") or None
        electorate |= voters_before_their_end(
            {int(result["membership"]): dt.date.fromisoformat(previous) if previous else None},
            clock.local_day(taken_at), policy.voting_delay_days)
    return sorted(electorate)


def is_voter_today(account: Account) -> bool:
    """Return whether ``account`` belongs to a person who may vote today."""
    if account.person_id is None:
        return False
    return voting_members(clock.today(), current().voting_delay_days).filter(
        pk=account.person_id).exists()


def may_act_ordinarily(account: Account | None) -> bool:
    """Return whether ``account`` may take ordinary actions at once (the administrators)."""
    return account is not None and account.is_admin


def do_propose(title: str, specs: Sequence[Mapping[str, Any]], *, acting_user: Account,
               description: str = "") -> Decision:
    """Put operations to the members' vote as an extraordinary action.

    ``specs`` is ``[{"type": "group.grant", "params": {…}}, …]``. Any voting
    member or administrator may propose. Raise Forbidden for anyone else,
    InvalidInput for a bad title or operation (nothing is written), and
    InvalidInput when nobody may vote.
    """
    if not (acting_user.is_admin or is_voter_today(acting_user)):
        raise Forbidden(_("Only voting members and administrators may open a proposal."))
    title = clean_text(title, field="title", max_length=200)
    description = clean_text(description, field="description", required=False,
                             max_length=10_000, multiline=True)
    parsed = _parse_operations(specs)
    policy = current()
    now = clock.now()
    with transaction.atomic():
        electorate = _electorate(policy)
        if not electorate:
            raise InvalidInput(_("Nobody may vote today: a proposal needs an electorate."),
                               field="title")
        decision = Decision.objects.create(
            kind=Kind.EXTRAORDINARY, title=title, description=description,
            proposed_by=acting_user, proposed_by_label=_label(acting_user), created_at=now,
            status=Status.OPEN)
        created = _create_operations(decision, parsed)
        ballot = _open_ballot(decision, BallotKind.PROPOSAL, acting_user=acting_user,
                              electorate=electorate, days=policy.proposal_days, now=now)
        audit.record("decision.propose", decision, acting_user=acting_user, after={
            "title": title, "operations": [operation.summary for operation in created],
            "electorate": ballot.electorate_size, "closes_at": ballot.closes_at.isoformat()})
        notify.schedule("proposed", decision)
    return decision


def do_act(title: str, specs: Sequence[Mapping[str, Any]], *, acting_user: Account,
           description: str = "") -> Decision:
    """Take an ordinary action: run its operations at once, announce it, open the
    counter-vote window.

    Raise Forbidden for someone without the role, DecisionRequired (with a link
    to a proposal) when an operation is extraordinary, and the operation's own
    error if one cannot run — in which case nothing at all is applied.
    """
    if not may_act_ordinarily(acting_user):
        raise Forbidden(_("Only administrators take ordinary actions; members may open a "
                          "proposal instead."))
    title = clean_text(title, field="title", max_length=200)
    description = clean_text(description, field="description", required=False,
                             max_length=10_000, multiline=True)
    parsed = _parse_operations(specs)
    for operation, params in parsed:
        if classify(operation, params) == Kind.EXTRAORDINARY:
            serialised = params.model_dump(mode="json", exclude_none=True)
            link = proposal_link(operation.type, serialised)
            raise DecisionRequired(
                _("“%(operation)s” is an extraordinary action: it needs a decision of the "
                  "members. Open a proposal instead: %(link)s")
                % {"operation": operation.describe(params), "link": link}, link=link)
    policy = current()
    now = clock.now()
    with transaction.atomic():
        decision = Decision.objects.create(
            kind=Kind.ORDINARY, title=title, description=description, proposed_by=acting_user,
            proposed_by_label=_label(acting_user), created_at=now, status=Status.ADOPTED,
            decided_at=now,
            counter_vote_until=now + dt.timedelta(days=policy.counter_vote_window_days))
        created = _create_operations(decision, parsed)
        for row in created:
            _apply(row, acting_user=acting_user)
        decision.executed_at = now
        decision.save(update_fields=["executed_at"])
        audit.record("decision.act", decision, acting_user=acting_user, after={
            "title": title, "operations": [row.summary for row in created],
            "counter_vote_until": str(decision.counter_vote_until)})
        notify.schedule("acted", decision)
    return decision


def do_end_membership_ordinarily(membership: Membership, ends_on: dt.date, *,
                                 acting_user: Account) -> Decision:
    """End a membership directly, as an ordinary action (``membership.end``): done at once,
    announced, open to a counter-vote that would restore it. Return the decision.

    The members' own action (:func:`chaton.members.actions.do_end_membership_ordinarily`),
    typed for the callers above the members app. Raise as it does.
    """
    from chaton.members.actions import do_end_membership_ordinarily as end_ordinarily

    decision = end_ordinarily(membership, ends_on, acting_user=acting_user)
    assert isinstance(decision, Decision)
    return decision


def open_ballot_of(decision: Decision) -> Ballot | None:
    """Return the ballot now open on ``decision`` (its proposal vote or counter-vote), if any."""
    return decision.ballots.filter(closed_at__isnull=True).first()


def linked_since(account: Account) -> dt.datetime | None:
    """Return since when ``account`` has belonged to its present person (None: not known,
    from before this was recorded)."""
    return account.person_linked_at


def refuse_password_not_own(account: Account, credential: Credential) -> None:
    """Raise PasswordNotOwn when ``credential`` rests on a password someone else set.

    A password an administrator (or the system) set, or one set through a reset
    mailed to an address someone else gave the account, is known to them: it
    votes on no ballot, whenever it opened, and neither does a token made since
    (with it). It votes again once the owner set their own from a reset link
    mailed to their own address (:func:`chaton.directory.actions.do_set_password`
    lifts the mark); a voting token the owner made before the mark still votes.
    """
    set_by_other_at = account.password_set_by_other_at
    if set_by_other_at is None:
        return
    if credential.method in PASSWORD_METHODS or (
            credential.token is not None and credential.token.created_at >= set_by_other_at):
        raise PasswordNotOwn(str(PASSWORD_NOT_OWN_HELP))


def do_vote(decision: Decision, choice: str, *, acting_user: Account,
            credential: Credential) -> Vote:
    """Cast or change the acting person's vote on the decision's open ballot.

    ``credential`` is how the voter proved who they are (see
    :mod:`chaton.governance.credentials`); the audit row records it. Voting
    again replaces the earlier vote (one vote per person). The ballot may close
    at once when the vote makes a majority of the electorate. Raise
    NotOwnCredential for a credential that is not ``acting_user``'s own or may
    not vote, InvalidInput for an unknown choice, VotingClosed when no ballot
    is open or its deadline passed, NotAVoter for someone outside its
    electorate or an account linked to its person after the ballot opened,
    PasswordNotOwn for a password someone else set (:func:`refuse_password_not_own`).
    """
    credential.check(acting_user)
    if choice not in Choice.values:
        raise InvalidInput(_("Vote “for” or “against”."), field="choice")
    now = clock.now()
    with transaction.atomic():
        ballot = (Ballot.objects.select_for_update().filter(decision=decision,
                                                            closed_at__isnull=True).first())
        if ballot is None or ballot.closes_at <= now:
            raise VotingClosed(_("Voting on #%(number)d is closed.") % {"number": decision.pk})
        if acting_user.person_id is None:
            raise NotAVoter(_("Your account belongs to no member, so it cannot vote."))
        if not Elector.objects.filter(ballot=ballot, person_id=acting_user.person_id).exists():
            raise NotAVoter(_("You were not a voting member when this vote opened, on "
                              "%(day)s.") % {"day": clock.local_day(ballot.opened_at)})
        refuse_password_not_own(acting_user, credential)
        linked_at = linked_since(acting_user)
        if linked_at is not None and linked_at > ballot.opened_at:
            # Re-linking an account (or making one) for someone must not lend their vote.
            raise NotAVoter(_("This account was linked to its member after this vote opened: "
                              "vote with the account the member had then."))
        vote = Vote.objects.filter(ballot=ballot, person_id=acting_user.person_id).first()
        if vote is not None and vote.choice == choice:
            return vote  # the same vote again changes nothing
        before = None if vote is None else {"choice": vote.choice}
        if vote is None:
            vote = Vote.objects.create(ballot=ballot, person_id=acting_user.person_id,
                                       account=acting_user, choice=choice, cast_at=now)
        else:
            vote.choice, vote.account, vote.changed_at = choice, acting_user, now
            vote.save(update_fields=["choice", "account", "changed_at"])
        audit.record("vote.change" if before else "vote.cast", decision,
                     acting_user=acting_user, before=before,
                     after={"choice": choice, "ballot": ballot.kind,
                            "credential": credential.as_record()})
        for closing, tally, outcome in due_outcomes([ballot], now):
            _close(closing, tally, outcome, now)
    return vote


def do_withdraw(decision: Decision, *, acting_user: Account) -> Decision:
    """Withdraw an open proposal: its author or an administrator. Raise Forbidden, VotingClosed."""
    if not (acting_user.is_admin or decision.proposed_by_id == acting_user.pk):
        raise Forbidden(_("Only the author of a proposal or an administrator may withdraw it."))
    now = clock.now()
    with transaction.atomic():
        decision = Decision.objects.select_for_update().get(pk=decision.pk)
        if decision.status != Status.OPEN:
            raise VotingClosed(_("Only an open proposal can be withdrawn."))
        tally = Tally(0, 0, 0)
        for ballot in decision.ballots.filter(closed_at__isnull=True):
            _close(ballot, tally, Outcome.WITHDRAWN, now, acting_user=acting_user)
        decision.refresh_from_db()
    return decision


def do_open_counter_vote(decision: Decision, *, acting_user: Account) -> Ballot:
    """Open a counter-vote on an ordinary action, within its window, as a voting member.

    Raise Forbidden for a non-voter, VotingClosed after the window or on a
    decision that cannot be contested (extraordinary, already contested).
    """
    policy = current()
    now = clock.now()
    electorate = _electorate(policy)
    if acting_user.person_id is None or acting_user.person_id not in electorate:
        raise NotAVoter(_("Only voting members may open a counter-vote."))
    with transaction.atomic():
        decision = Decision.objects.select_for_update().get(pk=decision.pk)
        if decision.kind != Kind.ORDINARY:
            raise VotingClosed(_("Only an ordinary action can be contested."))
        if decision.ballots.filter(kind=BallotKind.COUNTER).exists():
            raise VotingClosed(_("A counter-vote was already held on #%(number)d.")
                               % {"number": decision.pk})
        if decision.status != Status.ADOPTED or (
                decision.counter_vote_until is not None and decision.counter_vote_until < now):
            raise VotingClosed(_("The time to contest #%(number)d has passed.")
                               % {"number": decision.pk})
        ballot = _open_ballot(decision, BallotKind.COUNTER, acting_user=acting_user,
                              electorate=electorate, days=policy.counter_vote_days, now=now)
        decision.status = Status.CONTESTED
        decision.save(update_fields=["status"])
        audit.record("decision.contest", decision, acting_user=acting_user, after={
            "electorate": ballot.electorate_size, "closes_at": ballot.closes_at.isoformat()})
        notify.schedule("contested", decision)
    return ballot


def _close(ballot: Ballot, tally: Tally, outcome: Outcome, now: dt.datetime, *,
           acting_user: Account | None = None) -> None:
    """Close ``ballot`` with ``outcome`` and move its decision on (inside a transaction)."""
    ballot.closed_at, ballot.outcome = now, outcome
    ballot.votes_for, ballot.votes_against = tally.votes_for, tally.votes_against
    ballot.save(update_fields=["closed_at", "outcome", "votes_for", "votes_against"])
    decision = ballot.decision
    status = {Outcome.ADOPTED: Status.ADOPTED, Outcome.REJECTED: Status.REJECTED,
              Outcome.WITHDRAWN: Status.WITHDRAWN, Outcome.UPHELD: Status.ADOPTED,
              Outcome.CANCELLED: Status.CANCELLED}[outcome]
    decision.status = status
    fields = ["status"]
    if ballot.kind == BallotKind.PROPOSAL or outcome == Outcome.CANCELLED:
        decision.decided_at = now
        fields.append("decided_at")
    decision.save(update_fields=fields)
    if status in (Status.REJECTED, Status.WITHDRAWN):
        decision.operations.filter(status=OperationStatus.PENDING).update(
            status=OperationStatus.SKIPPED)
    audit.record("ballot.close", decision, acting_user=acting_user, after={
        "ballot": ballot.kind, "outcome": outcome, "for": tally.votes_for,
        "against": tally.votes_against, "electorate": ballot.electorate_size})
    notify.schedule("closed", decision)


def settle_ballots(now: dt.datetime | None = None) -> list[Ballot]:
    """Close every open ballot whose outcome is known (majority reached, or deadline passed).

    Return the ballots closed. The tallies are counted in one query for all.
    """
    now = now or clock.now()
    open_ballots = Ballot.objects.filter(closed_at__isnull=True).select_related("decision")
    closed = []
    for ballot, _tally, _outcome in due_outcomes(open_ballots, now):
        with transaction.atomic():
            # Counted again under the lock: a vote may have landed in between.
            locked = (Ballot.objects.select_for_update().select_related("decision")
                      .filter(pk=ballot.pk, closed_at__isnull=True).first())
            if locked is None:
                continue
            for closing, tally, outcome in due_outcomes([locked], now):
                _close(closing, tally, outcome, now)
                closed.append(closing)
    return closed


def _apply(row: Operation, *, acting_user: Account | None) -> None:
    """Run one pending operation inside the caller's transaction; raise its error."""
    operation = operations.get(row.type)
    params = operation.Params.model_validate(row.params)
    row.attempts += 1
    with audit.on_behalf_of(f"decision #{row.decision_id}"):
        operation.check(params)
        row.result = operation.apply(params, acting_user=acting_user, authorised_by=row)
    row.status, row.executed_at, row.message = OperationStatus.DONE, clock.now(), ""
    row.save(update_fields=["attempts", "result", "status", "executed_at", "message"])
    audit.record("operation.apply", row, acting_user=acting_user,
                 actor_label=None if acting_user else f"decision #{row.decision_id}",
                 after=_operation_record(row))


def _operation_record(row: Operation) -> dict[str, Any]:
    """What the audit log keeps of an operation: its decision, its votes, its outcome."""
    record: dict[str, Any] = {"decision": row.decision_id, "type": row.type,
                              "params": row.params, "status": row.status}
    if row.message:
        record["message"] = row.message
    ballots = Ballot.objects.filter(decision_id=row.decision_id, closed_at__isnull=False)
    record["votes"] = {ballot.kind: {"for": ballot.votes_for, "against": ballot.votes_against,
                                     "electorate": ballot.electorate_size,
                                     "outcome": ballot.outcome} for ballot in ballots}
    return record


def _run_pending(row_id: int) -> Operation | None:
    """Execute one operation of an adopted decision, once: under a row lock, status checked.

    An operation's refusal (a ChatonError) marks it failed and the later ones
    skipped; any other error propagates, rolls back and is retried at the next tick.
    """
    with transaction.atomic():
        row = (Operation.objects.select_for_update().select_related("decision")
               .filter(pk=row_id, status=OperationStatus.PENDING,
                       decision__status=Status.ADOPTED).first())
        if row is None:
            return None  # done by someone else meanwhile: never twice
        try:
            with transaction.atomic():
                _apply(row, acting_user=None)
        except ChatonError as error:
            _fail(row, str(error))
        return row


def _fail(row: Operation, reason: str) -> None:
    """Inside a transaction, with ``row`` locked: mark it failed with ``reason``, skip the
    later operations of its decision, record it and announce it."""
    row.status, row.message, row.executed_at = (OperationStatus.FAILED, reason[:2000],
                                                clock.now())
    row.save(update_fields=["attempts", "status", "message", "executed_at"])
    row.decision.operations.filter(status=OperationStatus.PENDING).update(
        status=OperationStatus.SKIPPED, message=_("Not run: an earlier operation failed."))
    audit.record("operation.fail", row, acting_user=None,
                 actor_label=f"decision #{row.decision_id}", after=_operation_record(row))
    notify.schedule("failed", row.decision)


def _revert(row_id: int) -> Operation | None:
    """Undo one done operation of a cancelled decision, once."""
    with transaction.atomic():
        row = (Operation.objects.select_for_update().select_related("decision")
               .filter(pk=row_id, status=OperationStatus.DONE,
                       decision__status=Status.CANCELLED).first())
        if row is None:
            return None
        operation = operations.get(row.type)
        params = operation.Params.model_validate(row.params)
        try:
            with transaction.atomic(), audit.on_behalf_of(f"decision #{row.decision_id}"):
                operation.revert(params, row.result, acting_user=None, authorised_by=row)
        except (operations.NotRevertible, ChatonError) as error:
            row.status, row.message = OperationStatus.NOT_REVERTED, str(error)
        else:
            row.status, row.message = OperationStatus.REVERTED, ""
        row.save(update_fields=["status", "message"])
        audit.record("operation.revert", row, acting_user=None,
                     actor_label=f"decision #{row.decision_id}", after=_operation_record(row))
        return row


def mark_failed(row_id: int, reason: str) -> Operation | None:
    """Record that the effect of an operation, run after its commit, failed (a deployment
    the engine refused …): the operation becomes ``failed`` with ``reason``, the later
    operations of its decision are not run, an audit row and a "failed" notice follow.

    Return the operation, or None when there is none (or it was not done).
    """
    with transaction.atomic():
        row = (Operation.objects.select_for_update().select_related("decision")
               .filter(pk=row_id, status__in=[OperationStatus.DONE, OperationStatus.PENDING])
               .first())
        if row is None:
            return None
        _fail(row, reason)
    return row


def failed_operation(decision: Decision, position: int | None = None) -> Operation:
    """Return the operation of ``decision`` at ``position`` (from 0), or its first failed
    one. Raise NotFound when there is none."""
    rows = decision.operations.order_by("position")
    row = (rows.filter(position=position).first() if position is not None
           else rows.filter(status=OperationStatus.FAILED).first())
    if row is None:
        raise NotFound(_("Decision #%(number)d has no such failed operation.")
                       % {"number": decision.pk}, field="position")
    return row


def do_retry_operation(row: Operation, *, acting_user: Account) -> Operation:
    """Run a failed operation of an adopted decision again, then the operations of that
    decision that were not run because of it. Return the operation, as it ended.

    Administrators only. Raise Forbidden for anyone else, Conflict when the
    operation did not fail or its decision is no longer adopted.
    """
    if not may_act_ordinarily(acting_user):
        raise Forbidden(_("Only administrators may retry an operation."))
    with transaction.atomic():
        locked = (Operation.objects.select_for_update().select_related("decision")
                  .filter(pk=row.pk).first())
        if (locked is None or locked.status != OperationStatus.FAILED
                or locked.decision.status != Status.ADOPTED):
            raise Conflict(_("Only a failed operation of an adopted decision can be retried."),
                           field="operation")
        before = {"status": locked.status, "message": locked.message}
        locked.status, locked.message = OperationStatus.PENDING, ""
        locked.save(update_fields=["status", "message"])
        locked.decision.operations.filter(status=OperationStatus.SKIPPED,
                                          position__gt=locked.position).update(
            status=OperationStatus.PENDING, message="")
        Decision.objects.filter(pk=locked.decision_id).update(executed_at=None)
        audit.record("operation.retry", locked, acting_user=acting_user, before=before,
                     after={"decision": locked.decision_id, "type": locked.type})
    execute_decisions(decision_id=locked.decision_id)
    locked.refresh_from_db()
    return locked


def execute_decisions(decision_id: int | None = None) -> list[Operation]:
    """Run the pending operations of adopted decisions (or of one), in order, and undo those
    of cancelled ones, last first. Return the operations handled, as they ended: an effect
    that failed after the commit has already marked its operation failed."""
    handled: list[Operation] = []
    pending = (Operation.objects.filter(status=OperationStatus.PENDING,
                                        decision__status=Status.ADOPTED)
               .order_by("decision_id", "position").values_list("pk", flat=True))
    if decision_id is not None:
        pending = pending.filter(decision_id=decision_id)
    for row_id in list(pending):
        row = _run_pending(row_id)
        if row is not None:
            handled.append(row)
    to_revert = (Operation.objects.filter(status=OperationStatus.DONE,
                                          decision__status=Status.CANCELLED)
                 .order_by("decision_id", "-position").values_list("pk", flat=True))
    if decision_id is not None:
        to_revert = to_revert.filter(decision_id=decision_id)
    for row_id in list(to_revert):
        row = _revert(row_id)
        if row is not None:
            handled.append(row)
    for row in handled:
        row.refresh_from_db(fields=["status", "message", "executed_at"])
    finished = {row.decision_id for row in handled}
    for decision in Decision.objects.filter(pk__in=finished, executed_at__isnull=True):
        if not decision.operations.filter(status=OperationStatus.PENDING).exists():
            decision.executed_at = clock.now()
            decision.save(update_fields=["executed_at"])
    for decision_id in finished:
        notify.schedule_by_id("executed", decision_id)
    return handled


def send_reminders(now: dt.datetime | None = None) -> list[Ballot]:
    """Remind the electors who have not voted, once per ballot, ``reminder_hours`` before
    its deadline. Return the ballots reminded."""
    now = now or clock.now()
    hours = current().reminder_hours
    if hours == 0:
        return []
    due = Ballot.objects.filter(closed_at__isnull=True, reminded_at__isnull=True,
                                closes_at__gt=now, closes_at__lte=now + dt.timedelta(hours=hours))
    reminded = []
    for ballot in due.select_related("decision"):
        with transaction.atomic():
            updated = Ballot.objects.filter(pk=ballot.pk, reminded_at__isnull=True).update(
                reminded_at=now)
            if updated:
                notify.schedule("reminder", ballot.decision)
                reminded.append(ballot)
    return reminded


def do_set_policy(changes: Mapping[str, Any], *, acting_user: Account | None,
                  authorised_by: Operation | None = None) -> dict[str, Any]:
    """Change policy values; return the previous values of those changed.

    Raise DecisionRequired unless a decision authorises it (``policy.change``),
    InvalidInput for an unknown rule.
    """
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput(_("Unknown rule: %(names)s.") % {"names": ", ".join(sorted(unknown))},
                           field="policy")
    from chaton.governance.operations.change_policy import ChangePolicyParams

    require(ChangePolicyParams.of(changes), authorised_by)
    with transaction.atomic():
        policy = current()
        before = audit.snapshot(policy, POLICY_FIELDS)
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.save()
        audit.record("policy.change", policy, acting_user=acting_user, before=before,
                     after=audit.snapshot(policy, POLICY_FIELDS))
    return {name: before[name] for name in changes}
