"""One lookup per natural key, the same for the pages, the API, the CLI and the operations.

Each ``queries.<thing>_by_<key>`` finds its thing or raises NotFound with one
message naming the key; the pages answer it with their 404, the API with its
``not_found``. A key that cannot name anything is not found without asking the
database (PostgreSQL refuses a NUL outright: it was a 500).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chaton.backups import queries as backups_queries
from chaton.core import queries as core_queries
from chaton.core.actions import do_create_api_token
from chaton.core.errors import NotFound
from chaton.directory import queries as directory_queries
from chaton.governance import actions
from chaton.governance import queries as governance_queries
from chaton.members import actions as members_actions
from chaton.members import queries as members_queries
from chaton.testing.second_factor import login_with_second_factor

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def test_each_lookup_finds_its_thing_by_its_key(community) -> None:
    ana = community.voters[0]
    organization = members_actions.do_create_organization(
        "Radio Ourse", "radio@example.org", acting_user=None, slug="radio-ourse")
    decision = actions.do_propose("Team", [{"type": "group.grant", "params": {
        "group": "passwords", "account": "bo"}}], acting_user=ana)
    assert directory_queries.account_by_uid("ana") == ana
    assert directory_queries.group_by_name("passwords") == community.passwords
    assert members_queries.person_by_email("ANA@example.org ") == ana.person
    assert members_queries.person_by_id(ana.person_id) == ana.person
    assert members_queries.organization_by_slug(" radio-ourse") == organization
    assert members_queries.organization_by_id(organization.pk) == organization
    assert members_queries.member_by_name("ana@example.org") == ana.person
    assert members_queries.member_by_name("radio-ourse") == organization
    assert governance_queries.decision_by_id(decision.pk) == decision
    assert governance_queries.decision_row_by_id(decision.pk).decision == decision


@pytest.mark.parametrize(("lookup", "key", "message", "field"), [
    (directory_queries.account_by_uid, "nobody", "No account has the user name “nobody”.",
     "uid"),
    (directory_queries.group_by_name, "nope", "No group is named nope.", "group"),
    (members_queries.person_by_email, "who@example.org",
     "No person has the email “who@example.org”.", "person"),
    (members_queries.person_by_id, 999_999, "No person has this id.", "person_id"),
    (members_queries.organization_by_slug, "nobody",
     "No organization has the short name “nobody”.", "organization"),
    (members_queries.organization_by_id, 999_999, "No organization has this id.",
     "organization_id"),
    (members_queries.membership_by_id, 999_999, "No membership has this id.", "membership_id"),
    (governance_queries.decision_by_id, 999_999, "No decision has the number 999999.",
     "decision_id"),
    (governance_queries.decision_row_by_id, 999_999, "No decision has the number 999999.",
     "decision_id"),
    (core_queries.job_by_id, 999_999, "No job has this id.", "job_id"),
    (backups_queries.plan_by_name, "nightly", "No backup plan is named nightly.", "plan"),
    (backups_queries.repository_by_name, "offsite", "No repository is named offsite.",
     "repository"),
])
def test_each_lookup_names_the_key_it_did_not_find(community, lookup, key, message,
                                                    field) -> None:
    with pytest.raises(NotFound) as missing:
        lookup(key)
    assert str(missing.value) == message
    assert missing.value.field == field


@pytest.mark.parametrize(("lookup", "key"), [
    (directory_queries.account_by_uid, "an\x00a"),
    (directory_queries.account_by_uid, " ana"),  # kept as sent: not "ana"
    (directory_queries.account_by_uid, "a" * 10_000),
    (directory_queries.group_by_name, "pass\x00words"),
    (directory_queries.group_by_name, "team*"),
    (members_queries.person_by_email, "ana@example.org\x00"),
    (members_queries.organization_by_slug, "\x00"),
    (members_queries.person_by_id, 0),
    (members_queries.person_by_id, -4),
    (members_queries.person_by_id, 2**63),
    (members_queries.membership_by_id, 10**30),
    (governance_queries.decision_by_id, 2**64),
    (governance_queries.decision_row_by_id, -1),
    (core_queries.job_by_id, 0),
    (backups_queries.plan_by_name, "night\x00ly"),
    (backups_queries.plan_by_name, "Nightly"),
    (backups_queries.repository_by_name, "a" * 100),
])
def test_a_key_that_cannot_name_anything_is_not_found_without_a_query(community, lookup,
                                                                      key) -> None:
    with CaptureQueriesContext(connection) as queries, pytest.raises(NotFound):
        lookup(key)
    assert len(queries) == 0


def test_an_unknown_field_of_a_proposal_carries_the_lookups_message(community) -> None:
    """The operations find what their params name through the same lookups: the field is
    the operation's, the message the one every interface shows."""
    with pytest.raises(NotFound) as missing:
        actions.do_propose("Team", [{"type": "group.grant", "params": {
            "group": "nope", "account": "bo"}}], acting_user=community.voters[0])
    assert str(missing.value) == "No group is named nope."
    assert missing.value.field == "operations.0.group"
    with pytest.raises(NotFound) as missing:
        actions.do_propose("Team", [{"type": "group.grant", "params": {
            "group": "team", "account": "nobody"}}], acting_user=community.voters[0])
    assert str(missing.value) == "No account has the user name “nobody”."
    assert missing.value.field == "operations.0.account"


@pytest.mark.parametrize("path", [
    "/groups/nope/", "/groups/pass%00words/", "/groups/nope/edit/", "/accounts/nobody/",
    "/accounts/an%00a/", "/accounts/nobody/edit/", "/members/999999/",
    f"/members/{2**63}/", "/organizations/999999/", "/decisions/999999/",
    f"/decisions/{2**64}/",
])
def test_pages_answer_404_for_what_a_lookup_does_not_find(client, community, path) -> None:
    login_with_second_factor(client, community.admin)
    response = client.get(path)
    assert response.status_code == 404
    assert "404.html" in [template.name for template in response.templates]


def test_a_post_to_a_page_of_something_unknown_changes_nothing(client, community) -> None:
    """From the attacker's side: a form posted at a name that does not exist (or cannot
    exist) is a 404, never a write somewhere else."""
    login_with_second_factor(client, community.admin)
    before = list(community.team.memberships.values_list("account__uid", flat=True))
    for name in ("nope", "team%00", "Team"):
        response = client.post(f"/groups/{name}/members/", {"uid": "ana"})
        assert response.status_code == 404
    assert list(community.team.memberships.values_list("account__uid", flat=True)) == before


def test_a_view_error_that_is_not_a_lookup_stays_what_it_was(client, community) -> None:
    """Only NotFound becomes the 404 page: a form's refused value is shown on the form."""
    login_with_second_factor(client, community.admin)
    response = client.post("/groups/team/members/", {"uid": "nobody", "expires_on": ""})
    assert response.status_code == 200
    form = response.context["member_form"]
    assert form.errors["uid"] == ["No account has the user name “nobody”."]


def test_the_api_answers_the_lookups_message(client, community) -> None:
    ana = community.voters[0]
    _token, key = do_create_api_token(ana, "tests", acting_user=ana, owner_proved=True)
    response = client.get("/api/v1/governance/decisions/999999",
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "field": "decision_id",
                               "message": "No decision has the number 999999."}
