"""The governance benchmark: what the worker's ``governance.settle`` costs at every tick.

A collective of 100 voting members has 1,000 proposals open at once, each with
the 100 of them as its electorate and a realistic share of votes cast, written
straight into the database (``bulk_create``, a seeded generator: the same data
at every run). Then :func:`chaton.governance.actions.settle_ballots` is timed:

``governance_tally_1000x100_s``
    when no ballot is due (no majority yet, no deadline passed): the state
    recomputation the worker does at every tick (median of 5). Target ≤ 1 s.
``governance_close_1000x100_s``
    when every deadline has passed at once: 1,000 ballots closed, each with its
    audit row and its "closed" notice (mailed to the proposer through the
    configured mail backend: the outbox files of a collective without a mail
    server). No target.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from django.core.management import call_command

from bench.figures import Report, progress, timed

PROPOSAL_COUNT = 1_000
VOTER_COUNT = 100
TALLY_RUNS = 5
#: Share of the proposals where nobody voted against (adopted at the deadline).
UNOPPOSED_SHARE = 0.2


@dataclass(frozen=True)
class Assembly:
    """What was created: the proposals' count, the votes cast, and when they were opened."""

    proposals: int
    electors: int
    votes: int
    opened_at: dt.datetime


def populate_assembly(*, seed: int = 20240601, proposal_count: int = PROPOSAL_COUNT,
                      voter_count: int = VOTER_COUNT) -> Assembly:
    """Fill the (migrated) database with open proposals, their electorates and their votes.

    Every ballot stays open when counted now: no "for" majority of the
    electorate. Return a summary. Raise django.db.IntegrityError if the voters
    already exist.
    """
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from chaton.core import clock
    from chaton.directory.models import Account
    from chaton.governance.models import (
        Ballot,
        BallotKind,
        Choice,
        Decision,
        Elector,
        Kind,
        Operation,
        Status,
        Vote,
    )
    from chaton.governance.policy import current
    from chaton.members.models import Membership, MembershipKind, Person

    generator = random.Random(seed)
    now = clock.now()
    days = current().proposal_days
    password = make_password("benchmark password, shared by every voter")
    with transaction.atomic():
        persons = Person.objects.bulk_create([
            Person(full_name=f"Bench Voter {index:03d}", email=f"voter{index:03d}@example.org")
            for index in range(voter_count)])
        Membership.objects.bulk_create([
            Membership(person=person, kind=MembershipKind.REGULAR,
                       starts_on=clock.today() - dt.timedelta(days=generator.randint(30, 900)))
            for person in persons])
        accounts = Account.objects.bulk_create([
            Account(uid=f"voter{index:03d}", uid_number=900_000 + index,
                    display_name=person.full_name, email=person.email, password=password,
                    person=person)
            for index, person in enumerate(persons)])
        decisions = []
        for index in range(proposal_count):
            proposer = generator.choice(accounts)
            decisions.append(Decision(
                kind=Kind.EXTRAORDINARY, title=f"Bench proposal {index:04d}",
                proposed_by=proposer, proposed_by_label=proposer.display_name,
                # Opened over the last days: their deadlines are spread too.
                created_at=now - dt.timedelta(minutes=generator.randint(0, 6 * 24 * 60)),
                status=Status.OPEN))
        decisions = Decision.objects.bulk_create(decisions, batch_size=500)
        Operation.objects.bulk_create([
            Operation(decision=decision, position=0, type="group.grant",
                      params={"group": "tech", "account": f"user{index:05d}"},
                      summary=f"add user{index:05d} to the group tech")
            for index, decision in enumerate(decisions)], batch_size=500)
        ballots = Ballot.objects.bulk_create([
            Ballot(decision=decision, kind=BallotKind.PROPOSAL, opened_by=decision.proposed_by,
                   opened_at=decision.created_at,
                   closes_at=decision.created_at + dt.timedelta(days=days),
                   electorate_size=voter_count)
            for decision in decisions], batch_size=500)
        electors = [Elector(ballot=ballot, person=person)
                    for ballot in ballots for person in persons]
        Elector.objects.bulk_create(electors, batch_size=5000)
        votes = []
        for ballot in ballots:
            turnout = generator.randint(voter_count // 10, voter_count * 9 // 10)
            voters = generator.sample(range(voter_count), turnout)
            unopposed = generator.random() < UNOPPOSED_SHARE
            # "for" stays at most half the electorate: no ballot is due before its deadline.
            for_count = min(voter_count // 2, turnout if unopposed
                            else generator.randint(0, turnout))
            for position, voter in enumerate(voters):
                if unopposed and position >= for_count:
                    break
                choice = Choice.FOR if position < for_count else Choice.AGAINST
                cast_at = ballot.opened_at + dt.timedelta(minutes=generator.randint(1, 600))
                votes.append(Vote(ballot=ballot, person=persons[voter], account=accounts[voter],
                                  choice=choice, cast_at=min(cast_at, now)))
        Vote.objects.bulk_create(votes, batch_size=2000)
    return Assembly(proposals=len(decisions), electors=len(electors), votes=len(votes),
                    opened_at=now)


def bench_governance(report: Report, assembly: Assembly) -> None:
    """Time the settling of 1,000 open proposals: with nothing due, then all due at once."""
    from chaton.core import clock
    from chaton.governance.actions import settle_ballots
    from chaton.governance.models import Ballot, Decision, Status

    now = clock.now()
    samples = []
    for run in range(TALLY_RUNS):
        progress(f"settling {assembly.proposals} open proposals, none due "
                 f"({run + 1}/{TALLY_RUNS})")
        closed, seconds = timed(lambda: settle_ballots(now))
        if closed:
            raise RuntimeError(f"{len(closed)} ballots closed before their deadline")
        samples.append(seconds)

    after_deadlines = now + dt.timedelta(days=8)
    progress(f"settling {assembly.proposals} proposals whose deadline passed")
    # The notices are sent (and timed); only their 1,000 "sent" log lines are kept off stderr.
    notify_logger = logging.getLogger("chaton.governance.notify")
    level = notify_logger.level
    notify_logger.setLevel(logging.WARNING)
    try:
        closed, close_seconds = timed(lambda: settle_ballots(after_deadlines))
    finally:
        notify_logger.setLevel(level)
    if len(closed) != assembly.proposals or Ballot.objects.filter(
            closed_at__isnull=True).exists():
        raise RuntimeError(f"{len(closed)} of {assembly.proposals} ballots closed")
    adopted = Decision.objects.filter(status=Status.ADOPTED).count()
    progress(f"{adopted} adopted, {assembly.proposals - adopted} rejected")

    tally = statistics.median(samples)
    report.figure("governance_tally_1000x100_s", tally, "s")
    report.target("governance_tally_1000x100_s", tally, 1.0, "s")
    report.figure("governance_close_1000x100_s", close_seconds, "s")


def run_all(workspace: Path) -> int:
    """Given a workspace (Django set up on it), run the governance benchmark; return the exit
    status (1 when the target is missed)."""
    progress("creating the database")
    call_command("migrate", verbosity=0, interactive=False)
    assembly = populate_assembly()
    progress(f"{assembly.proposals} open proposals, {assembly.electors} electors, "
             f"{assembly.votes} votes")
    report = Report()
    bench_governance(report, assembly)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0
