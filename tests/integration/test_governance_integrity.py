"""A protected group against a hostile administrator, on the real slapd.

The group ``passwords`` has its members added by decision only, and kim is in
it by an adopted decision. An administrator tries every other way in — the
API, the CLI, the pages — to delete it, re-create it empty and fill it,
rename it away (or rename another group into its name), clear its mark, or
remove what the decision granted. Each attempt is refused with
``decision_required`` and a link to a proposal, and neither the database nor
LDAP changes. The same change goes through once the members adopt it.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from django.utils import translation
from typer.testing import CliRunner

from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.cli.app import app
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory.models import Group
from chaton.governance import actions
from chaton.governance.models import Status
from chaton.governance.tests.test_api import api_for, assert_error, make_account, make_member
from chaton.testing.pytest_plugin import BASE_DN
from chaton.testing.second_factor import login_with_second_factor
from chaton.testing.voters import own_session

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

GROUPS = f"ou=groups,{BASE_DN}"


def _dn(uid: str) -> str:
    return normalize_dn(f"uid={uid},ou=people,{BASE_DN}")


def adopt(people: dict[str, Any], operation: dict[str, Any]) -> None:
    """Propose one operation, have two of the three voters adopt it, run the executor."""
    decision = actions.do_propose("By decision", [operation], acting_user=people["aubin"])
    for voter in ("aubin", "brune"):
        actions.do_vote(decision, "for", acting_user=people[voter],
                        credential=own_session(people[voter]))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    [row] = actions.execute_decisions()
    assert row.status == "done", row.message


@pytest.fixture
def people(ldap_directory: LdapDirectory) -> dict[str, Any]:
    """wren (an administrator), three voters, kim and victor; ``passwords`` protected, with
    kim in it by decision; ``tech`` an ordinary group with victor in it."""
    found: dict[str, Any] = {"wren": make_account("wren", is_admin=True)}
    for uid in ("aubin", "brune", "cyan"):
        found[uid] = make_member(uid)
    found["kim"], found["victor"] = make_account("kim"), make_account("victor")
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    tech = directory_actions.do_create_group("tech", acting_user=None)
    directory_actions.do_add_to_group(tech, found["victor"], acting_user=None)
    adopt(found, {"type": "group.grant", "params": {"group": "passwords", "account": "kim"}})
    return found


def snapshot(ldap_directory: LdapDirectory) -> dict[str, Any]:
    """What an attempt must leave as it was: the groups in the database and in LDAP."""
    database = {group.name: (group.requires_decision, group.description,
                             sorted(group.memberships.values_list("account__uid", flat=True)))
                for group in Group.objects.all()}
    entries = ldap_directory.read_subtree(GROUPS, ["member"])
    ldap = {dn: sorted(value.decode() if isinstance(value, bytes) else value
                       for value in entry.get("member", []))
            for dn, entry in entries.items()}
    return {"database": database, "ldap": ldap}


def refused(response: Any, operation: str) -> dict[str, str]:
    """Assert a ``decision_required`` answer whose link proposes ``operation``; return the
    link's query."""
    body = assert_error(response, 403, "decision_required")
    parsed = urllib.parse.urlsplit(body["link"])
    assert parsed.path == "/decisions/new/"
    query = dict(urllib.parse.parse_qsl(parsed.query))
    assert query["operation"] == operation, query
    return query


def test_the_state_the_attempts_start_from(people, ldap_directory: LdapDirectory) -> None:
    state = snapshot(ldap_directory)
    assert state["database"]["passwords"] == (True, "", ["kim"])
    assert state["ldap"][normalize_dn(f"cn=passwords,{GROUPS}")] == [_dn("kim")]


def test_the_api_cannot_delete_rename_unprotect_or_empty_a_protected_group(
        client, people, ldap_directory: LdapDirectory) -> None:
    api = api_for(client, people["wren"])
    before, audit_rows = snapshot(ldap_directory), AuditLog.objects.count()

    assert refused(api.delete("/groups/passwords"), "group.delete") == {
        "operation": "group.delete", "group": "passwords"}
    query = refused(api.call("patch", "/groups/passwords", {"name": "vault"}), "group.rename")
    assert (query["group"], query["name"]) == ("passwords", "vault")
    refused(api.call("patch", "/groups/passwords", {"requires_decision": False}),
            "group.unprotect")
    # All the changes of one request or none: the description stays too.
    refused(api.call("patch", "/groups/passwords", {"description": "open bar",
                                                    "requires_decision": False}),
            "group.unprotect")
    refused(api.delete("/groups/passwords/members/kim"), "group.revoke")
    refused(api.post("/groups/passwords/members", {"uid": "victor"}), "group.grant")

    assert snapshot(ldap_directory) == before
    assert AuditLog.objects.count() == audit_rows


