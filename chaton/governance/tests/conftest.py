"""A small invented collective for the governance tests: voters with accounts, an admin,
a protected group."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chaton.adapters.ldap.fake import FakeDirectory
from chaton.core import clock
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, Group
from chaton.members import actions as members_actions
from chaton.testing.voters import recorded_at_start


@dataclass
class Community:
    admin: Account
    voters: list[Account]
    newcomer: Account  # a member for 2 days: not a voter yet
    outsider: Account  # an account with no person behind it
    passwords: Group  # members added by decision only
    team: Group


def make_voter(uid: str, *, days: int = 60) -> Account:
    person = members_actions.do_create_person(f"Test {uid.title()}", f"{uid}@example.org",
                                              acting_user=None)
    recorded_at_start(members_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=days)))
    return directory_actions.do_create_account(uid, acting_user=None, display_name=f"Test {uid}",
                                               email=f"{uid}@example.org", person=person)


@pytest.fixture
def community(directory: FakeDirectory) -> Iterator[Community]:
    admin = directory_actions.do_create_account("boss", acting_user=None, display_name="Boss",
                                                email="boss@example.org", is_admin=True)
    voters = [make_voter(uid) for uid in ("ana", "bo", "cy", "di", "ed")]
    newcomer = make_voter("fox", days=2)
    outsider = directory_actions.do_create_account("svc", acting_user=None,
                                                   display_name="Service",
                                                   email="svc@example.org")
    passwords = directory_actions.do_create_group("passwords", acting_user=None,
                                                  requires_decision=True)
    team = directory_actions.do_create_group("team", acting_user=None)
    try:
        yield Community(admin, voters, newcomer, outsider, passwords, team)
    finally:
        clock.travel(dt.timedelta(0))
