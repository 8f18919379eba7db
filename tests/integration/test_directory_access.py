"""The managed slapd protects its members: real binds against the real slapd.

Chaton fills the directory through its actions and reconciler; then each test
binds as someone — a member, a partner organization's account, an instance's
service account, nobody — and tries to read or write what is not theirs.
The rules are slapd's own (``access`` lines written by
:class:`chaton.adapters.slapd.ManagedSlapd`); the admin bind Chaton uses is
not subject to them, which is why these tests never use it to look.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap
import pytest

from chaton.adapters.docker import use_docker
from chaton.adapters.docker.fake import FakeEngine
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.testing.pytest_plugin import BASE_DN

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PEOPLE = f"ou=people,{BASE_DN}"
GROUPS = f"ou=groups,{BASE_DN}"
SERVICES = f"ou=services,{BASE_DN}"
PASSWORD = "correct horse battery staple"
ALIX_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrhYUECWmX8oBm+Qu+j+MBedjPuYIYow2/rQGbBXjoG alix"
BOB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJaXhMSGxO27P8nYPCSaf30vryxpC30+JfH2wKviaYkP bob"


def dn_of(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


@dataclass
class Directory:
    """Who is in the directory: alix and bob (members, alix in ``staff``), sam (an account of
    the partner organization "Les Amis du Quartier")."""

    slapd: ManagedSlapd

    def bind(self, dn: str = "", password: str = "") -> ldap.ldapobject.LDAPObject:
        """Return a connection bound as ``dn`` (anonymous when empty)."""
        connection = ldap.initialize(self.slapd.url)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        connection.simple_bind_s(dn, password)
        return connection


def read(connection: ldap.ldapobject.LDAPObject, dn: str,
         attributes: list[str] | None = None) -> dict[str, list[bytes]] | None:
    """Return the entry ``dn`` as ``connection`` sees it (lower-case names), or None if hidden."""
    try:
        found = connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)",
                                    attributes or ["*", "+"])
    except ldap.NO_SUCH_OBJECT:
        return None
    if not found:
        return None
    return {name.lower(): values for name, values in found[0][1].items()}


def search(connection: ldap.ldapobject.LDAPObject, base: str, query: str) -> list[str]:
    """Return the DNs (lower case) a subtree search shows ``connection``."""
    try:
        return sorted(dn.lower() for dn, _ in connection.search_s(base, ldap.SCOPE_SUBTREE, query,
                                                                  ["1.1"]) if dn)
    except ldap.NO_SUCH_OBJECT:
        return []


@pytest.fixture
def people(slapd: ManagedSlapd, ldap_directory: LdapDirectory) -> Iterator[Directory]:
    from chaton.directory import actions, reconcile
    from chaton.governance.policy import current
    from chaton.members.actions import do_create_organization

    policy = current()
    policy.classes = {**(policy.classes or {}), "account.create_for_organization": "ordinary",
                      "service.close": "ordinary"}
    policy.save()
    alix = actions.do_create_account("alix", acting_user=None, display_name="Alix Martin",
                                     email="alix@example.org", password=PASSWORD)
    bob = actions.do_create_account("bob", acting_user=None, display_name="Bob Durand",
                                    email="bob.private@example.org", password=PASSWORD)
    actions.do_add_ssh_key(alix, ALIX_KEY, acting_user=None)
    actions.do_add_ssh_key(bob, BOB_KEY, acting_user=None)
    staff = actions.do_create_group("staff", acting_user=None)
    actions.do_add_to_group(staff, alix, acting_user=None)
    partner = do_create_organization("Les Amis du Quartier", "contact@amis.example.org",
                                     acting_user=None)
    actions.do_create_account("sam", acting_user=None, display_name="Sam Petit",
                              email="sam@amis.example.org", password=PASSWORD,
                              organization=partner)
    _plan, outcome = reconcile.sync_all()
    assert outcome is not None and outcome.ok, outcome
    yield Directory(slapd)


def assert_refused_write(connection: ldap.ldapobject.LDAPObject, dn: str,
                         changes: list[tuple[int, str, list[bytes] | None]]) -> None:
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        connection.modify_s(dn, changes)


# -- a member -------------------------------------------------------------------


def test_a_member_reads_their_own_entry_and_their_groups(people: Directory) -> None:
    alix = people.bind(dn_of("alix"), PASSWORD)
    own = read(alix, dn_of("alix"))
    assert own is not None
    assert own["mail"] == [b"alix@example.org"]
    assert own["sshpublickey"] == [ALIX_KEY.encode()]
    assert [value.lower() for value in own["memberof"]] == [f"cn=staff,{GROUPS}".encode()]
    # Never the password hash, not even one's own.
    assert "userpassword" not in own
    # A search of the people finds oneself only.
    assert search(alix, PEOPLE, "(objectClass=inetOrgPerson)") == [dn_of("alix")]


def test_a_member_reads_nothing_of_another_member(people: Directory) -> None:
    alix = people.bind(dn_of("alix"), PASSWORD)
    assert read(alix, dn_of("bob")) is None
    assert read(alix, dn_of("bob"), ["mail", "sshPublicKey"]) is None
    # Not by searching on the attribute either: the filter may not test it.
    assert search(alix, BASE_DN, "(mail=bob.private@example.org)") == []
    assert search(alix, BASE_DN, "(mail=bob*)") == []
    assert search(alix, BASE_DN, "(sshPublicKey=*)") == [dn_of("alix")]
    # Nor through the groups, which would list the others.
    assert read(alix, f"cn=staff,{GROUPS}") is None
    assert search(alix, GROUPS, "(objectClass=*)") == [GROUPS]


def test_a_member_cannot_write_what_chaton_manages(people: Directory) -> None:
    from chaton.directory import reconcile

    alix = people.bind(dn_of("alix"), PASSWORD)
    for attribute, value in [("uidNumber", b"0"), ("gidNumber", b"0"), ("shadowExpire", b"-1"),
                             ("loginShell", b"/bin/sh"), ("mail", b"bob.private@example.org"),
                             ("sshPublicKey", BOB_KEY.encode()), ("uid", b"root"),
                             ("userPassword", b"{CLEARTEXT}short")]:
        assert_refused_write(alix, dn_of("alix"), [(ldap.MOD_REPLACE, attribute, [value])])
    # Nor another's entry, nor a group.
    assert_refused_write(alix, dn_of("bob"), [(ldap.MOD_REPLACE, "preferredLanguage", [b"fr"])])
    assert_refused_write(alix, f"cn=staff,{GROUPS}",
                         [(ldap.MOD_ADD, "member", [dn_of("bob").encode()])])
    # The password-modify operation (ldappasswd) skips Chaton's password policy: refused.
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        alix.passwd_s(dn_of("alix"), None, "x")
    with pytest.raises((ldap.INSUFFICIENT_ACCESS, ldap.UNWILLING_TO_PERFORM)):
        alix.passwd_s(dn_of("alix"), PASSWORD, "x")
    result = subprocess.run(
        ["ldappasswd", "-x", "-H", people.slapd.url, "-D", dn_of("alix"), "-w", PASSWORD,
         "-s", "1234", dn_of("alix")], capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode != 0, result
    people.bind(dn_of("alix"), PASSWORD)  # the password is unchanged

    # What Chaton does not manage, the person may change, and the reconciler leaves it.
    alix.modify_s(dn_of("alix"), [(ldap.MOD_REPLACE, "preferredLanguage", [b"fr"])])
    _plan, outcome = reconcile.sync_all()
    assert outcome is not None and outcome.ok
    assert read(alix, dn_of("alix"), ["preferredLanguage"]) == {"preferredlanguage": [b"fr"]}
    # And nothing above changed in the directory.
    own = read(alix, dn_of("alix"))
    assert own is not None and own["uidnumber"] != [b"0"] and own["mail"] == [b"alix@example.org"]


# -- a partner organization's account, anonymous -----------------------------------------


def test_a_partner_organizations_account_reads_no_member(people: Directory) -> None:
    sam = people.bind(dn_of("sam"), PASSWORD)
    own = read(sam, dn_of("sam"))
    assert own is not None and own["o"] == [b"Les Amis du Quartier"]
    for uid in ("alix", "bob"):
        assert read(sam, dn_of(uid)) is None
    assert search(sam, BASE_DN, "(|(mail=*)(sshPublicKey=*))") == [dn_of("sam")]
    assert search(sam, f"ou=organizations,{BASE_DN}", "(objectClass=organization)") == []
    assert_refused_write(sam, dn_of("alix"), [(ldap.MOD_REPLACE, "mail", [b"x@example.org"])])


def test_anonymous_reads_nothing_but_may_bind(people: Directory) -> None:
    anonymous = people.bind()
    assert search(anonymous, BASE_DN, "(objectClass=*)") == []
    assert read(anonymous, dn_of("alix")) is None
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        people.bind(dn_of("alix"), "not the password")
    people.bind(dn_of("alix"), PASSWORD)


# -- memberOf ----------------------------------------------------------------------------


def test_memberof_follows_the_groups(people: Directory) -> None:
    from chaton.directory import actions, reconcile
    from chaton.directory.models import Account, Group

    alix = people.bind(dn_of("alix"), PASSWORD)

    def groups_of_alix() -> list[bytes]:
        entry = read(alix, dn_of("alix"), ["memberOf"]) or {}
        return sorted(value.lower() for value in entry.get("memberof", []))

    assert groups_of_alix() == [f"cn=staff,{GROUPS}".encode()]
    tech = actions.do_create_group("tech", acting_user=None)
    actions.do_add_to_group(tech, Account.objects.get(uid="alix"), acting_user=None)
    reconcile.sync_all()
    assert groups_of_alix() == [f"cn=staff,{GROUPS}".encode(), f"cn=tech,{GROUPS}".encode()]
    actions.do_remove_from_group(Group.objects.get(name="staff"),
                                 Account.objects.get(uid="alix"), acting_user=None)
    reconcile.sync_all()
    assert groups_of_alix() == [f"cn=tech,{GROUPS}".encode()]


# -- an instance's service account --------------------------------------------------------


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], FakeEngine]]:
    """Route every host's engine to one FakeEngine holding the catalogue's images, and the proxy
    to nothing: these tests are about the directory."""
    from chaton.services import catalog, proxy

    images = {manifest.image for manifest in catalog.real_manifests().values()}
    images |= {manifest.database.image for manifest in catalog.real_manifests().values()
               if manifest.database is not None}
    engine = FakeEngine(images=images)
    monkeypatch.setattr(proxy, "sync_proxy", lambda routes, *, dry_run=False: [])
    with use_docker(lambda host: engine):
        yield lambda: engine


def test_a_service_account_reads_what_a_login_needs_and_writes_nothing(
        people: Directory, fake_engines: Callable[[], FakeEngine]) -> None:
    from chaton.directory.models import Group
    from chaton.services import actions, instance_secrets, render
    from chaton.services.models import Instance

    host = actions.do_create_host("box", "unix:///run/fake/docker.sock", acting_user=None,
                                  address="192.0.2.10")
    instance = actions.do_create_instance("nextcloud", "cloud.example.org", host,
                                          acting_user=None, login_group=Group.objects.get(
                                              name="staff"))
    instance = Instance.objects.get(pk=instance.pk)
    context = render.ldap_context(instance, instance_secrets.ensure(instance))
    service_dn = context["ldap.bind_dn"]
    assert service_dn == f"cn={instance.slug},{SERVICES}"
    assert len(context["ldap.bind_password"]) >= 32
    # The account exists, made by the instance's deploy: the application logs in with it.
    service = people.bind(service_dn, context["ldap.bind_password"])

    # It reads what a login needs of everyone, and finds the login group's members by filter.
    alix = read(service, dn_of("alix"))
    assert alix is not None and alix["mail"] == [b"alix@example.org"] and alix["uid"] == [b"alix"]
    assert "sshpublickey" not in alix and "userpassword" not in alix
    assert read(service, dn_of("bob"), ["sshPublicKey", "userPassword"]) == {}
    assert search(service, PEOPLE, "(sshPublicKey=*)") == []
    login_filter = context["ldap.user_filter"]
    assert "memberOf=" in login_filter
    assert search(service, PEOPLE, login_filter) == [dn_of("alix")]
    assert read(service, f"cn=staff,{GROUPS}") is not None
    # Other services' accounts are not its business.
    assert search(service, SERVICES, "(objectClass=*)") == [service_dn.lower(), SERVICES]

    # It writes nothing: not a person, not a group, not its own password.
    assert_refused_write(service, dn_of("alix"), [(ldap.MOD_REPLACE, "mail", [b"x@example.org"])])
    assert_refused_write(service, f"cn=staff,{GROUPS}",
                         [(ldap.MOD_ADD, "member", [dn_of("bob").encode()])])
    assert_refused_write(service, service_dn, [(ldap.MOD_REPLACE, "userPassword", [b"x"])])
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        service.add_s(f"uid=intruder,{PEOPLE}", [("objectClass", [b"account"]),
                                                 ("uid", [b"intruder"])])
    # A member cannot read the service's entry either.
    assert read(people.bind(dn_of("alix"), PASSWORD), service_dn) is None

    # Closing the instance removes its account: the password no longer opens anything.
    actions.do_remove_instance(instance, confirm=instance.slug, acting_user=None)
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        people.bind(service_dn, context["ldap.bind_password"])


def test_the_service_account_comes_back_after_a_hand_deletion(
        people: Directory, fake_engines: Callable[[], FakeEngine],
        ldap_directory: LdapDirectory) -> None:
    from chaton.adapters.ldap import Change
    from chaton.services import accounts, actions, instance_secrets, reconcile

    host = actions.do_create_host("box", "unix:///run/fake/docker.sock", acting_user=None,
                                  address="192.0.2.10")
    instance = actions.do_create_instance("bookstack", "wiki.example.org", host,
                                          acting_user=None)
    dn = accounts.account_dn(instance.slug, BASE_DN)
    [error] = ldap_directory.apply([Change("delete", dn)])
    assert error is None
    assert accounts.sync(dry_run=True) == [f"add {dn}"]
    assert not ldap_directory.exists(dn)
    _plan, result = reconcile.reconcile()
    assert result.account_changes == [f"add {dn}"]
    password = instance_secrets.ensure(instance)[accounts.PASSWORD_SECRET]
    people.bind(dn, password)
    # Applying again changes nothing.
    assert accounts.sync() == []


def test_a_directory_from_before_memberof_gets_it_at_the_first_start(
        scratch_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaton.adapters.ldap import Change
    from chaton.core.servers import free_port

    server = ManagedSlapd(scratch_path / "slapd", port=free_port(), base_dn=BASE_DN,
                          admin_password="an admin password of old")
    render = ManagedSlapd._render_config

    def without_memberof(self: ManagedSlapd, root_password_hash: str) -> str:
        text = render(self, root_password_hash)
        return text[:text.index("overlay memberof")]

    # A slapd.conf of before, without the overlays: the groups get no memberOf.
    monkeypatch.setattr(ManagedSlapd, "_render_config", without_memberof)
    server.start()
    try:
        admin = LdapDirectory(server.url, server.admin_dn, server.admin_password, timeout=5)
        person = f"uid=old,{PEOPLE}"
        for batch in ([Change("add", PEOPLE, {"objectclass": [b"organizationalUnit"],
                                              "ou": [b"people"]}),
                       Change("add", GROUPS, {"objectclass": [b"organizationalUnit"],
                                              "ou": [b"groups"]})],
                      [Change("add", person, {"objectclass": [b"account"], "uid": [b"old"]})],
                      [Change("add", f"cn=old,{GROUPS}", {"objectclass": [b"groupOfNames"],
                                                         "cn": [b"old"],
                                                         "member": [person.encode()]})]):
            assert admin.apply(batch) == [None] * len(batch)
        admin.close()
    finally:
        server.stop()
    server.member_of_marker_path.unlink()  # an older Chaton wrote no marker

    monkeypatch.undo()
    server.start()
    try:
        connection = ldap.initialize(server.url)
        connection.simple_bind_s(server.admin_dn, server.admin_password)
        [(_dn, attributes)] = connection.search_s(person, ldap.SCOPE_BASE, "(objectClass=*)",
                                                  ["memberOf"])
        assert [value.lower() for value in attributes["memberOf"]] == [
            f"cn=old,{GROUPS}".encode()]
        assert server.member_of_marker_path.exists()
        connection.unbind_s()
    finally:
        server.stop()