def test_deleting_by_decision_does_not_free_the_name(
        client, people, ldap_directory: LdapDirectory) -> None:
    """Once the members deleted it, the name stays theirs: re-creating ``passwords`` (to fill
    it without a vote) or renaming another group into it needs a decision too."""
    adopt(people, {"type": "group.delete", "params": {"group": "passwords"}})
    assert not Group.objects.filter(name="passwords").exists()
    dn = normalize_dn(f"cn=passwords,{GROUPS}")
    assert dn not in snapshot(ldap_directory)["ldap"]

    api = api_for(client, people["wren"])
    before = snapshot(ldap_directory)
    query = refused(api.post("/groups", {"name": "passwords"}), "group.create")
    assert query["name"] == "passwords"
    refused(api.call("patch", "/groups/tech", {"name": "passwords"}), "group.rename")
    assert snapshot(ldap_directory) == before
    assert dn not in before["ldap"]

    # The members may give the name back, and decide who is in it.
    # The creation page says so too, and keeps what was typed.
    admin = people["wren"]
    login_with_second_factor(client, admin)
    page = client.post("/groups/new/", {"name": "passwords", "kind": "team",
                                        "description": "Coffre"}).content.decode()
    assert "/decisions/new/?operation=group.create&amp;name=passwords" in page
    assert 'value="Coffre"' in page
    assert snapshot(ldap_directory) == before

    adopt(people, {"type": "group.create", "params": {"name": "passwords",
                                                      "requires_decision": True}})
    assert Group.objects.get(name="passwords").requires_decision
    refused(api.post("/groups/passwords/members", {"uid": "victor"}), "group.grant")


def test_an_access_a_decision_granted_is_not_removed_without_one(
        client, people, ldap_directory: LdapDirectory) -> None:
    """tech is an ordinary group; a decision of the members put kim in it. Removing kim,
    changing the end of kim's access, or deleting tech, now takes a decision; victor, added
    directly, may be removed directly."""
    adopt(people, {"type": "group.grant", "params": {"group": "tech", "account": "kim"}})
    api = api_for(client, people["wren"])
    before = snapshot(ldap_directory)
    refused(api.delete("/groups/tech/members/kim"), "group.revoke")
    refused(api.delete("/groups/tech"), "group.delete")
    # Ending it tomorrow would remove it as surely.
    refused(api.post("/groups/tech/members", {"uid": "kim",
                                              "expires_at": "2099-01-01T00:00:00"}),
            "group.grant")
    assert snapshot(ldap_directory) == before
    assert api.delete("/groups/tech/members/victor").status_code == 204
    tech = snapshot(ldap_directory)["ldap"][normalize_dn(f"cn=tech,{GROUPS}")]
    assert tech == [_dn("kim")]


def test_the_cli_cannot_delete_rename_or_empty_a_protected_group(
        people, ldap_directory: LdapDirectory) -> None:
    runner = CliRunner()
    before = snapshot(ldap_directory)
    attempts = {"group.delete": ["group", "delete", "passwords"],
                "group.rename": ["group", "rename", "passwords", "vault"],
                "group.revoke": ["group", "remove-member", "passwords", "kim"]}
    with translation.override("en"):
        for operation, arguments in attempts.items():
            result = runner.invoke(app, ["--as", "wren", *arguments])
            assert result.exit_code == 2, result.output
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("chaton: error: "), result.stderr
            assert f"/decisions/new/?operation={operation}&group=passwords" in lines[0]
    assert snapshot(ldap_directory) == before


def test_the_pages_cannot_delete_rename_or_unprotect_a_protected_group(
        client, people, ldap_directory: LdapDirectory) -> None:
    login_with_second_factor(client, people["wren"])
    before = snapshot(ldap_directory)
    with translation.override("en"):
        response = client.post("/groups/passwords/delete/")
        assert response.status_code == 403
        page = response.content.decode()
        assert 'href="/decisions/new/?operation=group.delete&amp;group=passwords"' in page
        for form, operation in (({"name": "vault", "requires_decision": "on"}, "group.rename"),
                                ({"name": "passwords", "description": "open bar"},
                                 "group.unprotect")):
            response = client.post("/groups/passwords/edit/", form)
            assert response.status_code == 200  # the form again, with the error and its link
            page = response.content.decode()
            assert f"/decisions/new/?operation={operation}&amp;group=passwords" in page
            assert 'value="vault"' in page or operation != "group.rename"  # nothing typed lost
        # The link opens the proposal, filled in.
        proposal = client.get("/decisions/new/?operation=group.delete&group=passwords")
        assert proposal.status_code == 200
        assert 'value="passwords"' in proposal.content.decode()
    assert snapshot(ldap_directory) == before
