"""Each instance's read-only directory account, against the in-memory directory (the ACLs
themselves are tested with real binds in tests/integration/test_directory_access.py)."""

from __future__ import annotations

import pytest

from chaton.adapters.ldap import Change
from chaton.adapters.ldap.fake import FakeDirectory
from chaton.services import accounts, instance_secrets, reconcile, render
from chaton.services.models import DesiredState, Host, Instance
from chaton.testing.pytest_plugin import BASE_DN

pytestmark = pytest.mark.django_db

SERVICES = f"ou=services,{BASE_DN}"


def make_instance(host: Host, application: str, slug: str, port: int) -> Instance:
    return Instance.objects.create(slug=slug, application=application,
                                   domain=f"{slug}.example.org", host=host, port=port)


def test_sync_adds_fixes_and_removes_service_accounts(directory: FakeDirectory,
                                                      host: Host) -> None:
    wiki = make_instance(host, "bookstack", "wiki", 20001)
    make_instance(host, "privatebin", "paste", 20002)  # no LDAP login: no account

    wiki_dn = f"cn=wiki,{SERVICES}"
    assert accounts.sync(dry_run=True) == [f"add {SERVICES}", f"add {wiki_dn}"]
    assert not directory.exists(SERVICES)
    assert accounts.sync() == [f"add {SERVICES}", f"add {wiki_dn}"]
    entry = directory.read([wiki_dn], ["objectclass", "userpassword"])[wiki_dn]
    password = instance_secrets.ensure(Instance.objects.get(pk=wiki.pk))[
        accounts.PASSWORD_SECRET]
    assert accounts.password_matches(entry["userpassword"], password)
    assert b"{ARGON2}" in entry["userpassword"][0] and password.encode() not in (
        entry["userpassword"][0])
    assert accounts.sync() == []  # applied twice, nothing more

    # A password changed by hand is put back.
    directory.apply([Change("modify", wiki_dn, {"userpassword": [b"{CLEARTEXT}x"]})])
    assert accounts.sync() == [f"modify {wiki_dn}"]
    assert accounts.sync() == []

    # An account nobody asked for, and the account of an instance being closed, go.
    directory.apply([Change("add", f"cn=stray,{SERVICES}", {
        "objectclass": [b"applicationProcess"], "cn": [b"stray"]})])
    wiki.state = DesiredState.REMOVED
    wiki.save(update_fields=["state"])
    assert sorted(accounts.sync()) == [f"delete cn=stray,{SERVICES}", f"delete {wiki_dn}"]
    assert not directory.exists(wiki_dn)


def test_each_instance_gets_its_own_account_and_password(directory: FakeDirectory,
                                                         host: Host) -> None:
    first = make_instance(host, "nextcloud", "cloud", 20001)
    second = make_instance(host, "kanboard", "boards", 20002)
    accounts.sync()
    contexts = [render.ldap_context(instance, instance_secrets.ensure(instance))
                for instance in Instance.objects.filter(pk__in=[first.pk, second.pk])
                .order_by("slug")]
    assert [context["ldap.bind_dn"] for context in contexts] == [
        f"cn=boards,{SERVICES}", f"cn=cloud,{SERVICES}"]
    passwords = [context["ldap.bind_password"] for context in contexts]
    assert len(set(passwords)) == 2 and all(len(password) == 32 for password in passwords)
    # The password is kept encrypted among the instance's secrets.
    stored = Instance.objects.get(pk=first.pk).secrets[accounts.PASSWORD_SECRET]
    assert passwords[1] not in stored


def test_a_directory_that_does_not_answer_is_reported_not_raised(directory: FakeDirectory,
                                                                 host: Host) -> None:
    make_instance(host, "bookstack", "wiki", 20001)
    directory.available = False
    changes, error = reconcile.sync_accounts()
    assert changes == [] and error
