"""The reconciler's plans, against the in-memory fake directory."""

import datetime as dt

import pytest

from chaton.adapters.ldap import normalize_dn
from chaton.core import clock
from chaton.directory import actions, reconcile
from chaton.directory.models import AccountState, ProjectedEntry

BASE = "dc=chaton,dc=test"
pytestmark = pytest.mark.django_db(transaction=True)


def test_first_sync_creates_units_accounts_and_groups(directory):
    account = actions.do_create_account("alix", acting_user=None, display_name="Alix Martin",
                                        email="alix@example.org", password="correct horse 42")
    group = actions.do_create_group("tech", acting_user=None, description="Tech team")
    actions.do_add_to_group(group, account, acting_user=None)
    _plan, outcome = reconcile.sync_all()
    assert outcome.ok
    people = directory.entries[normalize_dn(f"uid=alix,ou=people,{BASE}")]
    assert people["userpassword"][0].startswith(b"{ARGON2}$argon2id$")
    assert directory.entries[normalize_dn(f"cn=tech,ou=groups,{BASE}")]["member"] == [
        f"uid=alix,ou=people,{BASE}".encode()]
    again, _ = reconcile.sync_all()
    assert again.is_noop


def test_foreign_entries_are_reported_not_deleted(directory):
    reconcile.sync_all()
    foreign = f"uid=stranger,ou=people,{BASE}"
    directory.apply([reconcile.Change("add", foreign, {"objectclass": [b"account"]})])
    plan, _ = reconcile.sync_all()
    assert plan.foreign == [normalize_dn(foreign)]
    assert normalize_dn(foreign) in directory.entries
    plan, _ = reconcile.sync_all(delete_foreign=True)
    assert normalize_dn(foreign) not in directory.entries


def test_expired_group_membership_leaves_the_group(directory):
    account = actions.do_create_account("bea", acting_user=None, display_name="Bea",
                                        email="bea@example.org")
    group = actions.do_create_group("tech", acting_user=None)
    actions.do_add_to_group(group, account, acting_user=None,
                            expires_at=clock.now() + dt.timedelta(days=3))
    reconcile.sync_all()
    group_dn = normalize_dn(f"cn=tech,ou=groups,{BASE}")
    assert directory.entries[group_dn]["member"] == [f"uid=bea,ou=people,{BASE}".encode()]
    clock.travel(dt.timedelta(days=4))
    try:
        plan, _ = reconcile.sync_all()
    finally:
        clock.travel(dt.timedelta(0))
    assert [change.kind for change in plan.changes] == ["modify"]
    assert directory.entries[group_dn]["member"] == [group_dn.encode()]


def test_directory_down_commits_and_catches_up(directory):
    reconcile.sync_all()
    directory.available = False
    account = actions.do_create_account("cyd", acting_user=None, display_name="Cyd",
                                        email="cyd@example.org")
    assert account.pk  # committed although the directory is down
    from chaton.directory.models import SyncState
    assert SyncState.get().pending_since is not None
    directory.available = True
    reconcile.sync_all()
    assert normalize_dn(f"uid=cyd,ou=people,{BASE}") in directory.entries
    assert SyncState.get().pending_since is None


def test_disabled_account_is_deleted_and_forgotten(directory):
    account = actions.do_create_account("dan", acting_user=None, display_name="Dan",
                                        email="dan@example.org")
    reconcile.sync_all()
    dn = normalize_dn(f"uid=dan,ou=people,{BASE}")
    assert ProjectedEntry.objects.filter(dn=dn).exists()
    actions.do_set_state(account, AccountState.DISABLED, acting_user=None)
    assert dn not in directory.entries
    assert not ProjectedEntry.objects.filter(dn=dn).exists()


def test_an_administrator_cannot_lock_themselves_out(directory):
    from chaton.core.errors import Forbidden

    admin = actions.do_create_account("chief", acting_user=None, display_name="Chief",
                                      email="chief@example.org", is_admin=True)
    with pytest.raises(Forbidden):
        actions.do_set_state(admin, AccountState.DISABLED, acting_user=admin)
    with pytest.raises(Forbidden):
        actions.do_update_account(admin, acting_user=admin,
                                  expires_at=clock.now() - dt.timedelta(minutes=1))
    with pytest.raises(Forbidden):
        actions.do_update_account(admin, acting_user=admin, is_admin=False)
    admin.refresh_from_db()
    assert admin.is_admin and admin.state == AccountState.ACTIVE and admin.expires_at is None
    actions.do_update_account(admin, acting_user=admin,
                              expires_at=clock.now() + dt.timedelta(days=30))


def test_members_group_follows_memberships(directory):
    from chaton.directory.models import GroupKind
    from chaton.members import actions as member_actions

    members = actions.do_create_group("members", acting_user=None, kind=GroupKind.MEMBERS)
    person = member_actions.do_create_person("Mina Adhérente", "mina@example.org",
                                             acting_user=None)
    account = actions.do_create_account("mina", acting_user=None, display_name="Mina",
                                        email="mina@example.org", person=person)
    group_dn = normalize_dn(f"cn=members,ou=groups,{BASE}")
    mina_dn = f"uid=mina,ou=people,{BASE}".encode()
    assert directory.entries[group_dn]["member"] == [group_dn.encode()]  # not a member yet

    membership = member_actions.do_start_membership(person, acting_user=None,
                                                    starts_on=clock.today())
    assert directory.entries[group_dn]["member"] == [mina_dn]  # at once, after the commit

    from chaton.governance.actions import do_end_membership_ordinarily

    admin = actions.do_create_account("gerance", acting_user=None, display_name="Gérance",
                                      email="gerance@example.org", is_admin=True)
    do_end_membership_ordinarily(membership, clock.today(), acting_user=admin)
    assert directory.entries[group_dn]["member"] == [mina_dn]  # the last day still counts
    clock.travel(dt.timedelta(days=1))
    try:
        reconcile.sync_all()  # what the worker does at the first tick of the day
    finally:
        clock.travel(dt.timedelta(0))
    assert directory.entries[group_dn]["member"] == [group_dn.encode()]
    assert members.memberships.count() == 0 and account.pk


def test_organization_entry_and_its_accounts_follow_the_organization(directory):
    """The members app only announces the change (``members.signals``); the directory
    rewrites the organization's entry and its accounts' after the commit."""
    from chaton.members import actions as member_actions

    organization = member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                                         slug="radio-ourse", acting_user=None)
    organization_dn = normalize_dn(f"o=radio-ourse,ou=organizations,{BASE}")
    assert directory.entries[organization_dn]["description"] == [b"Radio Ourse"]
    actions.do_create_account("studio", acting_user=None, display_name="Studio",
                              email="studio@example.org", organization=organization,
                              authorised_by=None)
    account_dn = normalize_dn(f"uid=studio,ou=people,{BASE}")
    assert directory.entries[account_dn]["o"] == [b"Radio Ourse"]

    member_actions.do_update_organization(organization, acting_user=None,
                                          name="Radio Ourse Libre")

    assert directory.entries[organization_dn]["description"] == [b"Radio Ourse Libre"]
    assert directory.entries[account_dn]["o"] == [b"Radio Ourse Libre"]
