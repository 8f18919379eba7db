"""``/api/v1/governance``: the operations registry, decisions, votes, counter-votes, the
policy and the inventory of a period.

Members propose and vote, so every endpoint here takes the token of any
active account (``auth=account_token``), not only an administrator's. Who may
do what is decided by the actions of :mod:`chaton.governance.actions`; their
refusals answer with their own codes:

==========  =========================================================================
status      code
==========  =========================================================================
403         ``forbidden``: not allowed to propose, act, withdraw …
403         ``decision_required``: an extraordinary operation asked for directly;
            the body's ``link`` is the path of a new proposal carrying it
403         ``not_a_voter``: the account's person is not in the ballot's electorate
409         ``voting_closed``: the vote is over, or there is nothing left to contest
==========  =========================================================================

Writes go through the actions, reads through :mod:`chaton.governance.queries`.
"""


import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from chaton.core.api import (
    ERRORS,
    DateIn,
    ErrorOut,
    InputSchema,
    Page,
    account_token,
    acting_account,
    request_token,
    vote_token,
)
from chaton.core.errors import InvalidInput
from chaton.governance import actions, export, operations, queries
from chaton.governance.credentials import Credential
from chaton.governance.models import Ballot, Decision, Kind, Policy, Status, Vote
from chaton.governance.policy import POLICY_FIELDS, current, kind_of

if TYPE_CHECKING:
    from chaton.directory.models import Account

router = Router(tags=["governance"], auth=account_token)


# --- lookups --------------------------------------------------------------------------------


# --- schemas --------------------------------------------------------------------------------


class DecisionRequiredOut(ErrorOut):
    """403 ``decision_required``: the operation needs a decision of the members."""

    link: str | None = Field(None, examples=["/decisions/new/?operation=group.grant&group=tech"],
                             description="The path of a new proposal carrying the operation.")


class OperationTypeOut(Schema):
    type: str = Field(..., examples=["group.grant"])
    label: str
    default_class: str | None = Field(
        ..., description="ordinary or extraordinary; null when it depends on the parameters "
                         "(group.grant: on whether the group needs a decision).")
    current_class: str | None = Field(
        ..., description="The class under the collective's policy; null when it depends on "
                         "the parameters.")
    revertible: bool = Field(..., description="Whether a counter-vote that cancels it undoes it.")
    params_schema: dict[str, Any] = Field(..., description="The JSON schema of its params.")


class OperationOut(Schema):
    position: int
    type: str
    params: dict[str, Any]
    summary: str
    status: str = Field(..., description="pending, done, failed, reverted, not_reverted or "
                                         "skipped")
    message: str
    executed_at: dt.datetime | None


class VoteOut(Schema):
    person: str = Field(..., description="The voter's full name.")
    choice: str = Field(..., description="for or against")
    cast_at: dt.datetime
    changed_at: dt.datetime | None


class BallotOut(Schema):
    kind: str = Field(..., description="proposal (the vote on an extraordinary action) or "
                                       "counter (a counter-vote on an ordinary one)")
    opened_at: dt.datetime
    closes_at: dt.datetime
    closed_at: dt.datetime | None
    is_open: bool
    outcome: str | None = Field(..., description="adopted, rejected, upheld, cancelled or "
                                                 "withdrawn; null while open")
    votes_for: int = Field(..., description="Live while open, final once closed.")
    votes_against: int
    electorate: int = Field(..., description="The voters counted when the ballot opened.")


class BallotDetailOut(BallotOut):
    votes: list[VoteOut] | None = Field(
        ..., description="Who voted what; null when the policy keeps votes secret.")
    my_vote: str | None = Field(..., description="The caller's vote: for, against or null.")


class DecisionOut(Schema):
    id: int
    kind: str = Field(..., description="ordinary or extraordinary")
    title: str
    status: str = Field(..., description="open, adopted, contested, rejected, withdrawn or "
                                         "cancelled")
    proposed_by: str
    proposed_by_uid: str | None
    created_at: dt.datetime
    decided_at: dt.datetime | None
    counter_vote_until: dt.datetime | None = Field(
        ..., description="An ordinary action: until when a counter-vote may be opened.")
    executed_at: dt.datetime | None
    execution: str = Field(..., description=(
        "executed (every operation done), partly executed (some done, one failed), failed "
        "(one failed, none done), or empty (not run yet, or reverted)"))
    operations: list[OperationOut]
    ballots: list[BallotOut]


