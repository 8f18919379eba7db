"""Chaton's pytest plugin, loaded with ``-p chaton.testing.pytest_plugin`` (pyproject addopts).

Before Django is configured it points Chaton at a throwaway data directory and,
with ``CHATON_TEST_DB=postgres``, at a throwaway PostgreSQL server, so that a
test run never touches ``./var``, a local ``chaton.toml`` or a real database.
It also provides the real servers the integration tests run against.

A server that fails to start is an error, never a skip: integration tests do
not skip (docs: ARCHITECTURE.md, "Testing").
"""

from __future__ import annotations

import datetime
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaton.adapters.ldap import Change
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.ldap.fake import FakeDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core.servers import free_port
from chaton.testing.postgres import TemporaryPostgres

#: The services tests' fixtures: a dockerd, local images, Caddy and pebble.
pytest_plugins = ["chaton.testing.docker", "chaton.testing.acme", "chaton.testing.etherpad"]

#: The variables this plugin sets; their previous values come back at the end.
_MANAGED_VARIABLES = ("CHATON_DATA_DIR", "CHATON_LDAP_MANAGED", "CHATON_PROXY_MANAGED",
                      "CHATON_PROXY_ADMIN_URL", "CHATON_SERVICES_DOCKER_MANAGED",
                      "CHATON_CONFIG", "CHATON_DATABASE_URL",
                      "CHATON_SERVICES_UPGRADE_STABILITY_SECONDS", "CHATON_SERVICES_DOCKER_URL",
                      "CHATON_BACKUPS_STALL_SECONDS")


@dataclass
class _SessionServers:
    """What the plugin created before the session, to undo in pytest_unconfigure."""

    previous_environment: dict[str, str | None] = field(default_factory=dict)
    directories: list[Path] = field(default_factory=list)
    postgres: TemporaryPostgres | None = None
    #: A loopback port bound and never listened on: the proxy admin address of the tests.
    held_port: socket.socket | None = None

    def close(self) -> None:
        """Stop the servers, remove the directories and put the environment back."""
        try:
            if self.held_port is not None:
                self.held_port.close()
            if self.postgres is not None:
                self.postgres.stop()
        finally:
            for directory in self.directories:
                shutil.rmtree(directory, ignore_errors=True)
            for name, value in self.previous_environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


_session_servers_key = pytest.StashKey[_SessionServers]()


def hold_closed_port() -> socket.socket:
    """Return a socket bound to a free loopback port and not listening.

    While it is open no other process can listen on that port, and a connection
    to it is refused at once.
    """
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    return held


def _short_temporary_directory(prefix: str) -> Path:
    """Given a prefix, return a new directory directly under the system temporary directory.

    Not pytest's tmp_path: its base is 0700 (so the openldap and postgres users
    could not reach a server's directory inside it) and deep enough to push a
    unix socket path past its 108-byte limit.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """Given pytest's early configuration, point Chaton's settings at throwaway state.

    tryfirst, because pytest-django imports the Django settings in its own
    implementation of this hook, and the settings read these variables.
    Raise pytest.UsageError for an unknown CHATON_TEST_DB; a PostgreSQL that
    does not start raises its own error and ends the run.
    """
    database = os.environ.get("CHATON_TEST_DB", "sqlite").strip().lower() or "sqlite"
    if database not in {"sqlite", "postgres"}:
        raise pytest.UsageError(f"CHATON_TEST_DB={database!r}: expected sqlite or postgres")
    servers = _SessionServers(
        previous_environment={name: os.environ.get(name) for name in _MANAGED_VARIABLES}
    )
    early_config.stash[_session_servers_key] = servers
    try:
        data_directory = _short_temporary_directory("chaton-test-")
        servers.directories.append(data_directory)
        os.environ["CHATON_DATA_DIR"] = str(data_directory)
        # The tests start their own directory server when they need one.
        os.environ["CHATON_LDAP_MANAGED"] = "false"
        # Nor a Caddy on the default ports: the proxy tests start theirs (chaton.testing.acme).
        os.environ["CHATON_PROXY_MANAGED"] = "false"
        # Nor a dockerd on the system's socket: the services tests start theirs
        # (chaton.testing.docker), and the managed one is tested on a socket of its own.
        os.environ["CHATON_SERVICES_DOCKER_MANAGED"] = "no"
        # The default host (``chaton init``, ``chaton demo``) names a socket nobody listens
        # on, never the system's: an engine the tests did not start is never asked.
        os.environ["CHATON_SERVICES_DOCKER_URL"] = f"unix://{data_directory}/no-docker.sock"
        # And never a Caddy someone already runs on the default admin address: until a test
        # starts its own (the ``caddy`` fixture), proxy calls go to a port this session holds
        # bound without listening, so they are refused and can reach no other server.
        servers.held_port = hold_closed_port()
        closed_port = servers.held_port.getsockname()[1]
        os.environ["CHATON_PROXY_ADMIN_URL"] = f"http://127.0.0.1:{closed_port}"
        # A configuration file of the tests' own: a developer's ./chaton.toml must not leak
        # in, and a test that reaches the directory without routing it (fixtures
        # ``directory``, ``ldap_directory``) meets that same closed port, never a default one.
        empty_configuration = data_directory / "chaton.toml"
        empty_configuration.write_text(f'[ldap]\nurl = "ldap://127.0.0.1:{closed_port}"\n',
                                       encoding="utf-8")
        os.environ["CHATON_CONFIG"] = str(empty_configuration)
        # An upgrade's new version stays healthy for a second, not half a minute; the tests
        # of the stability window set their own.
        os.environ["CHATON_SERVICES_UPGRADE_STABILITY_SECONDS"] = "1"
        # A restic that deadlocks (0.14 can, on a full disk) fails its test in 30 s, not 24 h.
        os.environ["CHATON_BACKUPS_STALL_SECONDS"] = "30"
        # Never a database from the developer's shell: SQLite in the data
        # directory, or the throwaway PostgreSQL below.
        os.environ.pop("CHATON_DATABASE_URL", None)
        if database == "postgres":
            postgres_directory = _short_temporary_directory("chaton-postgres-")
            servers.directories.append(postgres_directory)
            servers.postgres = TemporaryPostgres(postgres_directory, free_port())
            servers.postgres.start()
            os.environ["CHATON_DATABASE_URL"] = servers.postgres.url
    except BaseException:
        # pytest_unconfigure never runs when this hook fails: undo here.
        servers.close()
        del early_config.stash[_session_servers_key]
        raise


def pytest_unconfigure(config: pytest.Config) -> None:
    """Given the ending session's configuration, stop its PostgreSQL and remove its directories."""
    servers = config.stash.get(_session_servers_key, None)
    if servers is not None:
        del config.stash[_session_servers_key]
        servers.close()


