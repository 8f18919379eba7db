"""The LDAP client's reconnection, on a stand-in for python-ldap's connection.

The real server's side (slapd restarted between two calls, threads) is in
``tests/integration/test_directory_survives.py``; here, what no real server
does on demand: a connection that drops in the middle of a batch of writes.
"""

from __future__ import annotations

from typing import Any

import ldap
import pytest

from chaton.adapters.ldap import Change, LdapAlreadyExists, LdapUnavailable
from chaton.adapters.ldap.client import LdapDirectory


class Server:
    """What the stand-in connections share: the entries, and when to drop a connection."""

    def __init__(self) -> None:
        self.entries: set[str] = set()
        self.connections = 0
        #: Drop the connection after this many more sends (None: never).
        self.drop_after: int | None = None
        #: Refuse new connections (the server is down).
        self.down = False


class Connection:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.number = server.connections = server.connections + 1
        self.dropped = False
        self.pending: dict[int, Exception | None] = {}

    def simple_bind_s(self, who: str, password: str) -> None:
        if self.server.down:
            raise ldap.SERVER_DOWN({"desc": "Can't contact LDAP server"})

    def unbind_s(self) -> None:
        pass

    def _send(self) -> None:
        if self.dropped:
            raise ldap.SERVER_DOWN({"desc": "Can't contact LDAP server", "info": "Broken pipe"})
        if self.server.drop_after is not None:
            if self.server.drop_after == 0:
                self.dropped = True
                self.server.drop_after = None
                raise ldap.SERVER_DOWN({"desc": "Can't contact LDAP server",
                                        "info": "Broken pipe"})
            self.server.drop_after -= 1

    def add_ext(self, dn: str, attributes: Any) -> int:
        self._send()
        message_id = len(self.pending) + 1
        if dn in self.server.entries:
            self.pending[message_id] = ldap.ALREADY_EXISTS({"desc": "Already exists"})
        else:
            self.server.entries.add(dn)
            self.pending[message_id] = None
        return message_id

    def result3(self, message_id: int) -> tuple[int, list[Any], int, list[Any]]:
        if self.dropped:
            raise ldap.SERVER_DOWN({"desc": "Can't contact LDAP server"})
        error = self.pending.pop(message_id)
        if error is not None:
            raise error
        return (0, [], message_id, [])

    def search_s(self, base: str, scope: int, search_filter: str,
                 attributes: list[str]) -> list[Any]:
        self._send()
        return [(dn, {}) for dn in sorted(self.server.entries)]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    shared = Server()
    monkeypatch.setattr(LdapDirectory, "_new_connection", lambda self: Connection(shared))
    return shared


def add(dn: str) -> Change:
    return Change("add", dn, {"objectClass": [b"organizationalUnit"]})


def test_a_stale_connection_is_reopened_and_the_call_retried_once(server: Server) -> None:
    directory = LdapDirectory("ldap://127.0.0.1:1", "cn=admin", "secret")
    assert directory.apply([add("ou=a")]) == [None]
    server.drop_after = 0  # the server went away and came back: the old link is dead
    assert directory.search("dc=test", "(ou={})", ["a"], ["ou"]) == {"ou=a": {}}
    assert server.connections == 2


def test_a_drop_half_way_through_a_batch_sends_the_rest_again(server: Server) -> None:
    directory = LdapDirectory("ldap://127.0.0.1:1", "cn=admin", "secret")
    directory.apply([add("ou=first")])
    server.entries.add("ou=taken")
    # Three sent on the first connection (their answers lost), then the drop.
    server.drop_after = 3
    outcomes = directory.apply([add("ou=one"), add("ou=two"), add("ou=taken"),
                                add("ou=four"), add("ou=five")])
    # "one" and "two" were applied before the drop: sent again, they count as done; "taken"
    # existed before this batch, but a resent add cannot tell: done too, and the next
    # reconcile compares its attributes anyway.
    assert outcomes == [None, None, None, None, None]
    assert {"ou=one", "ou=two", "ou=four", "ou=five"} <= server.entries
    assert server.connections == 2
    # On a healthy connection an existing entry is still an error.
    [error] = directory.apply([add("ou=one")])
    assert isinstance(error, LdapAlreadyExists)


def test_a_server_that_stays_down_is_unavailable_after_one_retry(server: Server) -> None:
    directory = LdapDirectory("ldap://127.0.0.1:1", "cn=admin", "secret")
    directory.apply([add("ou=a")])
    server.drop_after = 0
    server.down = True
    with pytest.raises(LdapUnavailable):
        directory.exists("ou=a")
    assert server.connections == 2  # one reconnection tried (refused), no more
    server.down = False
    assert directory.exists("ou=a")


def test_close_closes_every_threads_connection_and_a_later_call_reopens(server: Server) -> None:
    import threading

    directory = LdapDirectory("ldap://127.0.0.1:1", "cn=admin", "secret")
    directory.apply([add("ou=a")])
    other = threading.Thread(target=lambda: directory.exists("ou=a"))
    other.start()
    other.join()
    assert server.connections == 2  # one per thread
    directory.close()
    assert directory.exists("ou=a")
    assert server.connections == 3
