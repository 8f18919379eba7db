"""The gate through the API and the CLI: an extraordinary operation asked for directly is
refused with ``decision_required`` and the link of a proposal carrying it, nothing changes,
and the same operation goes through once a decision adopts it.

Each gated path is tried where an interface reaches it: adding to a group that needs a
decision, removing from a group, creating an organization's account and ending a
membership when the policy makes them extraordinary, and an ordinary action carrying an
extraordinary operation. (Waiving the voting delay has no API or CLI path; the pages are
tested with the views. Deleting, renaming and unmarking a protected group are tried in
``tests/integration/test_governance_integrity.py``, on the real slapd.)
"""

import datetime as dt
import urllib.parse

import pytest
from django.utils import translation
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, Group, GroupMembership
from chaton.governance import actions
from chaton.governance.gate import DecisionRequired
from chaton.governance.models import Decision, Operation
from chaton.governance.tests.test_api import (
    GOVERNANCE,
    GRANT_PASSWORDS,
    api_for,
    assert_error,
    make_account,
    make_member,
    set_classes,
)
from chaton.members import actions as member_actions
from chaton.members.models import Membership

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def collective(directory):
    """An administrator, two voters, kim (in tech), a partner organization, a protected group."""
    people = {"wren": make_account("wren", is_admin=True), "kim": make_account("kim"),
              "aubin": make_member("aubin"), "brune": make_member("brune")}
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    tech = directory_actions.do_create_group("tech", acting_user=None)
    directory_actions.do_add_to_group(tech, people["kim"], acting_user=None)
    organization = member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                                         slug="radio-ourse", acting_user=None)
    member_actions.do_start_membership(organization, acting_user=None,
                                       starts_on=clock.today() - dt.timedelta(days=100))
    return people


@pytest.fixture
def admin_api(client, collective):
    return api_for(client, collective["wren"])


@pytest.fixture
def cli():
    runner = CliRunner()
    with translation.override("en"):
        yield lambda *arguments: runner.invoke(app, list(arguments))


def _link_params(link: str) -> tuple[str, dict[str, str]]:
    """Given a proposal link, return its path and its query (operation type and params)."""
    parsed = urllib.parse.urlsplit(link)
    return parsed.path, dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))


def _refused(response, operation: str) -> dict:
    body = assert_error(response, 403, "decision_required")
    path, query = _link_params(body["link"])
    assert path == "/decisions/new/"
    assert query["operation"] == operation
    assert body["link"] in body["message"]
    return query


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chaton: error: ")
    return lines[0]


# --- the API --------------------------------------------------------------------------------


def test_api_adding_to_a_protected_group_needs_a_decision(admin_api, collective, client):
    audit_rows = AuditLog.objects.count()
    response = admin_api.post("/groups/passwords/members",
                              {"uid": "kim", "expires_at": "2031-06-30T23:59:00"})
    query = _refused(response, "group.grant")
    assert (query["group"], query["account"]) == ("passwords", "kim")
    assert not GroupMembership.objects.filter(group__name="passwords").exists()
    assert AuditLog.objects.count() == audit_rows

    # The link's query is the operation: proposing it as it stands is accepted …
    params = {key: value for key, value in query.items() if key != "operation" and value}
    aubin = api_for(client, collective["aubin"])
    decision = aubin.post(f"{GOVERNANCE}/decisions", {
        "title": "Kim reads the passwords",
        "operations": [{"type": query["operation"], "params": params}]}).json()
    # … and once adopted, the executor's call passes the same gate.
    path = f"{GOVERNANCE}/decisions/{decision['id']}/vote"
    for voter in ("aubin", "brune"):
        assert api_for(client, collective[voter]).post(path, {"choice": "for"}).status_code == 200
    actions.execute_decisions()
    membership = GroupMembership.objects.get(group__name="passwords", account__uid="kim")
    assert membership.expires_at is not None
    assert clock.today() < membership.expires_at.date() <= dt.date(2031, 7, 1)


def test_api_removing_from_a_group_follows_the_policy(admin_api, collective):
    set_classes({"group.revoke": "extraordinary"})
    _refused(admin_api.delete("/groups/tech/members/kim"), "group.revoke")
    assert GroupMembership.objects.filter(group__name="tech", account__uid="kim").exists()
    set_classes({})
    assert admin_api.delete("/groups/tech/members/kim").status_code == 204
    assert not GroupMembership.objects.filter(group__name="tech").exists()


