"""Against the real slapd: an administrator's direct moves neither vote for a member nor
change the electorate behind the members' back.

- a token minted for a member cannot vote, and the protected group stays as it was in LDAP;
- ending a membership through the API is an ordinary action: the member's account leaves
  the "members" group in LDAP at once, and a counter-vote that wins puts it back.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.directory import actions as directory_actions
from chaton.directory import reconcile
from chaton.directory.models import Account, GroupKind
from chaton.governance import actions
from chaton.governance.models import Decision, Kind, Status, Vote
from chaton.governance.tests.test_api import Api, assert_error
from chaton.members import actions as members_actions
from chaton.members.models import Membership
from chaton.testing.pytest_plugin import BASE_DN
from chaton.testing.second_factor import enroll
from chaton.testing.voters import own_session, recorded_at_start

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORDS_DN = normalize_dn(f"cn=passwords,ou=groups,{BASE_DN}")
MEMBERS_DN = normalize_dn(f"cn=membres,ou=groups,{BASE_DN}")


@pytest.fixture(autouse=True)
def _english_and_clock_back(english: None):
    yield
    clock.travel(dt.timedelta(0))


def voter(uid: str, name: str) -> Account:
    person = members_actions.do_create_person(name, f"{uid}@example.org", acting_user=None)
    recorded_at_start(members_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=120)))
    return directory_actions.do_create_account(uid, acting_user=None, display_name=name,
                                               email=f"{uid}@example.org", person=person)


def members_of(directory: LdapDirectory, dn: str) -> set[str]:
    entry = directory.read([dn], ["member"]).get(normalize_dn(dn)) or {}
    return {normalize_dn(value.decode() if isinstance(value, bytes) else value)
            for value in entry.get("member", [])}


def person_dn(uid: str) -> str:
    return normalize_dn(f"uid={uid},ou=people,{BASE_DN}")


@pytest.fixture
def collective(slapd: ManagedSlapd, ldap_directory: LdapDirectory):
    people = {uid: voter(uid, name) for uid, name in (
        ("odile", "Odile Carafon"), ("pacome", "Pacôme Lustrin"),
        ("quitterie", "Quitterie Mandoline"))}
    people["regis"] = directory_actions.do_create_account(
        "regis", acting_user=None, display_name="Régis", email="regis@example.org",
        is_admin=True)
    enroll(people["regis"])  # administrators hold a second factor
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    directory_actions.do_create_group("membres", acting_user=None, kind=GroupKind.MEMBERS)
    reconcile.sync_all()
    return people


def _admin_api(admin: Account) -> Api:
    _token, key = do_create_api_token(admin, "admin", acting_user=admin, owner_proved=True)
    return Api(Client(), key)


def test_a_token_minted_for_a_member_votes_nothing_and_the_directory_is_unchanged(
        collective, ldap_directory: LdapDirectory) -> None:
    admin = _admin_api(collective["regis"])
    decision = actions.do_propose(
        "Régis reads the passwords",
        [{"type": "group.grant", "params": {"group": "passwords", "account": "regis"}}],
        acting_user=collective["odile"])
    before = members_of(ldap_directory, PASSWORDS_DN)
    for uid in ("odile", "pacome"):
        minted = admin.post("/tokens", {"account": uid, "name": "for you"}).json()
        assert_error(Api(Client(), minted["key"]).post(
            f"/governance/decisions/{decision.pk}/vote", {"choice": "for"}), 403,
            "missing_scope")
        assert_error(admin.post("/tokens", {"account": uid, "name": "x", "scopes": ["vote"]}),
                     403, "vote_scope_refused")
    # The administrator's account given to a voter after the vote opened votes nothing.
    assert admin.call("patch", "/accounts/regis",
                      {"person_id": collective["quitterie"].person_id}).status_code == 200
    regis = Account.objects.get(uid="regis")
    with pytest.raises(actions.NotAVoter):
        actions.do_vote(decision, "for", acting_user=regis, credential=own_session(regis))
    actions.settle_ballots()
    actions.execute_decisions()
    assert not Vote.objects.exists()
    assert Decision.objects.get(pk=decision.pk).status == Status.OPEN
    assert members_of(ldap_directory, PASSWORDS_DN) == before
    assert person_dn("regis") not in members_of(ldap_directory, PASSWORDS_DN)


def test_ending_a_membership_is_an_ordinary_action_and_a_counter_vote_restores_it(
        collective, ldap_directory: LdapDirectory) -> None:
    odile, pacome, quitterie = collective["odile"], collective["pacome"], collective["quitterie"]
    assert person_dn("quitterie") in members_of(ldap_directory, MEMBERS_DN)
    membership = Membership.objects.get(person=quitterie.person)
    admin = _admin_api(collective["regis"])
    yesterday = (clock.today() - dt.timedelta(days=1)).isoformat()
    response = admin.post(f"/members/memberships/{membership.pk}/end", {"ends_on": yesterday})
    assert response.status_code == 200, response.content

    decision = Decision.objects.get()
    assert decision.kind == Kind.ORDINARY and decision.status == Status.ADOPTED
    assert person_dn("quitterie") not in members_of(ldap_directory, MEMBERS_DN)

    actions.do_open_counter_vote(decision, acting_user=odile)
    actions.do_vote(decision, "against", acting_user=odile, credential=own_session(odile))
    actions.do_vote(decision, "against", acting_user=pacome, credential=own_session(pacome))
    decision.refresh_from_db()
    assert decision.status == Status.CANCELLED
    actions.execute_decisions()
    assert Membership.objects.get(pk=membership.pk).ends_on is None
    assert person_dn("quitterie") in members_of(ldap_directory, MEMBERS_DN)
    assert reconcile.sync_all()[0].is_noop
