"""The real servers the integration tests stand on: Chaton's managed slapd and TemporaryPostgres.

Nothing here skips: a server that is missing or does not start is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ldap
import ldap.modlist
import psycopg
import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password

from chaton.adapters.ldap import argon2_userpassword
from chaton.adapters.slapd import ManagedSlapd, SlapdError
from chaton.testing.postgres import TemporaryPostgres
from chaton.testing.pytest_plugin import free_port

pytestmark = pytest.mark.integration


def _is_alive(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def _connect(url: str) -> ldap.ldapobject.LDAPObject:
    connection = ldap.initialize(url)
    connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 5.0)
    connection.set_option(ldap.OPT_TIMEOUT, 5.0)
    return connection


@pytest.fixture
def scratch_directory() -> Iterator[Path]:
    # Directly under /tmp and searchable (not listable) by others: the openldap
    # and postgres users must reach the servers' directories inside it.
    directory = Path(tempfile.mkdtemp(prefix="chaton-servers-"))
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# -- slapd --------------------------------------------------------------------


def test_slapd_binds_as_admin_and_holds_the_base_entry(slapd: ManagedSlapd) -> None:
    connection = _connect(slapd.url)
    connection.simple_bind_s(slapd.admin_dn, slapd.admin_password)
    assert connection.whoami_s() == f"dn:{slapd.admin_dn}"
    [(dn, attributes)] = connection.search_s(slapd.base_dn, ldap.SCOPE_BASE)
    assert dn == "dc=chaton,dc=test"
    assert set(attributes["objectClass"]) >= {b"dcObject", b"organization"}
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        _connect(slapd.url).simple_bind_s(slapd.admin_dn, slapd.admin_password + "x")


def test_slapd_config_never_holds_the_admin_password_in_clear(slapd: ManagedSlapd) -> None:
    text = slapd.config_path.read_text()
    assert slapd.admin_password not in text
    assert 'rootpw "{ARGON2}$argon2id$' in text
    assert oct(slapd.config_path.stat().st_mode & 0o777) == "0o600"


def test_local_root_reads_over_ldapi_and_anonymous_reads_nothing(slapd: ManagedSlapd) -> None:
    assert len(str(slapd.socket_path)) < 100
    local = _connect(slapd.ldapi_url)
    local.sasl_external_bind_s()
    assert local.whoami_s() == "dn:gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"
    assert [dn for dn, _ in local.search_s(slapd.base_dn, ldap.SCOPE_BASE)] == [slapd.base_dn]

    anonymous = _connect(slapd.url)
    anonymous.simple_bind_s("", "")
    try:
        found = anonymous.search_s(slapd.base_dn, ldap.SCOPE_SUBTREE)
    except ldap.NO_SUCH_OBJECT:
        found = []  # slapd hides entries anonymous may not see
    assert found == []


def test_django_argon2_hash_lets_the_user_bind(slapd: ManagedSlapd) -> None:
    password = "correct horse battery staple"
    django_hash = make_password(password, hasher=Argon2PasswordHasher())
    assert django_hash.startswith("argon2$argon2id$v=19$")
    userpassword = argon2_userpassword(django_hash)
    assert userpassword == "{ARGON2}" + django_hash.removeprefix("argon2")

    dn = f"uid=alice,{slapd.base_dn}"
    admin = _connect(slapd.url)
    admin.simple_bind_s(slapd.admin_dn, slapd.admin_password)
    admin.add_s(dn, ldap.modlist.addModlist({
        "objectClass": [b"inetOrgPerson", b"ldapPublicKey"],
        "uid": [b"alice"], "cn": [b"Alice"], "sn": [b"Liddell"],
        "sshPublicKey": [b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnXo alice@chaton"],
        "userPassword": [userpassword.encode()],
    }))
    try:
        user = _connect(slapd.url)
        user.simple_bind_s(dn, password)
        assert user.whoami_s() == f"dn:{dn}"
        # Nobody reads a password hash, not even its owner.
        try:
            found = user.search_s(dn, ldap.SCOPE_BASE, attrlist=["userPassword"])
        except ldap.NO_SUCH_OBJECT:
            found = []  # outside ou=people, not even the entry is shown to its owner
        assert all("userPassword" not in attributes for _, attributes in found)
        with pytest.raises(ldap.INVALID_CREDENTIALS):
            _connect(slapd.url).simple_bind_s(dn, password + "!")
        with pytest.raises(ldap.INVALID_CREDENTIALS):
            _connect(slapd.url).simple_bind_s(dn, "Correct horse battery staple")

        # Only Chaton (the admin) changes a password in slapd: the owner may not, since
        # slapd cannot apply Chaton's password policy (tests/integration/test_directory_access).
        with pytest.raises((ldap.INSUFFICIENT_ACCESS, ldap.UNWILLING_TO_PERFORM)):
            user.passwd_s(dn, password, "a new password for alice")
        # A password set with the password-modify operation (password-hash {ARGON2}) is
        # stored as an argon2 hash too, never in clear.
        admin.passwd_s(dn, None, "a new password for alice")
        [(_, stored)] = admin.search_s(dn, ldap.SCOPE_BASE, attrlist=["userPassword"])
        assert stored["userPassword"][0].startswith(b"{ARGON2}$argon2")
        _connect(slapd.url).simple_bind_s(dn, "a new password for alice")
        with pytest.raises(ldap.INVALID_CREDENTIALS):
            _connect(slapd.url).simple_bind_s(dn, password)
    finally:
        admin.delete_s(dn)


def test_argon2_userpassword_refuses_other_hashes() -> None:
    with pytest.raises(ValueError, match="not a Django argon2 hash"):
        argon2_userpassword("pbkdf2_sha256$870000$salt$hash")
    with pytest.raises(ValueError):
        argon2_userpassword("{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")


def test_slapd_stop_really_stops_its_pid(scratch_directory: Path) -> None:
    server = ManagedSlapd(scratch_directory / "slapd", port=free_port(),
                          base_dn="dc=example,dc=org", admin_password="stop-test-password")
    server.start()
    pid = server.pid
    assert pid is not None and _is_alive(pid)
    assert int(server.pid_path.read_text().split()[0]) == pid
    server.stop()
    assert not server.running
    assert not _is_alive(pid)
    assert not server.pid_path.exists()
    with pytest.raises(ldap.SERVER_DOWN):
        _connect(server.url).simple_bind_s("", "")
    # A second start reuses the database: the base entry is still there.
    server.start()
    try:
        connection = _connect(server.url)
        connection.simple_bind_s(server.admin_dn, "stop-test-password")
        assert connection.search_s(server.base_dn, ldap.SCOPE_BASE)
    finally:
        server.stop()


def test_stop_stale_stops_a_slapd_started_by_an_earlier_object(scratch_directory: Path) -> None:
    directory = scratch_directory / "slapd"
    earlier = ManagedSlapd(directory, port=free_port(), base_dn="dc=example,dc=org",
                           admin_password="stale-test-password")
    earlier.start()
    pid = earlier.pid
    assert pid is not None
    try:
        later = ManagedSlapd(directory, port=earlier.port, base_dn="dc=example,dc=org",
                             admin_password="stale-test-password")
        assert later.stop_stale() is True
        assert not _is_alive(pid)
        assert later.stop_stale() is False
    finally:
        earlier.stop()


def test_stop_stale_never_signals_a_process_that_is_not_our_slapd(
    scratch_directory: Path,
) -> None:
    server = ManagedSlapd(scratch_directory / "slapd", port=free_port(),
                          base_dn="dc=example,dc=org", admin_password="stale-test-password")
    server.directory.mkdir()
    # This very pytest process: a recycled pid in a stale pid file.
    server.pid_path.write_text(f"{os.getpid()}\n")
    assert server.stop_stale() is False
    assert not server.pid_path.exists()


def test_slapd_on_a_busy_port_fails_with_a_clear_error(
    slapd: ManagedSlapd, scratch_directory: Path,
) -> None:
    second = ManagedSlapd(scratch_directory / "slapd", port=slapd.port,
                          base_dn="dc=example,dc=org", admin_password="busy-test-password")
    with pytest.raises(SlapdError, match="in use"):
        second.start(timeout=5)
    assert not second.running


# -- PostgreSQL ---------------------------------------------------------------


def test_temporary_postgres_starts_answers_and_stops(scratch_directory: Path) -> None:
    server = TemporaryPostgres(scratch_directory / "postgres", free_port())
    server.start()
    pid = server.pid
    try:
        assert pid is not None and _is_alive(pid)
        assert server.url == f"postgres://postgres@127.0.0.1:{server.port}/postgres"
        with psycopg.connect(server.url, connect_timeout=5) as connection:
            assert connection.execute("select 1").fetchone() == (1,)
        # An open connection must not hold up the stop (fast shutdown, not smart).
        lingering = psycopg.connect(server.url, connect_timeout=5)
    finally:
        server.stop(timeout=10)
    assert not server.running
    assert not _is_alive(pid)
    lingering.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=2)


# -- the plugin's throwaway state -----------------------------------------------


def test_the_plugin_points_chaton_at_throwaway_state() -> None:
    from chaton.project import config

    loaded = config.load()
    assert loaded.data_dir == Path(os.environ["CHATON_DATA_DIR"]).resolve()
    assert loaded.data_dir != (Path.cwd() / "var").resolve()
    assert loaded.data_dir.is_dir()
    assert loaded.ldap.managed is False
    if os.environ.get("CHATON_TEST_DB") == "postgres":
        assert loaded.database_url.startswith("postgres://postgres@127.0.0.1:")
        with psycopg.connect(loaded.database_url, connect_timeout=5) as connection:
            assert connection.execute("select 1").fetchone() == (1,)
    else:
        assert loaded.resolved_database_url.startswith(f"sqlite:///{loaded.data_dir}/")
