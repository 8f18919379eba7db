"""The directory projected into a real slapd: sync, binds, injections, outages, interruptions."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence

import pytest

from chaton.adapters.ldap import Change, LdapError, LdapUnavailable, normalize_dn, use_ldap
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core import clock
from chaton.core.errors import Conflict, InvalidInput
from chaton.directory import actions, reconcile
from chaton.directory.models import Account, Group, SyncState
from chaton.testing.pytest_plugin import empty_directory, free_port

BASE = "dc=chaton,dc=test"
pytestmark = [pytest.mark.integration, pytest.mark.directory,
              pytest.mark.django_db(transaction=True)]


def dn_of(uid: str) -> str:
    return f"uid={uid},ou=people,{BASE}"


def test_sync_projects_accounts_groups_and_binds(ldap_directory: LdapDirectory) -> None:
    reconcile.sync_all()
    alix = actions.do_create_account("alix", acting_user=None, display_name="Alix Martin-Test",
                                     email="alix@example.org", password="a long passphrase 1")
    tech = actions.do_create_group("tech", acting_user=None, description="Équipe technique")
    actions.do_add_to_group(tech, alix, acting_user=None)
    # The actions already wrote their entries after each commit:
    assert ldap_directory.check_password(dn_of("alix"), "a long passphrase 1")
    assert not ldap_directory.check_password(dn_of("alix"), "wrong passphrase 1")
    group = ldap_directory.read([f"cn=tech,ou=groups,{BASE}"], ["member", "description"])
    entry = group[normalize_dn(f"cn=tech,ou=groups,{BASE}")]
    assert entry["member"] == [dn_of("alix").encode()]
    assert entry["description"] == ["Équipe technique".encode()]
    plan, _ = reconcile.sync_all()
    assert plan.is_noop, plan.lines()

    actions.do_set_password(alix, "another passphrase 2", acting_user=alix)
    assert ldap_directory.check_password(dn_of("alix"), "another passphrase 2")
    assert not ldap_directory.check_password(dn_of("alix"), "a long passphrase 1")


def test_special_characters_are_values_not_syntax(ldap_directory: LdapDirectory) -> None:
    reconcile.sync_all()
    tricky = 'Dupont, Jean (tech) *)(uid=*) <b>#;"+=\\'
    actions.do_create_account("jdupont", acting_user=None, display_name=tricky,
                              email="jd@example.org")
    actions.do_create_account("other", acting_user=None, display_name="Other",
                              email="other@example.org")
    found = ldap_directory.search(BASE, "(cn={})", [tricky], ["uid"])
    assert list(found) == [normalize_dn(dn_of("jdupont"))]
    # A filter made of the same characters matches nothing more than the literal value.
    assert ldap_directory.search(BASE, "(cn={})", ["*"], ["uid"]) == {}
    assert ldap_directory.search(BASE, "(uid={})", ["*)(uid=*"], ["uid"]) == {}


@pytest.mark.parametrize("uid", ["a*", "x)(uid=*", "ab\\cd", "a,b", "a=b", "a+b", "a<b", "a>b",
                                 "a#b", "a;b", 'a"b', "a\x00b", "Alix", " ", ""])
def test_bad_uids_are_refused_and_nothing_is_written(ldap_directory: LdapDirectory,
                                                     uid: str) -> None:
    reconcile.sync_all()
    before = ldap_directory.read_subtree(BASE, ["uid"])
    with pytest.raises(InvalidInput) as raised:
        actions.do_create_account(uid, acting_user=None, display_name="Someone",
                                  email="someone@example.org")
    assert raised.value.field == "uid"
    assert not Account.objects.exists()
    assert ldap_directory.read_subtree(BASE, ["uid"]) == before


@pytest.mark.parametrize("name", ["Name\x00with NUL", "line\nbreak"])
def test_control_characters_in_names_are_refused(ldap_directory: LdapDirectory,
                                                 name: str) -> None:
    with pytest.raises(InvalidInput):
        actions.do_create_account("ctrl", acting_user=None, display_name=name,
                                  email="ctrl@example.org")
    with pytest.raises(InvalidInput):
        actions.do_create_group("g,roup", acting_user=None)
    assert not Account.objects.exists() and not Group.objects.exists()


def test_duplicate_uid_and_invalid_email(ldap_directory: LdapDirectory) -> None:
    actions.do_create_account("bea", acting_user=None, display_name="Bea",
                              email="bea@example.org")
    with pytest.raises(Conflict):
        actions.do_create_account("bea", acting_user=None, display_name="Bea Two",
                                  email="bea2@example.org")
    with pytest.raises(InvalidInput):
        actions.do_create_account("bea2", acting_user=None, display_name="Bea Two",
                                  email="not-an-email")
    assert list(Account.objects.values_list("uid", flat=True)) == ["bea"]
    people = ldap_directory.read_subtree(f"ou=people,{BASE}", ["uid"])
    assert list(people) == [normalize_dn(dn_of("bea"))]


def test_foreign_entries_are_reported_and_kept(ldap_directory: LdapDirectory) -> None:
    reconcile.sync_all()
    foreign = f"uid=legacy,ou=people,{BASE}"
    ldap_directory.apply([Change("add", foreign, {
        "objectClass": [b"inetOrgPerson"], "uid": [b"legacy"], "cn": [b"Legacy"],
        "sn": [b"Legacy"]})])
    plan, _ = reconcile.sync_all()
    assert plan.foreign == [normalize_dn(foreign)]
    assert ldap_directory.exists(foreign)


def test_expired_access_leaves_the_group(ldap_directory: LdapDirectory) -> None:
    alix = actions.do_create_account("alix", acting_user=None, display_name="Alix",
                                     email="alix@example.org")
    tech = actions.do_create_group("tech", acting_user=None)
    actions.do_add_to_group(tech, alix, acting_user=None,
                            expires_at=clock.now() + dt.timedelta(days=1))
    reconcile.sync_all()
    group_dn = normalize_dn(f"cn=tech,ou=groups,{BASE}")
    assert ldap_directory.read([group_dn], ["member"])[group_dn]["member"] == [
        dn_of("alix").encode()]
    clock.travel(dt.timedelta(days=2))
    reconcile.sync_all()
    assert ldap_directory.read([group_dn], ["member"])[group_dn]["member"] == [group_dn.encode()]


class DiesAfter:
    """A directory that applies ``limit`` changes for real, then loses its server."""

    def __init__(self, inner: LdapDirectory, limit: int) -> None:
        self.inner, self.limit = inner, limit

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def apply(self, changes: Sequence[Change]) -> list[LdapError | None]:
        allowed = list(changes[:self.limit])
        self.limit -= len(allowed)
        results = self.inner.apply(allowed)
        if len(allowed) < len(changes):
            raise LdapUnavailable("connection lost")
        return results


def test_a_sync_killed_half_way_is_completed_by_the_next(ldap_directory: LdapDirectory) -> None:
    for index in range(40):
        actions.do_create_account(f"user{index:02d}", acting_user=None,
                                  display_name=f"User {index}", email=f"u{index}@example.org")
    empty_directory(ldap_directory)  # as if none of the after-commit writes had landed
    dying = DiesAfter(ldap_directory, limit=20)
    with pytest.raises(LdapUnavailable):
        reconcile.sync_all(directory=dying)  # type: ignore[arg-type]
    assert SyncState.get().pending_since is not None
    assert len(ldap_directory.read_subtree(f"ou=people,{BASE}", ["uid"])) == 17
    plan, outcome = reconcile.sync_all()
    assert outcome is not None and outcome.ok
    assert [change.kind for change in plan.changes] == ["add"] * 23
    assert len(ldap_directory.read_subtree(f"ou=people,{BASE}", ["uid"])) == 40
    assert reconcile.sync_all()[0].is_noop
    assert SyncState.get().pending_since is None


def test_slapd_down_then_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    import tempfile
    from pathlib import Path

    server = ManagedSlapd(Path(tempfile.mkdtemp(prefix="chaton-slapd-down-")), port=free_port(),
                          base_dn=BASE, admin_password="down-and-back-password")
    server.start()
    directory = LdapDirectory(server.url, server.admin_dn, server.admin_password, timeout=2)
    try:
        with use_ldap(directory, BASE):
            reconcile.sync_all()
            server.stop()
            account = actions.do_create_account(
                "cyd", acting_user=None, display_name="Cyd", email="cyd@example.org",
                password="written while down 1")
            assert Account.objects.filter(pk=account.pk).exists()
            assert SyncState.get().pending_since is not None
            with pytest.raises(LdapUnavailable):
                reconcile.sync_all()
            server.start()
            reconcile.sync_all()
            assert directory.check_password(dn_of("cyd"), "written while down 1")
            assert SyncState.get().pending_since is None
    finally:
        directory.close()
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
