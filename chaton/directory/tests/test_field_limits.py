"""What the OpenAPI schema promises is what the server keeps, field by field.

For every text field of the accounts, groups, SSH keys, tokens and members
bodies that the schema limits, the test reads the schema's ``maxLength`` N,
sends N characters (accepted, and kept exactly) and N + 1 (refused with a
coded error naming the field, nothing written). The models and the forms
read the same constants (:mod:`chaton.core.limits`): checked here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from chaton.core import limits
from chaton.core.models import ApiToken, AuditLog
from chaton.directory.models import Account, Group, SSHKey
from chaton.directory.tests.test_api import ED25519, Api, assert_error, make_account
from chaton.members.models import Organization, Person

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1"
PASSWORD_TEXT = "Lune vélo 42 brume "  # repeated to any length; never a common password


def text(length: int, first: str = "a", rest: str = "b") -> str:
    return (first + rest * length)[:length]


def email(length: int, tag: str) -> str:
    """An address of exactly ``length`` characters (the domain's labels stay under 64)."""
    domain = f"{tag}.example.org"
    return "e" * (length - len(domain) - 1) + "@" + domain


def ssh_key(length: int) -> str:
    """A well-formed key line of exactly ``length`` characters (its comment pads it)."""
    return ED25519 + " " + "k" * (length - len(ED25519) - 1)


@dataclass(frozen=True)
class Case:
    """A limited field: how to send a value of it, and where the server keeps it."""

    schema: str
    field: str
    send: Callable[[Api, Any], Any]
    #: Given the value, return what the server kept (None when nothing was kept).
    kept: Callable[[Any], Any]
    value: Callable[[int], Any]


def _account(uid: str) -> Account | None:
    return Account.objects.filter(uid=uid).first()


def _person(api: Api) -> str:
    return f"/members/persons/{api.person_id}"  # type: ignore[attr-defined]


def _organization(api: Api) -> str:
    return f"/members/organizations/{api.organization_id}"  # type: ignore[attr-defined]


def _new_account(api: Api, **fields: Any) -> Any:
    body = {"uid": "fresh", "display_name": "Fresh", "email": "fresh@example.org", **fields}
    return api.post("/accounts", body)


CASES = [
    Case("AccountIn", "uid", lambda api, value: _new_account(api, uid=value),
         lambda value: value if _account(value) else None, lambda n: text(n, "u", "x")),
    Case("AccountIn", "display_name", lambda api, value: _new_account(api, display_name=value),
         lambda value: getattr(_account("fresh"), "display_name", None), text),
    Case("AccountIn", "email", lambda api, value: _new_account(api, email=value),
         lambda value: getattr(_account("fresh"), "email", None), lambda n: email(n, "new")),
    Case("AccountIn", "password", lambda api, value: _new_account(api, password=value),
         lambda value: value if (_account("fresh") and _account("fresh").check_password(value))
         else None, lambda n: (PASSWORD_TEXT * n)[:n]),
    Case("AccountPatch", "display_name",
         lambda api, value: api.patch("/accounts/moss", {"display_name": value}),
         lambda value: _account("moss").display_name, text),
    Case("AccountPatch", "email", lambda api, value: api.patch("/accounts/moss", {"email": value}),
         lambda value: _account("moss").email, lambda n: email(n, "patch")),
    Case("MePatch", "display_name",
         lambda api, value: api.member.patch("/me", {"display_name": value}),
         lambda value: _account("moss").display_name, text),
    Case("MePatch", "email", lambda api, value: api.member.patch("/me", {"email": value}),
         lambda value: _account("moss").email, lambda n: email(n, "me")),
    Case("PasswordIn", "password",
         lambda api, value: api.post("/accounts/moss/password", {"password": value}),
         lambda value: value if _account("moss").check_password(value) else None,
         lambda n: (PASSWORD_TEXT * n)[:n]),
    Case("MyPasswordIn", "password",
         lambda api, value: api.member.post("/me/password", {
             "current_password": "moss pass phrase 42", "password": value}),
         lambda value: value if _account("moss").check_password(value) else None,
         lambda n: (PASSWORD_TEXT * n)[:n]),
    Case("SSHKeyIn", "key", lambda api, value: api.post("/accounts/moss/ssh-keys", {"key": value}),
         lambda value: value if SSHKey.objects.filter(key=value).exists() else None, ssh_key),
    Case("GroupIn", "name", lambda api, value: api.post("/groups", {"name": value}),
         lambda value: value if Group.objects.filter(name=value).exists() else None,
         lambda n: text(n, "g", "x")),
    Case("GroupIn", "description",
         lambda api, value: api.post("/groups", {"name": "fresh", "description": value}),
         lambda value: getattr(Group.objects.filter(name="fresh").first(), "description", None),
         text),
    Case("GroupPatch", "name", lambda api, value: api.patch("/groups/team", {"name": value}),
         lambda value: value if Group.objects.filter(name=value).exists() else None,
         lambda n: text(n, "r", "x")),
    Case("GroupPatch", "description",
         lambda api, value: api.patch("/groups/team", {"description": value}),
         lambda value: Group.objects.get(name="team").description, text),
    Case("GroupMemberIn", "uid",
         lambda api, value: api.post("/groups/team/members", {"uid": value}),
         lambda value: value if Group.objects.get(name="team").memberships.filter(
             account__uid=value).exists() else None, lambda n: text(n, "l", "x")),
    Case("TokenIn", "account",
         lambda api, value: api.post("/tokens", {"account": value, "name": "limits"}),
         lambda value: value if ApiToken.objects.filter(account__uid=value).exists() else None,
         lambda n: text(n, "l", "x")),
    Case("TokenIn", "name", lambda api, value: api.post("/tokens", {"account": "moss",
                                                                    "name": value}),
         lambda value: value if ApiToken.objects.filter(name=value).exists() else None, text),
    Case("PersonIn", "full_name",
         lambda api, value: api.post("/members/persons", {"full_name": value,
                                                  "email": "p@example.org"}),
         lambda value: value if Person.objects.filter(full_name=value).exists() else None, text),
    Case("PersonIn", "email",
         lambda api, value: api.post("/members/persons", {"full_name": "P", "email": value}),
         lambda value: value if Person.objects.filter(email=value).exists() else None,
         lambda n: email(n, "person")),
    Case("PersonIn", "phone",
         lambda api, value: api.post("/members/persons", {
             "full_name": "Phone", "email": "ph@example.org", "phone": value}),
         lambda value: getattr(Person.objects.filter(full_name="Phone").first(), "phone", None),
         lambda n: text(n, "0", "6")),
    Case("PersonPatch", "full_name",
         lambda api, value: api.patch(_person(api), {"full_name": value}),
         lambda value: Person.objects.get(email="noa@example.org").full_name, text),
    Case("PersonPatch", "email",
         lambda api, value: api.patch(_person(api), {"email": value}),
         lambda value: value if Person.objects.filter(email=value).exists() else None,
         lambda n: email(n, "personpatch")),
    Case("PersonPatch", "phone",
         lambda api, value: api.patch(_person(api), {"phone": value}),
         lambda value: Person.objects.get(email="noa@example.org").phone,
         lambda n: text(n, "0", "7")),
    Case("OrganizationIn", "name",
         lambda api, value: api.post("/members/organizations", {"name": value,
                                                        "email": "o@example.org"}),
         lambda value: value if Organization.objects.filter(name=value).exists() else None,
         text),
    Case("OrganizationIn", "email",
         lambda api, value: api.post("/members/organizations", {"name": "Orga", "email": value}),
         lambda value: getattr(Organization.objects.filter(name="Orga").first(), "email", None),
         lambda n: email(n, "orga")),
    Case("OrganizationIn", "slug",
         lambda api, value: api.post("/members/organizations", {"name": "Slugged",
                                                        "email": "s@example.org",
                                                        "slug": value}),
         lambda value: value if Organization.objects.filter(slug=value).exists() else None,
         lambda n: text(n, "s", "x")),
    Case("OrganizationPatch", "name",
         lambda api, value: api.patch(_organization(api), {"name": value}),
         lambda value: value if Organization.objects.filter(name=value).exists() else None,
         text),
    Case("OrganizationPatch", "email",
         lambda api, value: api.patch(_organization(api), {"email": value}),
         lambda value: Organization.objects.get(slug="vent").email,
         lambda n: email(n, "orgapatch")),
]

#: Limited fields that are not text the server keeps, and why they are not in CASES.
NOT_KEPT = {
    ("MyPasswordIn", "current_password"): "compared with the password, never stored",
    ("GroupIn", "kind"): "one of a few values, checked as such",
}


def _max_length(schema: dict[str, Any], name: str, field: str) -> int:
    """Return the maxLength the OpenAPI schema gives ``name.field`` (nullable ones too)."""
    definition = schema["components"]["schemas"][name]["properties"][field]
    for candidate in [definition, *definition.get("anyOf", [])]:
        if "maxLength" in candidate:
            return int(candidate["maxLength"])
    raise AssertionError(f"{name}.{field} has no maxLength in the schema: {definition}")


def _limited_fields(schema: dict[str, Any], names: set[str]) -> set[tuple[str, str]]:
    found = set()
    for name in names:
        for field, definition in schema["components"]["schemas"][name]["properties"].items():
            if any("maxLength" in candidate
                   for candidate in [definition, *definition.get("anyOf", [])]):
                found.add((name, field))
    return found


@pytest.fixture
def openapi(client) -> dict[str, Any]:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def api(client, directory) -> Api:
    """An administrator's API client, a member's (``api.member``), a group, a person and an
    organization to change, and accounts named at the uid limits to look up."""
    from chaton.core.actions import do_create_api_token
    from chaton.directory import actions as directory_actions
    from chaton.members import actions as members_actions
    from chaton.testing.second_factor import enroll

    admin = make_account("wren", is_admin=True, password="a long pass phrase 7")
    enroll(admin)  # creating tokens takes an administrator with a second factor
    member = make_account("moss", password="moss pass phrase 42")
    make_account(text(limits.UID_MAX_LENGTH, "l", "x"))
    directory_actions.do_create_group("team", acting_user=None)
    person = members_actions.do_create_person("Noa", "noa@example.org", acting_user=None)
    organization = members_actions.do_create_organization("Vent", "vent@example.org",
                                                          acting_user=None, slug="vent")
    _token, key = do_create_api_token(admin, "limits", acting_user=None)
    api = Api(client, key)
    _token, member_key = do_create_api_token(member, "laptop", acting_user=member)
    api.member = Api(client, member_key)  # type: ignore[attr-defined]
    api.person_id = person.pk  # type: ignore[attr-defined]
    api.organization_id = organization.pk  # type: ignore[attr-defined]
    return api


def test_every_limited_field_is_checked(openapi) -> None:
    names = {case.schema for case in CASES} | {name for name, _field in NOT_KEPT}
    covered = {(case.schema, case.field) for case in CASES} | set(NOT_KEPT)
    assert _limited_fields(openapi, names) == covered


@pytest.mark.parametrize("case", CASES, ids=[f"{case.schema}.{case.field}" for case in CASES])
def test_schema_max_length_is_what_the_server_keeps(openapi, api, case: Case) -> None:
    limit = _max_length(openapi, case.schema, case.field)
    too_long = case.value(limit + 1)
    assert len(too_long) == limit + 1
    audit_rows = AuditLog.objects.count()
    before = case.kept(too_long)
    assert_error(case.send(api, too_long), 400, "invalid", case.field)
    assert case.kept(too_long) == before and before != too_long
    assert AuditLog.objects.count() == audit_rows  # nothing was written

    longest = case.value(limit)
    assert len(longest) == limit
    response = case.send(api, longest)
    assert response.status_code in (200, 201, 204), response.content
    assert case.kept(longest) == longest


def test_models_and_forms_share_the_limits() -> None:
    from chaton.directory import forms as directory_forms
    from chaton.members import forms as members_forms

    pairs = [
        (Account._meta.get_field("uid").max_length, limits.UID_MAX_LENGTH),
        (Account._meta.get_field("display_name").max_length, limits.DISPLAY_NAME_MAX_LENGTH),
        (Account._meta.get_field("email").max_length, limits.EMAIL_MAX_LENGTH),
        (Group._meta.get_field("name").max_length, limits.GROUP_NAME_MAX_LENGTH),
        (Group._meta.get_field("description").max_length, limits.GROUP_DESCRIPTION_MAX_LENGTH),
        (ApiToken._meta.get_field("name").max_length, limits.TOKEN_NAME_MAX_LENGTH),
        (Person._meta.get_field("full_name").max_length, limits.PERSON_NAME_MAX_LENGTH),
        (Person._meta.get_field("phone").max_length, limits.PHONE_MAX_LENGTH),
        (Organization._meta.get_field("name").max_length, limits.ORGANIZATION_NAME_MAX_LENGTH),
        (Organization._meta.get_field("slug").max_length, limits.ORGANIZATION_SLUG_MAX_LENGTH),
    ]
    create, details = directory_forms.AccountCreateForm(), directory_forms.AccountDetailsForm()
    group, group_edit = directory_forms.GroupForm(), directory_forms.GroupEditForm()
    person, organization = members_forms.PersonForm(), members_forms.OrganizationForm()
    pairs += [
        (create.fields["uid"].max_length, limits.UID_MAX_LENGTH),
        (create.fields["new_password1"].max_length, limits.PASSWORD_MAX_LENGTH),
        (details.fields["display_name"].max_length, limits.DISPLAY_NAME_MAX_LENGTH),
        (details.fields["email"].max_length, limits.EMAIL_MAX_LENGTH),
        (group.fields["name"].max_length, limits.GROUP_NAME_MAX_LENGTH),
        (group.fields["description"].max_length, limits.GROUP_DESCRIPTION_MAX_LENGTH),
        (group_edit.fields["description"].max_length, limits.GROUP_DESCRIPTION_MAX_LENGTH),
        (directory_forms.SSHKeyForm().fields["key"].max_length, limits.SSH_KEY_MAX_LENGTH),
        (person.fields["full_name"].max_length, limits.PERSON_NAME_MAX_LENGTH),
        (person.fields["phone"].max_length, limits.PHONE_MAX_LENGTH),
        (organization.fields["slug"].max_length, limits.ORGANIZATION_SLUG_MAX_LENGTH),
    ]
    assert [model_or_form for model_or_form, _limit in pairs] == [
        limit for _value, limit in pairs]


def test_the_messages_name_the_limits() -> None:
    """The uid and group-name messages spell their limits out: they must say the same."""
    from chaton.core.errors import InvalidInput
    from chaton.directory import validation

    with pytest.raises(InvalidInput) as uid_error:
        validation.clean_uid("9")
    assert f"{limits.UID_MIN_LENGTH} to {limits.UID_MAX_LENGTH} characters" in str(
        uid_error.value) or "2 à 32" in str(uid_error.value)
    with pytest.raises(InvalidInput) as group_error:
        validation.clean_group_name("9")
    assert (f"{limits.GROUP_NAME_MIN_LENGTH} to {limits.GROUP_NAME_MAX_LENGTH} characters"
            in str(group_error.value)) or "2 à 64" in str(group_error.value)
