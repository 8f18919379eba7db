"""``/api/v1/members``: persons, organizations, memberships, dues, counts and the electorate."""

import datetime as dt
import json

import pytest

from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.directory import actions as directory_actions
from chaton.members import actions
from chaton.members.models import DuesPayment, Membership, Organization, Person
from chaton.testing.voters import recorded_at_start

BASE = "dc=chaton,dc=test"
API = "/api/v1/members"
pytestmark = pytest.mark.django_db(transaction=True)


class Api:
    """The Django test client with a bearer token and JSON bodies."""

    def __init__(self, client, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path, **params):
        return self.client.get(API + path, params, headers=self.headers)

    def post(self, path, body=None, *, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(API + path, data, content_type="application/json",
                                headers=self.headers)

    def patch(self, path, body):
        return self.client.patch(API + path, json.dumps(body), content_type="application/json",
                                 headers=self.headers)


@pytest.fixture
def api(client, directory):
    admin = directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                                email="wren@example.org", is_admin=True)
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def member_api(client, directory):
    account = directory_actions.do_create_account("moss", acting_user=None, display_name="Moss",
                                                  email="moss@example.org")
    _token, key = do_create_api_token(account, "laptop", acting_user=account)
    return Api(client, key)


def assert_error(response, status: int, code: str, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    if field is not None:
        assert body["field"] == field, body
    return body


def make_person(index: int) -> Person:
    return actions.do_create_person(f"Person {index:03d}", f"person{index}@example.org",
                                    acting_user=None)


# --- persons --------------------------------------------------------------------------------


def test_person_create_get_patch_and_search(api):
    response = api.post("/persons", {"full_name": "Ivy Thorn", "email": "Ivy@Example.org",
                                     "phone": "+33 1 23 45 67 89"})
    assert response.status_code == 201, response.content
    person = response.json()
    assert person["email"] == "ivy@example.org"
    assert api.get(f"/persons/{person['id']}").json()["full_name"] == "Ivy Thorn"
    response = api.patch(f"/persons/{person['id']}", {"phone": ""})
    assert response.status_code == 200 and response.json()["phone"] == ""
    api.post("/persons", {"full_name": "Oak Reed", "email": "oak@example.org"})
    found = api.get("/persons", q="thorn").json()
    assert found["count"] == 1 and found["items"][0]["id"] == person["id"]
    assert api.get("/persons").json()["count"] == 2
    page = api.get("/persons", limit=1, offset=1).json()
    assert page["count"] == 2 and [item["full_name"] for item in page["items"]] == ["Oak Reed"]


def test_person_errors(api):
    api.post("/persons", {"full_name": "Ivy Thorn", "email": "ivy@example.org"})
    assert_error(api.post("/persons", {"full_name": "Ivy Two", "email": "ivy@example.org"}),
                 409, "conflict", "email")
    assert_error(api.post("/persons", {"full_name": "", "email": "x@example.org"}),
                 400, "invalid", "full_name")
    assert_error(api.post("/persons", {"full_name": "Nul\u0000", "email": "x@example.org"}),
                 400, "invalid", "full_name")
    assert_error(api.post("/persons", {"full_name": "X", "email": "x\u0000@example.org"}),
                 400, "invalid", "email")
    assert_error(api.post("/persons", {"full_name": "X", "email": "nope"}), 400, "invalid",
                 "email")
    assert_error(api.post("/persons", {"full_name": "X", "email": "a" * 300 + "@example.org"}),
                 400, "invalid", "email")
    assert_error(api.post("/persons", {"full_name": 5, "email": True}), 400, "invalid")
    assert_error(api.post("/persons", {"full_name": "X", "email": "x@example.org",
                                       "nickname": "x"}), 400, "invalid", "nickname")
    assert_error(api.post("/persons", raw='{"full_name": "X",'), 400, "invalid")
    assert_error(api.post("/persons", raw="\u0000"), 400, "invalid")
    assert_error(api.get("/persons/999"), 404, "not_found")
    assert_error(api.get("/persons/0"), 404, "not_found")
    assert_error(api.get("/persons/-4"), 404, "not_found")
    assert_error(api.get(f"/persons/{10**30}"), 404, "not_found")
    assert_error(api.get("/persons/abc"), 400, "invalid", "person_id")
    assert_error(api.get("/persons/%00"), 400, "invalid", "person_id")
    assert_error(api.patch("/persons/999", {"phone": "1"}), 404, "not_found")
    assert_error(api.get("/persons", q="x\u0000"), 400, "invalid", "q")
    assert Person.objects.count() == 1


def test_organizations(api, directory):
    response = api.post("/organizations", {"name": "Les Amis du Vent",
                                           "email": "contact@vent.example.org"})
    assert response.status_code == 201, response.content
    organization = response.json()
    assert organization["slug"] == "les-amis-du-vent"
    assert_error(api.post("/organizations", {"name": "Les Amis du Vent",
                                             "email": "b@example.org"}), 409, "conflict", "name")
    assert_error(api.post("/organizations", {"name": "Other", "email": "b@example.org",
                                             "slug": "99"}), 400, "invalid", "slug")
    # LDAP special characters never reach the short name (it names a DN): a short name is
    # kept as typed or refused, never changed behind the caller's back.
    for slug in ["*)(o=*\u0000", "Odd", " odd", "o" * 65]:
        assert_error(api.post("/organizations", {"name": "Odd", "email": "b@example.org",
                                                 "slug": slug}), 400, "invalid", "slug")
    assert not Organization.objects.filter(name="Odd").exists()
    odd = api.post("/organizations", {"name": "Odd", "email": "b@example.org",
                                      "slug": "o" * 64})
    assert odd.status_code == 201 and odd.json()["slug"] == "o" * 64
    changed = api.patch(f"/organizations/{organization['id']}", {"email": "new@example.org"})
    assert changed.status_code == 200 and changed.json()["email"] == "new@example.org"
    assert api.get("/organizations", q="vent").json()["count"] == 1
    assert api.get(f"/organizations/{organization['id']}").json()["name"] == "Les Amis du Vent"
    assert_error(api.get("/organizations/12345"), 404, "not_found")


# --- memberships and dues -------------------------------------------------------------------


def test_membership_start_list_end_and_dues(api):
    person = make_person(1)
    response = api.post(f"/persons/{person.pk}/memberships",
                        {"starts_on": "2024-01-01", "kind": "regular"})
    assert response.status_code == 201, response.content
    membership = response.json()
    assert membership["person_id"] == person.pk and membership["dues"] == []
    assert_error(api.post(f"/persons/{person.pk}/memberships", {"starts_on": "2024-06-01"}),
                 409, "conflict", "starts_on")
    response = api.post(f"/memberships/{membership['id']}/dues",
                        {"amount": "12.5", "paid_on": "2024-01-02"})
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "12.50"
    for amount in ["-1", "abc", "1e30", "NaN", None, [], "Infinity"]:
        assert_error(api.post(f"/memberships/{membership['id']}/dues",
                              {"amount": amount, "paid_on": "2024-01-02"}), 400, "invalid",
                     "amount")
    for raw in ['{"amount": 1e400, "paid_on": "2024-01-02"}',
                '{"amount": 5, "paid_on": "2024-01-02", "amount": "x"}',
                '{"amount": 5, "paid_on": 20240102}']:
        assert_error(api.post(f"/memberships/{membership['id']}/dues", raw=raw), 400,
                     "invalid")
    assert DuesPayment.objects.count() == 1
    assert_error(api.post(f"/memberships/{membership['id']}/end", {"ends_on": "2023-01-01"}),
                 400, "invalid", "ends_on")
    ended = api.post(f"/memberships/{membership['id']}/end", {"ends_on": "2024-12-31"})
    assert ended.status_code == 200 and ended.json()["ends_on"] == "2024-12-31"
    listed = api.get(f"/persons/{person.pk}/memberships").json()
    assert [item["id"] for item in listed] == [membership["id"]]
    assert listed[0]["dues"][0]["amount"] == "12.50"
    assert api.get(f"/memberships/{membership['id']}").json()["ends_on"] == "2024-12-31"
    assert_error(api.get("/memberships/999"), 404, "not_found")
    assert_error(api.post("/memberships/999/end", {"ends_on": "2024-01-01"}), 404,
                 "not_found")


def test_membership_input_errors(api):
    person = make_person(1)
    path = f"/persons/{person.pk}/memberships"
    assert_error(api.post(path, {"starts_on": "2024-13-01"}), 400, "invalid", "starts_on")
    assert_error(api.post(path, {"starts_on": "yesterday"}), 400, "invalid", "starts_on")
    assert_error(api.post(path, {"starts_on": "0001-01-01"}), 400, "invalid", "starts_on")
    assert_error(api.post(path, {"starts_on": "2024-01-01", "kind": "honorary"}), 400,
                 "invalid", "kind")
    assert_error(api.post(path, {"starts_on": "2024-05-01", "ends_on": "2024-01-01"}), 400,
                 "invalid", "ends_on")
    assert_error(api.post(path, {}), 400, "invalid", "starts_on")
    assert_error(api.post("/persons/999/memberships", {"starts_on": "2024-01-01"}), 404,
                 "not_found")
    assert not Membership.objects.exists()


def test_organization_membership(api, directory):
    organization = actions.do_create_organization("Vent", "vent@example.org", acting_user=None)
    response = api.post(f"/organizations/{organization.pk}/memberships",
                        {"starts_on": "2024-03-01", "kind": "support"})
    assert response.status_code == 201, response.content
    assert response.json()["organization_id"] == organization.pk
    listed = api.get(f"/organizations/{organization.pk}/memberships").json()
    assert [item["kind"] for item in listed] == ["support"]


# --- counts and electorate ------------------------------------------------------------------


def test_counts_on_a_day_and_over_a_period(api, directory):
    early, late = make_person(1), make_person(2)
    organization = actions.do_create_organization("Vent", "vent@example.org", acting_user=None)
    actions.do_start_membership(early, acting_user=None, starts_on=dt.date(2024, 1, 1),
                                ends_on=dt.date(2024, 3, 31))
    actions.do_start_membership(late, acting_user=None, starts_on=dt.date(2024, 6, 1),
                                kind="support")
    actions.do_start_membership(organization, acting_user=None, starts_on=dt.date(2024, 2, 1))
    on_day = api.get("/counts", on="2024-02-15").json()
    assert on_day["start"] == on_day["end"] == "2024-02-15"
    assert on_day["natural"] == {"regular": 1, "support": 0, "total": 1}
    assert on_day["legal"]["total"] == 1 and on_day["total"] == 2
    period = api.get("/counts", start="2024-01-01", end="2024-12-31").json()
    assert period["natural"] == {"regular": 1, "support": 1, "total": 2}
    assert period["total"] == 3
    assert api.get("/counts").json()["end"] == clock.today().isoformat()
    assert_error(api.get("/counts", on="2024-01-01", start="2024-01-01"), 400, "invalid", "on")
    assert_error(api.get("/counts", end="2024-01-01"), 400, "invalid", "start")
    assert_error(api.get("/counts", start="2024-05-01", end="2024-01-01"), 400, "invalid",
                 "end")
    assert_error(api.get("/counts", on="2024-02-30"), 400, "invalid", "on")
    assert_error(api.get("/counts", on="\u0000"), 400, "invalid", "on")


def test_voting_members(api):
    settled, newcomer, supporter = make_person(1), make_person(2), make_person(3)
    for member, day in ((settled, dt.date(2024, 1, 1)), (newcomer, dt.date(2024, 3, 10))):
        recorded_at_start(actions.do_start_membership(member, acting_user=None, starts_on=day))
    recorded_at_start(actions.do_start_membership(supporter, acting_user=None,
                                                  starts_on=dt.date(2024, 1, 1), kind="support"))
    electorate = api.get("/voting", on="2024-03-15").json()
    assert [item["id"] for item in electorate["items"]] == [settled.pk]
    later = api.get("/voting", on="2024-04-15").json()
    assert {item["id"] for item in later["items"]} == {settled.pk, newcomer.pk}
    assert_error(api.get("/voting", on="soon"), 400, "invalid", "on")


# --- permissions, query counts --------------------------------------------------------------


def test_non_admin_token_is_forbidden(member_api):
    person = make_person(1)
    for response in (member_api.get("/persons"), member_api.get(f"/persons/{person.pk}"),
                     member_api.post("/persons", {"full_name": "X", "email": "x@example.org"}),
                     member_api.get("/counts"), member_api.get("/voting"),
                     member_api.post(f"/persons/{person.pk}/memberships",
                                     {"starts_on": "2024-01-01"})):
        assert_error(response, 403, "forbidden")
    assert not Membership.objects.exists()


def _grow(start: int, count: int) -> Person:
    person = None
    for index in range(start, start + count):
        person = make_person(index)
        membership = actions.do_start_membership(person, acting_user=None,
                                                 starts_on=dt.date(2020, 1, 1))
        actions.do_record_dues(membership, "5", dt.date(2020, 1, 2), acting_user=None)
    assert person is not None
    return person


@pytest.mark.parametrize("path", ["/persons", "/voting", "/organizations"])
def test_list_query_count_does_not_grow(api, path, django_assert_max_num_queries):
    _grow(0, 2)
    api.get(path)  # the first call may record the token's last use
    with django_assert_max_num_queries(4):
        api.get(path)
    _grow(2, 25)
    with django_assert_max_num_queries(4):
        response = api.get(path)
    assert response.status_code == 200


def test_memberships_list_query_count_does_not_grow(api, django_assert_max_num_queries):
    person = make_person(900)
    for year in range(2000, 2003):
        membership = actions.do_start_membership(person, acting_user=None,
                                                 starts_on=dt.date(year, 1, 1),
                                                 ends_on=dt.date(year, 12, 31))
        actions.do_record_dues(membership, "5", dt.date(year, 1, 2), acting_user=None)
    api.get(f"/persons/{person.pk}/memberships")
    with django_assert_max_num_queries(4):
        few = api.get(f"/persons/{person.pk}/memberships").json()
    for year in range(2003, 2020):
        membership = actions.do_start_membership(person, acting_user=None,
                                                 starts_on=dt.date(year, 1, 1),
                                                 ends_on=dt.date(year, 12, 31))
        for day in (2, 3):
            actions.do_record_dues(membership, "5", dt.date(year, 1, day), acting_user=None)
    with django_assert_max_num_queries(4):
        many = api.get(f"/persons/{person.pk}/memberships").json()
    assert len(many) > len(few)


@pytest.mark.parametrize("value", ["0", "1700000000", "2026-13-01", "demain"])
def test_dates_are_written_iso_not_as_numbers(api, value) -> None:
    response = api.get("/counts", on=value)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