class DecisionDetailOut(DecisionOut):
    description: str
    ballots: list[BallotDetailOut]  # type: ignore[assignment]


class OperationIn(InputSchema):
    type: str = Field(..., max_length=64, examples=["group.grant"])
    params: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"group": "passwords", "account": "kim", "expires_on": "2027-06-30"}],
        description="As the operation's params_schema says (GET /operations).")


class DecisionIn(InputSchema):
    title: str = Field(..., max_length=200)
    description: str = Field("", max_length=10_000)
    operations: list[OperationIn]
    mode: Literal["propose", "act"] = Field(
        "propose", description="propose: put it to the members' vote (extraordinary); act: "
                               "run it at once as an ordinary action (administrators).")


class VoteIn(InputSchema):
    choice: str = Field(..., max_length=20, examples=["for"], description="for or against")


class PolicyOut(Schema):
    voting_delay_days: int
    proposal_days: int
    counter_vote_window_days: int
    counter_vote_days: int
    reminder_hours: int
    votes_public: bool
    classes: dict[str, str] = Field(..., description="The class of an operation type, where "
                                                     "the policy overrides its default.")
    updated_at: dt.datetime


# --- what the answers carry -----------------------------------------------------------------


class _ParamsNeeded(Exception):
    """Raised by :class:`_NoParams`: the class of this operation depends on its params."""


class _NoParams:
    """Stands for params that were not given: reading any of them raises _ParamsNeeded."""

    def __getattr__(self, name: str) -> Any:
        raise _ParamsNeeded(name)


def operation_classes(operation: operations.OperationType[Any],
                      policy: Policy) -> tuple[str | None, str | None]:
    """Given an operation type and the policy, return (its default class, its class now).

    None where the class depends on the params: ``default_kind`` reads one of them
    (group.grant reads the group), and there are none here to read.
    """
    try:
        default: Kind | None = operation.default_kind(_NoParams())
    except _ParamsNeeded:
        default = None
    if default is not None:
        return str(default), str(kind_of(operation.type, default, policy))
    overridden = (policy.classes or {}).get(operation.type)
    return None, (str(overridden) if overridden in Kind.values else None)


def _operations_out(row: queries.DecisionRow) -> list[dict[str, Any]]:
    return [{"position": operation.position, "type": operation.type, "params": operation.params,
             "summary": operation.summary, "status": operation.status,
             "message": operation.message, "executed_at": operation.executed_at}
            for operation in row.operations]


def _ballot_out(ballot: Ballot, tally: Any) -> dict[str, Any]:
    return {"kind": ballot.kind, "opened_at": ballot.opened_at, "closes_at": ballot.closes_at,
            "closed_at": ballot.closed_at, "is_open": ballot.closed_at is None,
            "outcome": ballot.outcome or None, "votes_for": tally.votes_for,
            "votes_against": tally.votes_against, "electorate": tally.electorate}


def _ballots(row: queries.DecisionRow) -> list[tuple[Ballot, Any]]:
    return [(ballot, tally) for ballot, tally in ((row.proposal, row.proposal_tally),
                                                  (row.counter, row.counter_tally))
            if ballot is not None]


def _decision_out(row: queries.DecisionRow) -> dict[str, Any]:
    """Given a decision's row, return what the list shows of it."""
    decision = row.decision
    proposer = decision.proposed_by
    return {"id": decision.pk, "kind": decision.kind, "title": decision.title,
            "status": decision.status, "proposed_by": decision.proposed_by_label,
            "proposed_by_uid": proposer.uid if proposer is not None else None,
            "created_at": decision.created_at, "decided_at": decision.decided_at,
            "counter_vote_until": decision.counter_vote_until,
            "executed_at": decision.executed_at, "execution": row.execution,
            "operations": _operations_out(row),
            "ballots": [_ballot_out(ballot, tally) for ballot, tally in _ballots(row)]}