@pytest.fixture(scope="session")
def slapd() -> Iterator[ManagedSlapd]:
    """Yield a slapd running for the whole session: base ``dc=chaton,dc=test``, random password.

    Raise SlapdError (a test error, not a skip) when it does not start.
    """
    directory = _short_temporary_directory("chaton-slapd-")
    server = ManagedSlapd(directory, port=free_port(), base_dn="dc=chaton,dc=test",
                          admin_password=secrets.token_urlsafe(24))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of the directory app ``directory``: that set runs again on PostgreSQL."""
    for item in items:
        path = item.path.as_posix()
        if "/chaton/directory/tests/" in path or "/tests/integration/test_directory" in path:
            item.add_marker(pytest.mark.directory)


@dataclass
class CaughtMail:
    sender: str
    recipients: list[str]
    content: bytes


class SmtpCatcher:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it receives."""

    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.port = port
        self.messages: list[CaughtMail] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(CaughtMail(envelope.mail_from, list(envelope.rcpt_tos),  # type: ignore[attr-defined]
                                        envelope.content))  # type: ignore[attr-defined]
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture
def smtp_catcher() -> Iterator[SmtpCatcher]:
    """Yield a running SMTP catcher on a free loopback port; stopped after the test."""
    catcher = SmtpCatcher(free_port())
    catcher.start()
    try:
        yield catcher
    finally:
        catcher.stop()


#: The base DN of the session's slapd.
BASE_DN = "dc=chaton,dc=test"


def empty_directory(directory: LdapDirectory, base: str = BASE_DN) -> None:
    """Remove every entry under ``base``, deepest first (pipelined deletes of a parent
    and its children would race)."""
    entries = directory.read_subtree(base, ["objectClass"])
    for depth in sorted({dn.count(",") for dn in entries}, reverse=True):
        directory.apply([Change("delete", dn) for dn in entries if dn.count(",") == depth])


@pytest.fixture
def ldap_directory(slapd: ManagedSlapd) -> Iterator[LdapDirectory]:
    """Yield a connection to the session's slapd, emptied, with every Chaton call routed to it.

    The slapd outlives the test, the database does not: emptying it first
    gives each test the empty directory its empty database expects. The
    clock is put back after the test, in case it travelled.
    """
    from chaton.adapters.ldap import use_ldap
    from chaton.core import clock

    directory = LdapDirectory(slapd.url, slapd.admin_dn, slapd.admin_password, timeout=5)
    empty_directory(directory)
    try:
        with use_ldap(directory, BASE_DN):
            yield directory
    finally:
        clock.travel(datetime.timedelta(0))
        directory.close()


@pytest.fixture
def english(settings: Any) -> Iterator[None]:
    """Run the test in English: the site's language (which requests and commands activate)
    and this thread's, put back after. For tests that read messages."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
    translation.deactivate()


@pytest.fixture
def directory() -> Iterator[FakeDirectory]:
    """Yield the in-memory directory that every Chaton call of the test is routed to.

    The fast tier's default; integration tests use ``ldap_directory`` instead.
    """
    from chaton.adapters.ldap import use_ldap

    fake = FakeDirectory(BASE_DN)
    with use_ldap(fake, BASE_DN):
        yield fake
