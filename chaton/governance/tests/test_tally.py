"""The counting rules, on their own (no database)."""

import pytest

from chaton.governance.models import BallotKind, Outcome
from chaton.governance.tally import Tally, outcome

PROPOSAL, COUNTER = BallotKind.PROPOSAL, BallotKind.COUNTER


@pytest.mark.parametrize(("votes_for", "against", "electorate", "closing", "expected"), [
    (8, 0, 15, False, Outcome.ADOPTED),     # 8 of 15: a majority of the electorate, at once
    (7, 0, 15, False, None),                # 7 of 15: wait
    (2, 2, 4, False, None),                 # a tie never closes early
    (2, 2, 4, True, Outcome.REJECTED),      # at the deadline, someone voted against
    (0, 0, 15, True, Outcome.ADOPTED),      # nobody objected by the deadline
    (3, 0, 15, True, Outcome.ADOPTED),
    (3, 1, 15, True, Outcome.REJECTED),
    (3, 7, 15, False, None),                # no early rejection: votes may still change
])
def test_proposal(votes_for, against, electorate, closing, expected):
    assert outcome(PROPOSAL, Tally(votes_for, against, electorate), closing=closing) == expected


@pytest.mark.parametrize(("votes_for", "against", "electorate", "closing", "expected"), [
    (1, 1, 10, True, Outcome.CANCELLED),    # half of the votes cast against: cancelled
    (2, 1, 10, True, Outcome.UPHELD),
    (0, 0, 10, True, Outcome.UPHELD),       # nobody voted: the action stands
    (0, 6, 10, False, Outcome.CANCELLED),   # more than half of the electorate against
    (6, 0, 10, False, Outcome.UPHELD),
    (5, 5, 10, False, None),                # a tie never closes early
    (5, 5, 10, True, Outcome.CANCELLED),
])
def test_counter_vote(votes_for, against, electorate, closing, expected):
    assert outcome(COUNTER, Tally(votes_for, against, electorate), closing=closing) == expected