def _decision_detail(decision: Decision, account: "Account") -> dict[str, Any]:
    """Given a decision and the caller's account, return the decision with its ballots, the
    votes when the policy makes them public, and the caller's own vote."""
    row = queries.row(decision)
    public = current().votes_public
    mine: dict[int, str] = {}
    if account.person_id is not None:
        mine = dict(Vote.objects.filter(ballot__decision=decision, person_id=account.person_id)
                    .values_list("ballot_id", "choice"))
    ballots = []
    for ballot, tally in _ballots(row):
        out = _ballot_out(ballot, tally)
        out["votes"] = ([{"person": vote.person.full_name, "choice": vote.choice,
                          "cast_at": vote.cast_at, "changed_at": vote.changed_at}
                         for vote in queries.votes_of(ballot)] if public else None)
        out["my_vote"] = mine.get(ballot.pk)
        ballots.append(out)
    return {**_decision_out(row), "description": row.decision.description, "ballots": ballots}


class DecisionPage(Page):
    """:class:`~chaton.core.api.Page` whose items are counted together: the live tallies of a
    whole page come in one query, so the list costs the same number of queries at any size."""

    def paginate_queryset(self, queryset: QuerySet[Decision], pagination: Any,
                          request: HttpRequest, **params: Any) -> Any:
        page = super().paginate_queryset(queryset, pagination, request, **params)
        page["items"] = [_decision_out(row) for row in queries.rows(page["items"])]
        return page


# --- the registry and the policy ------------------------------------------------------------


@router.get("/operations", response={200: list[OperationTypeOut], **ERRORS},
            summary="The operations decisions can carry, with their class and params")
def list_operation_types(request: HttpRequest) -> list[dict[str, Any]]:
    policy = current()
    result = []
    for operation in operations.all_types():
        default, now = operation_classes(operation, policy)
        result.append({"type": operation.type, "label": str(operation.label),
                       "default_class": default, "current_class": now,
                       "revertible": operation.revertible,
                       "params_schema": operations.params_schema(operation)})
    return result


@router.get("/policy", response={200: PolicyOut, **ERRORS},
            summary="The collective's governance rules")
def get_policy(request: HttpRequest) -> dict[str, Any]:
    """The rules in force; they change only by a decision (operation ``policy.change``)."""
    policy = current()
    return {**{name: getattr(policy, name) for name in POLICY_FIELDS},
            "classes": policy.classes or {}, "updated_at": policy.updated_at}


# --- decisions ------------------------------------------------------------------------------


@router.get("/decisions", response={200: list[DecisionOut], **ERRORS},
            summary="List decisions, newest first, with their live tallies")
@paginate(DecisionPage)
def list_decisions(request: HttpRequest, status: str = "", kind: str = "") -> Any:
    """``?status=`` (open, adopted, contested, rejected, withdrawn, cancelled) and ``?kind=``
    (ordinary, extraordinary) filter the list."""
    chosen = queries.decisions()
    if status:
        if status not in Status.values:
            raise InvalidInput(_("Unknown status: choose among %(choices)s.")
                               % {"choices": ", ".join(Status.values)}, field="status")
        chosen = chosen.filter(status=status)
    if kind:
        if kind not in Kind.values:
            raise InvalidInput(_("Unknown kind: ordinary or extraordinary."), field="kind")
        chosen = chosen.filter(kind=kind)
    return chosen


@router.post("/decisions", response={201: DecisionDetailOut, **ERRORS, 403: DecisionRequiredOut},
             summary="Open a proposal, or take an ordinary action")
def create_decision(request: HttpRequest, payload: DecisionIn) -> tuple[int, dict[str, Any]]:
    """``mode: "propose"`` opens a proposal (any voting member or administrator);
    ``mode: "act"`` runs ordinary operations at once (administrators) and opens the
    counter-vote window. An extraordinary operation in an action answers 403
    ``decision_required`` with the ``link`` of a proposal to open instead. A bad
    operation answers 400 (or 404 for an unknown group, account …), and nothing is
    written."""
    account = acting_account(request)
    specs = [{"type": operation.type, "params": operation.params}
             for operation in payload.operations]
    if payload.mode == "act":
        decision = actions.do_act(payload.title, specs, acting_user=account,
                                  description=payload.description)
    else:
        decision = actions.do_propose(payload.title, specs, acting_user=account,
                                      description=payload.description)
    return 201, _decision_detail(decision, account)


@router.get("/decisions/{decision_id}", response={200: DecisionDetailOut, **ERRORS},
            summary="A decision: its operations, ballots, votes and the caller's own vote")
