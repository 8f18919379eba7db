"""The directory client on the real slapd: many threads at once, and a server that restarts.

A connection that slapd dropped is reopened and the call retried once, so a
restart between two calls is invisible; concurrent API writes and syncs share
one client (a connection per thread) and never answer a spurious 503. Only a
server that stays down makes the directory unreachable.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from django.test import Client

from chaton.adapters.ldap import Change, LdapUnavailable, normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core.actions import do_create_api_token
from chaton.directory import actions as directory_actions
from chaton.directory import reconcile
from chaton.testing.pytest_plugin import BASE_DN

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PEOPLE = f"ou=people,{BASE_DN}"


def bearer(uid: str = "wren") -> dict[str, str]:
    admin = directory_actions.do_create_account(uid, acting_user=None, display_name="Wren",
                                                email=f"{uid}@example.org", is_admin=True)
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return {"Authorization": f"Bearer {key}", "Accept-Language": "en"}


def post(client: Client, path: str, body: object, headers: dict[str, str]) -> tuple[int, bytes]:
    response = client.post(f"/api/v1{path}", json.dumps(body), content_type="application/json",
                           headers=headers)
    return response.status_code, response.content


def in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(index)`` in ``count`` threads started together; return what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        from django.db import connections

        try:
            barrier.wait(10)
            work(index)
        except BaseException as error:  # reported by the test, whatever it is
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_concurrent_api_writes_and_syncs_never_answer_503(
        slapd: ManagedSlapd, ldap_directory: LdapDirectory) -> None:
    headers = bearer()
    assert post(Client(), "/directory/sync", {}, headers)[0] == 200
    # A restart first: the connections opened so far are dead when the threads begin.
    slapd.stop()
    slapd.start()
    answers: list[tuple[str, int, bytes]] = []

    def work(index: int) -> None:
        client = Client()
        for round_number in range(4):
            uid = f"user{index}x{round_number}"
            status, content = post(client, "/accounts", {
                "uid": uid, "display_name": f"User {index} {round_number}",
                "email": f"{uid}@example.org"}, headers)
            answers.append((f"create {uid}", status, content))
            status, content = post(client, "/directory/sync", {}, headers)
            answers.append(("sync", status, content))

    assert in_threads(4, work) == []
    refused = [answer for answer in answers if answer[1] not in (200, 201)]
    assert refused == [], refused
    people = ldap_directory.read_subtree(PEOPLE, ["uid"])
    for index in range(4):
        for round_number in range(4):
            assert normalize_dn(f"uid=user{index}x{round_number},{PEOPLE}") in people
    assert reconcile.sync_all()[0].is_noop


def test_one_client_serves_threads_each_on_its_own_connection(
        ldap_directory: LdapDirectory) -> None:
    def work(index: int) -> None:
        for round_number in range(10):
            dn = f"ou=unit{index}x{round_number},{BASE_DN}"
            [outcome] = ldap_directory.apply([Change("add", dn, {
                "objectClass": [b"organizationalUnit"],
                "ou": [f"unit{index}x{round_number}".encode()]})])
            assert outcome is None, outcome
            assert ldap_directory.exists(dn)
            ldap_directory.read_subtree(BASE_DN, ["ou"])

    assert in_threads(6, work) == []
    units = ldap_directory.search(BASE_DN, "(objectClass=organizationalUnit)", [], ["ou"])
    assert sum(1 for dn in units if dn.startswith("ou=unit")) == 60


def test_a_slapd_restart_between_two_calls_is_invisible(
        slapd: ManagedSlapd, ldap_directory: LdapDirectory) -> None:
    headers = bearer()
    client = Client()
    assert post(client, "/directory/sync", {}, headers)[0] == 200
    wren_dn = normalize_dn(f"uid=wren,{PEOPLE}")
    assert wren_dn in ldap_directory.read_subtree(PEOPLE, ["uid"])

    # Stopped and started by its pid, as a crash and a supervisor would: every open
    # connection (the test's, the API's) is now dead.
    slapd.stop()
    slapd.start()
    assert wren_dn in ldap_directory.read_subtree(PEOPLE, ["uid"])
    status, content = post(client, "/directory/sync", {}, headers)
    assert status == 200, content
    slapd.stop()
    slapd.start()
    status, content = post(client, "/accounts", {"uid": "yael", "display_name": "Yaël",
                                                 "email": "yael@example.org"}, headers)
    assert status == 201, content
    assert normalize_dn(f"uid=yael,{PEOPLE}") in ldap_directory.read_subtree(PEOPLE, ["uid"])
    slapd.stop()
    slapd.start()
    [outcome] = ldap_directory.apply([Change("modify", wren_dn, {"description": [b"back"]})])
    assert outcome is None


def test_a_slapd_that_stays_down_is_unreachable_then_found_again(
        slapd: ManagedSlapd, ldap_directory: LdapDirectory) -> None:
    headers = bearer()
    client = Client()
    assert post(client, "/directory/sync", {}, headers)[0] == 200
    slapd.stop()
    try:
        with pytest.raises(LdapUnavailable):
            ldap_directory.read_subtree(PEOPLE, ["uid"])
        status, content = post(client, "/directory/sync", {}, headers)
        assert status == 503 and json.loads(content)["code"] == "directory_unavailable"
    finally:
        slapd.start()
    status, content = post(client, "/directory/sync", {}, headers)
    assert status == 200, content
