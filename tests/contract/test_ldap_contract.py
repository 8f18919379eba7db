"""The LDAP adapter's contract: the same assertions on the fake and on the real client.

``FakeDirectory`` stands for slapd in every fast test; here it must answer as
:class:`~chaton.adapters.ldap.client.LdapDirectory` does against the session's
real slapd: the entries apps write and read, the errors for a missing or
existing entry, and LdapUnavailable when the server does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaton.adapters.ldap import (
    Change,
    Directory,
    LdapAlreadyExists,
    LdapNoSuchEntry,
    LdapUnavailable,
    normalize_dn,
)
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.ldap.fake import FakeDirectory
from chaton.testing.pytest_plugin import BASE_DN, empty_directory, hold_closed_port

OU = f"ou=contract,{BASE_DN}"
ADA = f"uid=ada,{OU}"
SIDE = [pytest.param("fake"), pytest.param("real", marks=pytest.mark.integration)]


@pytest.fixture(params=SIDE)
def server(request: pytest.FixtureRequest) -> Iterator[Directory]:
    """Yield an empty directory: the fake, or a client of the session's real slapd."""
    if request.param == "fake":
        yield FakeDirectory(BASE_DN)
        return
    slapd = request.getfixturevalue("slapd")
    client = LdapDirectory(slapd.url, slapd.admin_dn, slapd.admin_password, timeout=5)
    empty_directory(client)
    try:
        yield client
    finally:
        empty_directory(client)
        client.close()


@pytest.fixture(params=SIDE)
def down(request: pytest.FixtureRequest) -> Iterator[Directory]:
    """Yield a directory whose server does not answer."""
    if request.param == "fake":
        fake = FakeDirectory(BASE_DN)
        fake.available = False
        yield fake
        return
    held = hold_closed_port()  # refused at once, and nobody else can listen there
    client = LdapDirectory(f"ldap://127.0.0.1:{held.getsockname()[1]}", f"cn=admin,{BASE_DN}",
                           "never-sent-password", timeout=2)
    try:
        yield client
    finally:
        client.close()
        held.close()


def person(uid: str, mail: str) -> dict[str, list[bytes]]:
    return {"objectClass": [b"inetOrgPerson"], "uid": [uid.encode()], "cn": [uid.encode()],
            "sn": [uid.encode()], "mail": [mail.encode()]}


def with_people(server: Directory) -> None:
    """Add the unit, then its people: one call per level, as the reconciler's phases do (the
    real client pipelines a call's writes, so a child may reach slapd before its parent)."""
    assert server.apply([Change("add", OU, {"objectClass": [b"organizationalUnit"],
                                            "ou": [b"contract"]})]) == [None]
    assert server.apply([Change("add", ADA, person("ada", "ada@example.org")),
                         Change("add", f"uid=bo,{OU}", person("bo", "bo@example.org"))]
                        ) == [None, None]


def test_what_is_added_is_read_back(server: Directory) -> None:
    with_people(server)
    assert server.exists(ADA) and server.exists("UID=Ada, OU=Contract," + BASE_DN)
    assert server.read([ADA, f"uid=nobody,{OU}"], ["mail", "uid"]) == {
        normalize_dn(ADA): {"mail": [b"ada@example.org"], "uid": [b"ada"]}}
    subtree = server.read_subtree(OU, ["uid"])
    assert subtree == {normalize_dn(ADA): {"uid": [b"ada"]},
                       normalize_dn(f"uid=bo,{OU}"): {"uid": [b"bo"]}}
    assert server.read_subtree(f"ou=nowhere,{BASE_DN}", ["uid"]) == {}


def test_a_modify_replaces_and_an_empty_list_removes(server: Directory) -> None:
    with_people(server)
    assert server.apply([Change("modify", ADA, {"mail": [b"ada@example.net"],
                                                "description": [b"first"]})]) == [None]
    assert server.read([ADA], ["mail", "description"])[normalize_dn(ADA)] == {
        "mail": [b"ada@example.net"], "description": [b"first"]}
    assert server.apply([Change("modify", ADA, {"description": []})]) == [None]
    assert server.read([ADA], ["mail", "description"])[normalize_dn(ADA)] == {
        "mail": [b"ada@example.net"]}


def test_a_delete_removes_the_entry(server: Directory) -> None:
    with_people(server)
    assert server.apply([Change("delete", ADA)]) == [None]
    assert not server.exists(ADA)
    assert server.read([ADA], ["uid"]) == {}


def test_missing_and_existing_entries_are_errors_of_their_own(server: Directory) -> None:
    with_people(server)
    exists, orphan, modified, deleted, after = server.apply([
        Change("add", ADA, person("ada", "ada@example.org")),
        Change("add", f"uid=cy,ou=nowhere,{BASE_DN}", person("cy", "cy@example.org")),
        Change("modify", f"uid=nobody,{OU}", {"mail": [b"x@example.org"]}),
        Change("delete", f"uid=nobody,{OU}"),
        Change("modify", ADA, {"description": [b"still applied"]}),
    ])
    assert isinstance(exists, LdapAlreadyExists)
    assert isinstance(orphan, LdapNoSuchEntry) and isinstance(orphan, LookupError)
    assert isinstance(modified, LdapNoSuchEntry) and isinstance(deleted, LdapNoSuchEntry)
    assert after is None  # a failed change does not stop the next ones
    assert server.read([ADA], ["description"])[normalize_dn(ADA)] == {
        "description": [b"still applied"]}


def test_a_search_escapes_its_values(server: Directory) -> None:
    with_people(server)
    found = server.search(OU, "(&(objectClass=inetOrgPerson)(mail={}))", ["bo@example.org"],
                          ["uid"])
    assert found == {normalize_dn(f"uid=bo,{OU}"): {"uid": [b"bo"]}}
    assert server.search(OU, "(mail={})", ["*"], ["uid"]) == {}  # a star is a value, not a wildcard


def test_a_server_that_does_not_answer_is_unavailable(down: Directory) -> None:
    with pytest.raises(LdapUnavailable) as raised:
        down.read_subtree(BASE_DN, ["uid"])
    assert isinstance(raised.value, ConnectionError)
    with pytest.raises(LdapUnavailable):
        down.exists(ADA)
    with pytest.raises(LdapUnavailable):
        down.apply([Change("delete", ADA)])
