"""Counting votes: the rules that open, adopt, reject and cancel, as pure functions.

- A proposal (extraordinary action) is adopted as soon as its "for" votes are
  more than half of the electorate; at its deadline it is adopted if nobody
  voted against, rejected otherwise.
- A counter-vote (on an ordinary action) cancels the action when, at its
  deadline, at least half of the votes cast are against it; it closes early
  when "for" or "against" alone is more than half of the electorate, since
  no change of vote can then alter the result.

An early close never happens on a tie: it needs more than half of the whole
electorate on one side, and then the other side has less than half.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q

from chaton.governance.models import Ballot, BallotKind, Choice, Outcome, Vote


@dataclass(frozen=True)
class Tally:
    votes_for: int
    votes_against: int
    electorate: int

    @property
    def cast(self) -> int:
        return self.votes_for + self.votes_against


def outcome(kind: str, tally: Tally, *, closing: bool) -> Outcome | None:
    """Given a ballot kind, its tally and whether its deadline passed, return its outcome.

    None means the ballot stays open.
    """
    if kind == BallotKind.PROPOSAL:
        if 2 * tally.votes_for > tally.electorate:
            return Outcome.ADOPTED
        if closing:
            return Outcome.ADOPTED if tally.votes_against == 0 else Outcome.REJECTED
        return None
    if 2 * tally.votes_for > tally.electorate:
        return Outcome.UPHELD
    if 2 * tally.votes_against > tally.electorate:
        return Outcome.CANCELLED
    if closing:
        if tally.cast and 2 * tally.votes_against >= tally.cast:
            return Outcome.CANCELLED
        return Outcome.UPHELD
    return None


def tallies(ballots: Iterable[Ballot]) -> dict[int, Tally]:
    """Given ballots, return their live tallies by ballot id, in one query."""
    by_id = {ballot.pk: ballot for ballot in ballots}
    counts = {ballot_id: [0, 0] for ballot_id in by_id}
    rows = (Vote.objects.filter(ballot_id__in=list(by_id)).values("ballot_id")
            .annotate(votes_for=Count("pk", filter=Q(choice=Choice.FOR)),
                      votes_against=Count("pk", filter=Q(choice=Choice.AGAINST))))
    for row in rows:
        counts[row["ballot_id"]] = [row["votes_for"], row["votes_against"]]
    return {ballot_id: Tally(counts[ballot_id][0], counts[ballot_id][1],
                             by_id[ballot_id].electorate_size) for ballot_id in by_id}


def tally_of(ballot: Ballot) -> Tally:
    """Return the tally of one ballot: live while it is open, the recorded counts once closed."""
    if ballot.closed_at is not None:
        return Tally(ballot.votes_for, ballot.votes_against, ballot.electorate_size)
    return tallies([ballot])[ballot.pk]


def due_outcomes(ballots: Iterable[Ballot],
                 now: dt.datetime) -> list[tuple[Ballot, Tally, Outcome]]:
    """Given open ballots and the time, return those that close now, with tally and outcome."""
    ballots = list(ballots)
    counted = tallies(ballots)
    closing = []
    for ballot in ballots:
        result = outcome(ballot.kind, counted[ballot.pk], closing=ballot.closes_at <= now)
        if result is not None:
            closing.append((ballot, counted[ballot.pk], result))
    return closing
