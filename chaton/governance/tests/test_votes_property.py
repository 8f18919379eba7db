"""Property: whatever an administrator does directly — mint tokens for anyone, re-link
accounts, record back-dated memberships, end memberships, vote with what they hold — the
votes counted are the members' own and the electorate moves only through decisions.

Hypothesis draws sequences of such steps, mixed with members voting for themselves; after
each sequence the votes and the electorate are exactly what a model that knows only the
members' own votes and the executed decisions predicts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.core.errors import ChatonError
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account
from chaton.governance import actions
from chaton.governance.credentials import Credential
from chaton.governance.models import Decision, Elector, Vote
from chaton.governance.tests.test_api import GRANT_PASSWORDS
from chaton.members import actions as member_actions
from chaton.members.models import Membership, Person
from chaton.members.queries import voting_members
from chaton.testing.voters import recorded_at_start

pytestmark = pytest.mark.django_db

VOTERS = ("ana", "bo", "cy", "di")
SPARES = ("spare1", "spare2")
ALL_SCOPES = ["read", "write", "admin", "vote"]
RESET_PASSWORD = "known to the admin 6612"

# One step: (kind, a voter's index, another index, a choice, a number of days).
steps = st.lists(st.tuples(
    st.sampled_from(["mint", "mint_vote", "relink", "relink_vote", "backdate", "end_direct",
                     "end_ordinary", "own_vote", "admin_session_vote", "reset_vote"]),
    st.integers(0, len(VOTERS) - 1),
    st.integers(0, len(VOTERS) + len(SPARES) - 1),
    st.sampled_from(["for", "against"]),
    st.integers(1, 400),
), max_size=14)


@dataclass
class World:
    admin: Account
    voters: list[Account]
    #: The voters' persons, as at the start (accounts may be re-linked on the way).
    persons: list[Person]
    spares: list[Account]
    decision: Decision
    #: What the members chose themselves, by person id: the votes that must be counted.
    own_votes: dict[int, str] = field(default_factory=dict)
    #: Persons whose membership an executed decision ended before today.
    ended: set[int] = field(default_factory=set)
    newcomers: set[int] = field(default_factory=set)


def _world() -> World:
    admin = directory_actions.do_create_account("boss", acting_user=None, display_name="Boss",
                                                email="boss@example.org", is_admin=True)
    voters = []
    for uid in VOTERS:
        person = member_actions.do_create_person(f"P {uid}", f"{uid}@example.org",
                                                 acting_user=None)
        recorded_at_start(member_actions.do_start_membership(
            person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=90)))
        voters.append(directory_actions.do_create_account(
            uid, acting_user=None, display_name=uid, email=f"{uid}@example.org", person=person))
    spares = [directory_actions.do_create_account(uid, acting_user=None, display_name=uid,
                                                  email=f"{uid}@example.org")
              for uid in SPARES]
    directory_actions.do_create_account("kim", acting_user=None, display_name="Kim",
                                        email="kim@example.org")
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    decision = actions.do_propose("Protected", [GRANT_PASSWORDS], acting_user=voters[0])
    return World(admin=admin, voters=voters, persons=[account.person for account in voters],
                 spares=spares, decision=decision)


def _attempt(step: object) -> None:
    """Run one direct action; a refusal is an answer, not a failure."""
    try:
        with transaction.atomic():
            step()  # type: ignore[operator]
    except ChatonError:
        pass


def _run(world: World, kind: str, index: int, other: int, choice: str, days: int) -> None:
    admin = world.admin
    accounts = world.voters + world.spares
    voter, person = world.voters[index], world.persons[index]
    target = accounts[other]
    today = clock.today()
    if kind in ("mint", "mint_vote"):
        scopes = ALL_SCOPES[: 1 + days % 4]
        admin_token, _key = do_create_api_token(admin, "admin", acting_user=admin,
                                                owner_proved=True)
        made: list[object] = []
        _attempt(lambda: made.append(do_create_api_token(
            target, "minted", acting_user=admin, scopes=scopes, via_token=admin_token)[0]))
        if kind == "mint_vote" and made:
            token = made[0]
            _attempt(lambda: actions.do_vote(world.decision, choice, acting_user=target,
                                             credential=Credential.api_token(token)))
    elif kind in ("relink", "relink_vote"):
        _attempt(lambda: directory_actions.do_update_account(target, acting_user=admin,
                                                             owner=person))
        target.refresh_from_db()
        if kind == "relink_vote" and target.pk not in {account.pk for account in world.voters}:
            # The administrator signs in with the account they just re-linked.
            _attempt(lambda: actions.do_vote(world.decision, choice, acting_user=target,
                                             credential=Credential.session(target)))
    elif kind == "backdate":
        email = f"new{days}-{len(world.newcomers)}@example.org"
        person = member_actions.do_create_person("Newcomer", email, acting_user=None)
        member_actions.do_start_membership(person, acting_user=admin,
                                           starts_on=today - dt.timedelta(days=days))
        world.newcomers.add(person.pk)
    elif kind == "end_direct":
        membership = Membership.objects.get(person=person)
        _attempt(lambda: member_actions.do_end_membership(
            membership, today - dt.timedelta(days=1), acting_user=admin))
    elif kind == "end_ordinary":
        membership = Membership.objects.get(person=person)
        last_day = today - dt.timedelta(days=1 + days % 30)
        try:
            with transaction.atomic():
                actions.do_end_membership_ordinarily(membership, last_day, acting_user=admin)
        except ChatonError:
            pass
        else:
            world.ended.add(person.pk)
    elif kind == "own_vote":
        voter.refresh_from_db()
        try:
            with transaction.atomic():
                actions.do_vote(world.decision, choice, acting_user=voter,
                                credential=Credential.session(voter))
        except ChatonError:
            pass
        else:
            world.own_votes[voter.person_id] = choice  # type: ignore[index]
    elif kind == "reset_vote":
        # The administrator sets the member's password, then votes with it.
        directory_actions.do_set_password(voter, RESET_PASSWORD, acting_user=admin)
        _attempt(lambda: actions.do_vote(world.decision, choice, acting_user=voter,
                                         credential=Credential.password(voter, RESET_PASSWORD)))
    elif kind == "admin_session_vote":
        _attempt(lambda: actions.do_vote(world.decision, choice, acting_user=admin,
                                         credential=Credential.session(admin)))
        # And with a member's account but the administrator's own session: never theirs.
        _attempt(lambda: actions.do_vote(world.decision, choice, acting_user=voter,
                                         credential=Credential.session(admin)))


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=steps)
def test_votes_and_electorate_change_only_through_own_credentials_and_decisions(
        sequence: list[tuple[str, int, int, str, int]]) -> None:
    with transaction.atomic():
        world = _world()
        electors = set(Elector.objects.filter(ballot__decision=world.decision)
                       .values_list("person_id", flat=True))
        for step in sequence:
            _run(world, *step)

        counted = dict(Vote.objects.filter(ballot__decision=world.decision)
                       .values_list("person_id", "choice"))
        assert counted == world.own_votes
        own_accounts = {account.pk: person.pk for account, person
                        in zip(world.voters, world.persons, strict=True)}
        for vote in Vote.objects.filter(ballot__decision=world.decision):
            # Cast by the person's own account, with its own signed-in session.
            assert own_accounts.get(vote.account_id) == vote.person_id
        for row in AuditLog.objects.filter(action__startswith="vote."):
            assert row.after["credential"] == {"method": "session", "interface": "web"}
            assert row.actor_label in VOTERS
            assert row.actor_id in own_accounts
        assert set(Elector.objects.filter(ballot__decision=world.decision)
                   .values_list("person_id", flat=True)) == electors
        expected = {person.pk for person in world.persons} - world.ended
        today = clock.today()
        assert set(voting_members(today).values_list("pk", flat=True)) == expected
        # Back-dated newcomers wait the whole delay from the day they were recorded.
        delay = actions.current().voting_delay_days
        assert not (set(voting_members(today + dt.timedelta(days=delay - 1))
                        .values_list("pk", flat=True)) & world.newcomers)
        assert not Person.objects.filter(pk__in=world.newcomers, memberships__isnull=True)
        transaction.set_rollback(True)