def get_decision(request: HttpRequest, decision_id: int) -> dict[str, Any]:
    return _decision_detail(queries.decision_by_id(decision_id), acting_account(request))


@router.post("/decisions/{decision_id}/vote", response={200: DecisionDetailOut, **ERRORS},
             auth=vote_token,
             summary="Vote for or against, or change one's vote, until the close")
def vote(request: HttpRequest, decision_id: int, payload: VoteIn) -> dict[str, Any]:
    """Votes on the open ballot: the proposal, or the counter-vote. The same vote again
    counts once. Needs a token with the ``vote`` scope, which only a token the member
    created for themselves carries (403 ``missing_scope`` otherwise). 409
    ``voting_closed`` after the close, 403 ``not_a_voter`` for an account whose person
    is not in the electorate counted at the opening, 403 ``password_not_own`` for a
    token made since someone else set the account's password (it votes again once the
    member set their own from a reset link mailed to their own address)."""
    account = acting_account(request)
    decision = queries.decision_by_id(decision_id)
    actions.do_vote(decision, payload.choice, acting_user=account,
                    credential=Credential.api_token(request_token(request)))
    return _decision_detail(decision, account)


@router.post("/decisions/{decision_id}/withdraw", response={200: DecisionDetailOut, **ERRORS},
             summary="Withdraw an open proposal (its author or an administrator)")
def withdraw(request: HttpRequest, decision_id: int) -> dict[str, Any]:
    account = acting_account(request)
    decision = actions.do_withdraw(queries.decision_by_id(decision_id), acting_user=account)
    return _decision_detail(decision, account)


@router.post("/decisions/{decision_id}/counter-vote",
             response={200: DecisionDetailOut, **ERRORS},
             summary="Contest an ordinary action: open a counter-vote within its window")
def counter_vote(request: HttpRequest, decision_id: int) -> dict[str, Any]:
    """Any voting member may, until ``counter_vote_until``; 409 ``voting_closed`` after."""
    account = acting_account(request)
    decision = queries.decision_by_id(decision_id)
    actions.do_open_counter_vote(decision, acting_user=account)
    return _decision_detail(decision, account)


class RetryIn(InputSchema):
    position: int | None = Field(None, ge=0, le=1000, description=(
        "The operation's position (from 0); left out: the first failed one."))


@router.post("/decisions/{decision_id}/retry", response={200: DecisionDetailOut, **ERRORS},
             summary="Run a failed operation of an adopted decision again (administrators)")
def retry(request: HttpRequest, decision_id: int, payload: RetryIn) -> dict[str, Any]:
    """The operation runs again at once, then those that were not run because it failed.
    403 ``forbidden`` for a member, 409 ``conflict`` for an operation that did not fail."""
    account = acting_account(request)
    decision = queries.decision_by_id(decision_id)
    actions.do_retry_operation(actions.failed_operation(decision, payload.position),
                               acting_user=account)
    return _decision_detail(decision, account)


# --- the inventory --------------------------------------------------------------------------

_MEDIA_TYPES = {"md": "text/markdown", "csv": "text/csv", "html": "text/html"}


@router.get("/inventory", response=ERRORS, summary="The decisions of a period, as the activity "
            "report lists them", openapi_extra={"responses": {"200": {
                "description": "The inventory: ordinary and extraordinary actions in two "
                               "tables (Markdown, HTML) or a Kind column (CSV).",
                "content": {media: {"schema": {"type": "string"}}
                            for media in _MEDIA_TYPES.values()}}}})
def inventory(request: HttpRequest, start: DateIn, end: DateIn,
              format: str = "md") -> HttpResponse:
    """Both days are included; ``format`` is md, csv or html. Withdrawn proposals are left
    out."""
    if end < start:
        raise InvalidInput(_("The period ends before it starts."), field="end")
    if format not in export.FORMATS:
        # Checked before reading anything.
        raise InvalidInput(_("Unknown format “%(format)s”: choose md, csv or html.")
                           % {"format": format[:20]}, field="format")
    content, media_type = export.render(export.inventory(start, end), format)
    response = HttpResponse(content, content_type=media_type)
    response["Content-Disposition"] = f'inline; filename="decisions-{start}-{end}.{format}"'
    response["Content-Security-Policy"] = export.CONTENT_SECURITY_POLICY
    return response
