"""Edges, from the caller's side: what the server would not keep is refused, by name.

Through the API (a coded error naming the field) and the pages (an error next
to the field, what was typed kept), each refusal leaves the database and the
directory as they were: spaces around names are refused rather than trimmed,
passwords with control characters are refused, and an expiry date already
past is refused for accounts as for group accesses. The CLI's side is in
``tests/cli/test_edges_cli.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.directory import actions
from chaton.directory.models import Account, Group, GroupMembership
from chaton.directory.tests.test_api import Api, assert_error, make_account
from chaton.testing.second_factor import login_with_second_factor

pytestmark = pytest.mark.django_db(transaction=True)

OLD_PASSWORD = "moss pass phrase 42"
#: Passwords nobody could type again: NUL, tab, newline, escape, DEL, a C1 control.
UNTYPABLE = ["good pass\x00phrase", "good\tpass phrase", "good pass phrase\n",
             "\x1b[31mgood pass phrase", "good pass phrase\x7f", "good pass\x85phrase"]


@pytest.fixture
def admin(directory) -> Account:
    return make_account("wren", is_admin=True, password="a long pass phrase 7")


@pytest.fixture
def member(directory) -> Account:
    return make_account("moss", password=OLD_PASSWORD)


@pytest.fixture
def api(client, admin) -> Api:
    from chaton.core.actions import do_create_api_token

    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def member_api(client, member) -> Api:
    from chaton.core.actions import do_create_api_token

    _token, key = do_create_api_token(member, "laptop", acting_user=member)
    return Api(client, key)


@pytest.fixture
def pages(client, admin):
    """The test client logged in as the administrator (second factor passed), reading pages
    in English."""
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return login_with_second_factor(client, admin)


def snapshot(directory) -> tuple[object, ...]:
    """What a refusal must leave unchanged: accounts, groups, memberships, audit, LDAP."""
    return (list(Account.objects.order_by("uid").values()),
            list(Group.objects.order_by("name").values()),
            list(GroupMembership.objects.order_by("pk").values()),
            AuditLog.objects.count(), dict(directory.entries))


# -- spaces around a value ---------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("uid", " trailing "), ("uid", "trailing "), ("uid", "\ttrailing"),
    ("display_name", " Kim"), ("display_name", "Kim "), ("email", "kim@example.org "),
])
def test_api_refuses_spaces_around_account_values(api, member, directory, field, value):
    before = snapshot(directory)
    body = {"uid": "kim", "display_name": "Kim", "email": "kim@example.org", field: value}
    assert_error(api.post("/accounts", body), 400, "invalid", field)
    assert snapshot(directory) == before
    assert not Account.objects.filter(uid__in=["trailing", "kim"]).exists()
    if field != "uid":
        assert_error(api.patch("/accounts/moss", {field: value}), 400, "invalid", field)
        assert snapshot(directory) == before


def test_api_refuses_spaces_around_group_values_and_member_changes(api, member_api, directory):
    actions.do_create_group("team", acting_user=None, description="The team")
    before = snapshot(directory)
    assert_error(api.post("/groups", {"name": " team2"}), 400, "invalid", "name")
    assert_error(api.post("/groups", {"name": "team2", "description": "x "}), 400, "invalid",
                 "description")
    assert_error(api.patch("/groups/team", {"description": " The team"}), 400, "invalid",
                 "description")
    # A member on their own account: the same rule.
    assert_error(member_api.patch("/me", {"display_name": "Moss "}), 400, "invalid",
                 "display_name")
    assert_error(member_api.patch("/me", {"email": " moss@example.org"}), 400, "invalid",
                 "email")
    # A uid in a path or a body is looked up exactly: " moss" is nobody.
    assert_error(api.get("/accounts/%20moss"), 404, "not_found")
    assert_error(api.post("/groups/team/members", {"uid": " moss"}), 404, "not_found", "uid")
    assert snapshot(directory) == before


def test_spaces_inside_a_name_are_kept(api, directory):
    response = api.post("/accounts", {"uid": "kim", "display_name": "Kim  de la Lune",
                                      "email": "kim@example.org"})
    assert response.status_code == 201, response.content
    assert Account.objects.get(uid="kim").display_name == "Kim  de la Lune"


def test_forms_refuse_spaces_around_values_and_keep_what_was_typed(pages, member, directory):
    before = snapshot(directory)
    response = pages.post(reverse("account-create"), {
        "uid": " trailing ", "display_name": "Trailing", "email": "t@example.org"})
    assert response.status_code == 200
    assert "Spaces at the start or the end" in response.context["form"].errors["uid"][0]
    assert 'value=" trailing "' in response.content.decode()
    response = pages.post(reverse("account-edit", args=["moss"]), {
        "display_name": "Moss ", "email": "moss@example.org", "expires_on": ""})
    assert "Spaces" in response.context["form"].errors["display_name"][0]
    response = pages.post(reverse("group-create"), {"name": "team ", "kind": "team"})
    assert "Spaces" in response.context["form"].errors["name"][0]
    assert snapshot(directory) == before
    assert not Account.objects.filter(uid="trailing").exists()


# -- passwords nobody could type ---------------------------------------------------------------


@pytest.mark.parametrize("password", UNTYPABLE)
def test_api_refuses_passwords_with_control_characters(api, member_api, member, directory,
                                                       password):
    before = snapshot(directory)
    assert_error(api.post("/accounts", {"uid": "kim", "display_name": "Kim",
                                        "email": "kim@example.org", "password": password}),
                 400, "invalid", "password")
    assert_error(api.post("/accounts/moss/password", {"password": password}), 400, "invalid",
                 "password")
    assert_error(member_api.post("/me/password", {"current_password": OLD_PASSWORD,
                                                  "password": password}),
                 400, "invalid", "password")
    assert snapshot(directory) == before
    member.refresh_from_db()
    assert member.check_password(OLD_PASSWORD)


def test_forms_refuse_passwords_with_control_characters(client, member, pages):
    for password in ("good\tpass phrase", "\x1b[31mgood pass phrase"):
        response = pages.post(reverse("account-password", args=["moss"]), {
            "new_password1": password, "new_password2": password})
        assert response.status_code == 200
        assert "control characters" in response.context["password_form"].errors[
            "new_password1"][0]
    client.force_login(member)
    response = client.post(reverse("password-change"), {
        "old_password": OLD_PASSWORD, "new_password1": "good\tpass phrase",
        "new_password2": "good\tpass phrase"})
    assert "control characters" in response.context["form"].errors["new_password1"][0]
    member.refresh_from_db()
    assert member.check_password(OLD_PASSWORD)


def test_spaces_in_a_password_are_kept(api, member):
    assert api.post("/accounts/moss/password", {"password": "  moon over water  "}
                    ).status_code == 204
    member.refresh_from_db()
    assert member.check_password("  moon over water  ")
    assert not member.check_password("moon over water")


# -- an expiry already past ----------------------------------------------------------------


def test_api_refuses_a_past_expiry_for_accounts_as_for_groups(api, member, directory):
    actions.do_create_group("team", acting_user=None)
    past = (clock.now() - dt.timedelta(days=1)).isoformat()
    before = snapshot(directory)
    assert_error(api.post("/accounts", {"uid": "kim", "display_name": "Kim",
                                        "email": "kim@example.org", "expires_at": past}),
                 400, "invalid", "expires_at")
    assert_error(api.patch("/accounts/moss", {"expires_at": past}), 400, "invalid", "expires_at")
    assert_error(api.post("/groups/team/members", {"uid": "moss", "expires_at": past}),
                 400, "invalid", "expires_at")
    assert snapshot(directory) == before
    future = (clock.now() + dt.timedelta(days=30)).replace(microsecond=0)
    assert api.patch("/accounts/moss", {"expires_at": future.isoformat()}).status_code == 200
    assert api.patch("/accounts/moss", {"expires_at": None}).status_code == 200


def test_an_unchanged_past_expiry_does_not_block_other_changes(api, pages, member):
    expiry = clock.now() + dt.timedelta(hours=1, minutes=17)
    actions.do_update_account(member, acting_user=None, expires_at=expiry)
    clock.travel(dt.timedelta(days=2))
    try:
        response = api.patch("/accounts/moss", {"display_name": "Moss Again",
                                                "expires_at": expiry.isoformat()})
        assert response.status_code == 200, response.content
        response = pages.post(reverse("account-edit", args=["moss"]), {
            "display_name": "Moss Once More", "email": "moss@example.org",
            "expires_on": timezone.localdate(expiry).isoformat()})
        assert response.status_code == 302
    finally:
        clock.travel(dt.timedelta(0))
    member.refresh_from_db()
    # Kept to the minute: the page's day did not round it.
    assert member.display_name == "Moss Once More" and member.expires_at == expiry


def test_forms_refuse_a_past_expiry(pages, member, directory):
    yesterday = (clock.today() - dt.timedelta(days=1)).isoformat()
    before = snapshot(directory)
    response = pages.post(reverse("account-create"), {
        "uid": "kim", "display_name": "Kim", "email": "kim@example.org",
        "expires_on": yesterday})
    assert "already past" in response.context["form"].errors["expires_on"][0]
    response = pages.post(reverse("account-edit", args=["moss"]), {
        "display_name": "Moss", "email": "moss@example.org", "expires_on": yesterday})
    assert "already past" in response.context["form"].errors["expires_on"][0]
    assert snapshot(directory) == before


# -- members: the same rules ---------------------------------------------------------------


def test_members_refuse_spaces_around_values_through_api_and_pages(api, pages, directory):
    from chaton.members.models import Organization, Person

    before = (list(Person.objects.values()), list(Organization.objects.values()),
              AuditLog.objects.count())
    assert_error(api.post("/members/persons", {"full_name": " Noa", "email": "noa@example.org"}),
                 400, "invalid", "full_name")
    assert_error(api.post("/members/persons", {"full_name": "Noa", "email": "noa@example.org",
                                               "phone": "06 12 "}), 400, "invalid", "phone")
    assert_error(api.post("/members/organizations", {"name": "Vent ",
                                                     "email": "vent@example.org"}),
                 400, "invalid", "name")
    response = pages.post(reverse("person-create"), {"full_name": "Noa ",
                                                     "email": "noa@example.org"})
    assert "Spaces" in response.context["form"].errors["full_name"][0]
    assert 'value="Noa "' in response.content.decode()
    response = pages.post(reverse("organization-create"), {"name": "Vent", "slug": "Vent",
                                                           "email": "vent@example.org"})
    assert "short name" in response.context["form"].errors["slug"][0]
    assert (list(Person.objects.values()), list(Organization.objects.values()),
            AuditLog.objects.count()) == before