def test_api_an_organizations_account_follows_the_policy(admin_api, collective):
    organization_id = Membership.objects.get(organization__slug="radio-ourse").organization_id
    body = {"uid": "radio", "display_name": "Radio Ourse", "email": "studio@example.org",
            "organization_id": organization_id}
    set_classes({"account.create_for_organization": "extraordinary"})
    query = _refused(admin_api.post("/accounts", body), "account.create_for_organization")
    assert (query["organization"], query["uid"]) == ("radio-ourse", "radio")
    assert not Account.objects.filter(uid="radio").exists()
    set_classes({})
    assert admin_api.post("/accounts", body).status_code == 201


def test_api_ending_a_membership_follows_the_policy(admin_api, collective):
    membership = Membership.objects.get(organization__slug="radio-ourse")
    path = f"/members/memberships/{membership.pk}/end"
    last_day = (clock.today() + dt.timedelta(days=5)).isoformat()
    set_classes({"membership.end": "extraordinary"})
    query = _refused(admin_api.post(path, {"ends_on": last_day}), "membership.end")
    assert (query["member"], query["ends_on"]) == ("radio-ourse", last_day)
    membership.refresh_from_db()
    assert membership.ends_on is None
    set_classes({})
    assert admin_api.post(path, {"ends_on": last_day}).status_code == 200


def test_api_an_ordinary_action_cannot_carry_an_extraordinary_operation(admin_api, collective):
    set_classes({"group.revoke": "extraordinary"})
    revoke = {"type": "group.revoke", "params": {"group": "tech", "account": "kim"}}
    for operations in ([GRANT_PASSWORDS], [revoke], [{"type": "policy.change",
                                                      "params": {"proposal_days": 1}}]):
        response = admin_api.post(f"{GOVERNANCE}/decisions", {
            "title": "Straight away", "operations": operations, "mode": "act"})
        _refused(response, operations[0]["type"])
    assert not Decision.objects.exists()
    assert GroupMembership.objects.filter(group__name="tech", account__uid="kim").exists()


def test_only_the_adopted_decisions_own_operation_opens_the_gate(collective):
    """A rejected, withdrawn or still open decision's operation is no authorisation."""
    aubin, kim = collective["aubin"], collective["kim"]
    decision = actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                                  acting_user=aubin)
    row = Operation.objects.get(decision=decision)
    group = Group.objects.get(name="passwords")
    with pytest.raises(DecisionRequired):  # open: not yet adopted
        directory_actions.do_add_to_group(group, kim, acting_user=None, authorised_by=row)
    actions.do_withdraw(decision, acting_user=aubin)
    row.refresh_from_db()
    with pytest.raises(DecisionRequired):
        directory_actions.do_add_to_group(group, kim, acting_user=None, authorised_by=row)
    assert not GroupMembership.objects.filter(group=group).exists()


def test_api_handing_an_account_to_an_organization_follows_the_policy(admin_api, collective):
    organization_id = Membership.objects.get(organization__slug="radio-ourse").organization_id
    set_classes({"account.create_for_organization": "extraordinary"})
    assert admin_api.post("/accounts", {"uid": "radio", "display_name": "Radio Ourse",
                                        "email": "studio@example.org"}).status_code == 201
    response = admin_api.call("patch", "/accounts/radio", {"organization_id": organization_id})
    assert_error(response, 403, "decision_required")
    assert Account.objects.get(uid="radio").organization_id is None


# --- the CLI --------------------------------------------------------------------------------


def test_cli_adding_to_a_protected_group_needs_a_decision(cli, collective):
    line = _one_error_line(cli("--as", "wren", "group", "add-member", "passwords", "kim",
                               "--until", "2031-06-30"))
    assert "/decisions/new/?operation=group.grant&group=passwords&account=kim" in line
    assert not GroupMembership.objects.filter(group__name="passwords").exists()


def test_cli_other_gated_paths_follow_the_policy(cli, collective):
    set_classes({"group.revoke": "extraordinary", "membership.end": "extraordinary",
                 "account.create_for_organization": "extraordinary"})
    line = _one_error_line(cli("group", "remove-member", "tech", "kim"))
    assert "operation=group.revoke" in line
    line = _one_error_line(cli("account", "add", "radio", "--org", "radio-ourse",
                               "--email", "studio@example.org"))
    assert "operation=account.create_for_organization" in line
    line = _one_error_line(cli("--as", "wren", "member", "end", "radio-ourse"))
    assert "operation=membership.end" in line
    line = _one_error_line(cli("decision", "act", "Straight away", "--as", "wren",
                               "--op", "group.grant", "group=passwords", "account=kim"))
    assert "operation=group.grant" in line
    assert GroupMembership.objects.filter(group__name="tech", account__uid="kim").exists()
    assert not Account.objects.filter(uid="radio").exists()
    assert Membership.objects.get(organization__slug="radio-ourse").ends_on is None
    assert not Decision.objects.exists()

