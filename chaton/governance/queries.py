"""Reads about decisions: lists with their tallies (a constant number of queries), one
decision's ballots and votes, the inventory of a period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.core.queries import is_database_id
from chaton.governance.models import (
    Ballot,
    BallotKind,
    Decision,
    Kind,
    Operation,
    Status,
    Vote,
)
from chaton.governance.tally import Tally, tallies


@dataclass
class DecisionRow:
    """A decision with what a list shows of it: its ballots' tallies and its operations."""

    decision: Decision
    operations: list[Operation]
    proposal: Ballot | None = None
    proposal_tally: Tally | None = None
    counter: Ballot | None = None
    counter_tally: Tally | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def open_ballot(self) -> Ballot | None:
        for ballot in (self.proposal, self.counter):
            if ballot is not None and ballot.closed_at is None:
                return ballot
        return None

    @property
    def execution(self) -> str:
        """How far its operations went: ``executed`` (all done), ``partly executed`` (some
        done, one failed), ``failed`` (one failed, none done), or "" (not run yet, or
        reverted)."""
        return execution_of([operation.status for operation in self.operations])

    @property
    def tally(self) -> Tally | None:
        """The tally the report shows: the proposal's, else the counter-vote's, if any."""
        return self.proposal_tally or self.counter_tally


class Execution:
    EXECUTED = "executed"
    PARTLY = "partly executed"
    FAILED = "failed"


def execution_of(statuses: list[str]) -> str:
    """Given the statuses of a decision's operations, return how far they went (see
    :attr:`DecisionRow.execution`)."""
    from chaton.governance.models import OperationStatus

    if OperationStatus.FAILED in statuses:
        return Execution.PARTLY if OperationStatus.DONE in statuses else Execution.FAILED
    if statuses and all(status == OperationStatus.DONE for status in statuses):
        return Execution.EXECUTED
    return ""


def decisions() -> QuerySet[Decision]:
    """Return every decision, newest first, with what :func:`rows` needs prefetched."""
    return (Decision.objects.select_related("proposed_by")
            .prefetch_related(Prefetch("operations", queryset=Operation.objects.order_by(
                "position")), "ballots")
            .order_by("-created_at", "-pk"))


def decision_by_id(number: int, *, field: str = "decision_id") -> Decision:
    """Given a decision's number, return it. Raise NotFound (also for a number out of range)."""
    decision = Decision.objects.filter(pk=number).first() if is_database_id(number) else None
    if decision is None:
        raise _no_decision(number, field)
    return decision


def decision_row_by_id(number: int, *, field: str = "decision_id") -> DecisionRow:
    """Given a decision's number, return its row (tallies, operations). Raise NotFound."""
    found = rows(decisions().filter(pk=number)) if is_database_id(number) else []
    if not found:
        raise _no_decision(number, field)
    return found[0]


def _no_decision(number: int, field: str) -> NotFound:
    return NotFound(_("No decision has the number %(number)d.") % {"number": number},
                    field=field)


def rows(page: Iterable[Decision]) -> list[DecisionRow]:
    """Given decisions (from :func:`decisions`), return their rows with tallies.

    Open ballots are counted in one query for the whole page; closed ones use
    the counts written at their close.
    """
    result = []
    open_ballots = []
    for decision in page:
        row = DecisionRow(decision, list(decision.operations.all()))
        for ballot in decision.ballots.all():
            if ballot.kind == BallotKind.PROPOSAL:
                row.proposal = ballot
            else:
                row.counter = ballot
            if ballot.closed_at is None:
                open_ballots.append(ballot)
        result.append(row)
    live = tallies(open_ballots) if open_ballots else {}
    for row in result:
        if row.proposal is not None:
            row.proposal_tally = _tally(row.proposal, live)
        if row.counter is not None:
            row.counter_tally = _tally(row.counter, live)
    return result


def _tally(ballot: Ballot, live: dict[int, Tally]) -> Tally:
    return live.get(ballot.pk) or Tally(ballot.votes_for, ballot.votes_against,
                                        ballot.electorate_size)


def row(decision: Decision) -> DecisionRow:
    """Return the row of one decision."""
    return rows(decisions().filter(pk=decision.pk))[0]


def votes_of(ballot: Ballot) -> QuerySet[Vote]:
    """Return the votes of a ballot with their voters, by name."""
    return (Vote.objects.filter(ballot=ballot).select_related("person")
            .order_by("person__full_name"))


def in_period(start: dt.date, end: dt.date) -> list[DecisionRow]:
    """Return the rows of the decisions taken (ordinary) or proposed (extraordinary) in the
    period, oldest first: the inventory of the activity report. Withdrawn ones are left out."""
    chosen = (decisions().filter(created_at__date__gte=start, created_at__date__lte=end)
              .exclude(status=Status.WITHDRAWN).order_by("created_at", "pk"))
    return rows(chosen)


def by_kind(found: list[DecisionRow]) -> tuple[list[DecisionRow], list[DecisionRow]]:
    """Split rows into (ordinary, extraordinary)."""
    return ([row for row in found if row.decision.kind == Kind.ORDINARY],
            [row for row in found if row.decision.kind == Kind.EXTRAORDINARY])


def persons_voting_now(person_ids: Iterable[int | None]) -> list[int]:
    """Return those of ``person_ids`` who have a vote on a ballot that is still open."""
    wanted = [person_id for person_id in person_ids if person_id is not None]
    if not wanted:
        return []
    return sorted(set(Vote.objects.filter(person_id__in=wanted, ballot__closed_at__isnull=True)
                      .values_list("person_id", flat=True)))


def decided_accesses(group_name: str) -> set[str]:
    """Return the uids that adopted extraordinary decisions put in the group ``group_name``
    (``group.grant`` operations done and not reverted): removing them, or the group, takes a
    decision too."""
    from chaton.governance.models import OperationStatus

    granted = (Operation.objects.filter(
        type="group.grant", status=OperationStatus.DONE, decision__status=Status.ADOPTED,
        decision__kind=Kind.EXTRAORDINARY, params__group=group_name)
        .values_list("params__account", flat=True))
    return {str(uid) for uid in granted}
