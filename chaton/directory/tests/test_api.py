"""``/api/v1``: authentication, accounts, SSH keys, groups, the directory plan, errors, schema."""

import datetime as dt
import json

import pytest
from django.utils import translation

from chaton.adapters.ldap import normalize_dn
from chaton.core import clock
from chaton.core.actions import do_create_api_token, do_revoke_api_token
from chaton.core.models import ApiToken, AuditLog
from chaton.directory import actions
from chaton.directory.models import Account, AccountState, GroupMembership

BASE = "dc=chaton,dc=test"
API = "/api/v1"
#: A well-formed public key (its 32 bytes are 0..31: no real key).
ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f "
           "wren@laptop")
pytestmark = pytest.mark.django_db(transaction=True)


class Api:
    """The Django test client with a bearer token and JSON bodies."""

    def __init__(self, client, key: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, body=None, *, raw: str | bytes | None = None, **params):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        handler = getattr(self.client, method)
        if method == "get":
            return handler(API + path, params, headers=self.headers)
        return handler(API + path, data, content_type="application/json", headers=self.headers)

    def get(self, path, **params):
        return self.call("get", path, **params)

    def post(self, path, body=None, **kwargs):
        return self.call("post", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.call("patch", path, body, **kwargs)

    def delete(self, path):
        return self.call("delete", path)


def make_account(uid: str, *, is_admin: bool = False, password: str | None = None) -> Account:
    return actions.do_create_account(uid, acting_user=None, display_name=uid.title(),
                                     email=f"{uid}@example.org", is_admin=is_admin,
                                     password=password)


@pytest.fixture
def admin(directory):
    return make_account("wren", is_admin=True, password="a long pass phrase 7")


@pytest.fixture
def api(client, admin):
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def member(directory):
    return make_account("moss", password="moss pass phrase 42")


@pytest.fixture
def member_api(client, member):
    _token, key = do_create_api_token(member, "laptop", acting_user=member)
    return Api(client, key)


def assert_error(response, status: int, code: str, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["field"] == field, body
    return body


# --- authentication -------------------------------------------------------------------------


def test_no_token_bad_token_and_wrong_scheme_are_401(client, api):
    for headers in ({}, {"Authorization": "Bearer chaton_nope"}, {"Authorization": "Bearer "},
                    {"Authorization": "Basic d3JlbjpwYXNz"}):
        response = client.get(f"{API}/accounts", headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_token_is_stored_hashed_and_its_use_recorded(client, admin):
    token, key = do_create_api_token(admin, "ci", acting_user=admin)
    assert key.startswith("chaton_") and key not in token.key_hash
    assert token.last_used_at is None
    assert Api(client, key).get("/me").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    audit_text = json.dumps(list(AuditLog.objects.values("before", "after", "target_label")))
    assert key not in audit_text
    assert AuditLog.objects.filter(action="api_token.create").exists()


def test_revoked_token_and_disabled_account_get_401(client, admin, member):
    token, key = do_create_api_token(member, "phone", acting_user=admin)
    assert Api(client, key).get("/me").status_code == 200
    do_revoke_api_token(token, acting_user=admin)
    assert_error(Api(client, key).get("/me"), 401, "unauthorized")
    assert AuditLog.objects.filter(action="api_token.revoke").exists()

    _token, key = do_create_api_token(member, "phone", acting_user=admin)
    actions.do_set_state(member, AccountState.DISABLED, acting_user=admin)
    assert_error(Api(client, key).get("/me"), 401, "unauthorized")


def test_expired_account_gets_401(client, admin, member):
    _token, key = do_create_api_token(member, "phone", acting_user=admin)
    actions.do_update_account(member, acting_user=admin,
                              expires_at=clock.now() + dt.timedelta(days=1))
    clock.travel(dt.timedelta(days=2))
    try:
        assert_error(Api(client, key).get("/me"), 401, "unauthorized")
    finally:
        clock.travel(dt.timedelta(0))


def test_token_for_disabled_account_is_refused(admin, member):
    actions.do_set_state(member, AccountState.DISABLED, acting_user=admin)
    with translation.override("en"), pytest.raises(Exception, match="disabled"):
        do_create_api_token(member, "x", acting_user=admin)


def test_non_admin_may_use_me_only(member_api):
    for method, path in [("get", "/accounts"), ("get", "/accounts/moss"), ("get", "/groups"),
                         ("post", "/groups"), ("get", "/members/persons"),
                         ("get", "/members/counts"), ("get", "/directory/plan"),
                         ("post", "/directory/sync"), ("get", "/tokens"),
                         ("post", "/accounts/moss/password"), ("get", "/accounts/moss/ssh-keys")]:
        response = member_api.call(method, path, {} if method == "post" else None)
        assert_error(response, 403, "forbidden")
    assert member_api.get("/me").json()["uid"] == "moss"
    assert member_api.get("/me/tokens").json()["count"] == 1


def test_me_patch_changes_own_details_and_refuses_privileges(member_api, member):
    response = member_api.patch("/me", {"display_name": "Moss Green"})
    assert response.status_code == 200, response.content
    assert response.json()["display_name"] == "Moss Green"
    body = assert_error(member_api.patch("/me", {"is_admin": True}), 400, "invalid", "is_admin")
    assert body["errors"][0]["type"] == "extra_forbidden"
    member.refresh_from_db()
    assert not member.is_admin


def test_me_password_needs_the_current_one(member_api, member):
    assert_error(member_api.post("/me/password", {"current_password": "wrong",
                                                  "password": "another pass phrase 9"}),
                 403, "forbidden", "current_password")
    assert_error(member_api.post("/me/password", {"current_password": "moss pass phrase 42",
                                                  "password": "short"}),
                 400, "invalid", "password")
    response = member_api.post("/me/password", {"current_password": "moss pass phrase 42",
                                                "password": "another pass phrase 9"})
    assert response.status_code == 204
    member.refresh_from_db()
    assert member.check_password("another pass phrase 9")


def test_me_ssh_keys(member_api, member, api):
    response = member_api.post("/me/ssh-keys", {"key": ED25519})
    assert response.status_code == 201, response.content
    key_id = response.json()["id"]
    assert response.json()["fingerprint"].startswith("SHA256:")
    assert_error(member_api.post("/me/ssh-keys", {"key": ED25519}), 409, "conflict", "key")
    assert_error(member_api.post("/me/ssh-keys", {"key": "ssh-ed25519 not*base64"}),
                 400, "invalid", "key")
    assert [key["id"] for key in member_api.get("/me/ssh-keys").json()] == [key_id]
    # Someone else's key is not found through /me.
    other = api.post("/accounts/wren/ssh-keys", {"key": ED25519}).json()["id"]
    assert_error(member_api.delete(f"/me/ssh-keys/{other}"), 404, "not_found")
    assert member_api.delete(f"/me/ssh-keys/{key_id}").status_code == 204
    assert member_api.get("/me/ssh-keys").json() == []


def test_tokens_endpoints(api, admin, member):
    from chaton.testing.second_factor import enroll

    enroll(admin)  # creating tokens takes an administrator with a second factor
    response = api.post("/tokens", {"account": "moss", "name": "backup script"})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["key"].startswith("chaton_") and created["account"] == "moss"
    listed = api.get("/tokens", account="moss").json()
    assert listed["count"] == 1 and "key" not in listed["items"][0]
    assert_error(api.post("/tokens", {"account": "nobody-here", "name": "x"}), 404, "not_found")
    assert_error(api.post("/tokens", {"account": "moss", "name": "a\u0000b"}), 400, "invalid",
                 "name")
    assert api.delete(f"/tokens/{created['id']}").status_code == 204
    assert not ApiToken.objects.filter(pk=created["id"]).exists()
    assert_error(api.delete(f"/tokens/{created['id']}"), 404, "not_found")


# --- accounts -------------------------------------------------------------------------------


def test_create_get_and_list_accounts(api, directory):
    response = api.post("/accounts", {"uid": "fern", "display_name": "Fern Ash",
                                      "email": "fern@example.org",
                                      "password": "fern pass phrase 11"})
    assert response.status_code == 201, response.content
    assert response.json()["uid"] == "fern" and response.json()["in_directory"] is True
    assert normalize_dn(f"uid=fern,ou=people,{BASE}") in directory.entries
    assert api.get("/accounts/fern").json()["email"] == "fern@example.org"
    listed = api.get("/accounts", q="ash").json()
    assert listed["count"] == 1 and listed["items"][0]["uid"] == "fern"
    assert api.get("/accounts", limit=1).json()["count"] == 2
    assert len(api.get("/accounts", limit=1).json()["items"]) == 1


def test_no_response_carries_a_password_hash(api, member_api):
    api.post("/accounts", {"uid": "fern", "display_name": "Fern", "email": "fern@example.org",
                           "password": "fern pass phrase 11"})
    for response in (api.get("/accounts"), api.get("/accounts/fern"), api.get("/me"),
                     member_api.get("/me"), api.patch("/accounts/fern", {"display_name": "F"})):
        assert response.status_code == 200
        text = response.content.decode()
        assert "argon2" not in text and "password" not in text


def test_create_account_errors(api, member):
    base = {"display_name": "X", "email": "x@example.org"}
    assert_error(api.post("/accounts", {**base, "uid": "moss", "email": "other@example.org"}),
                 409, "conflict", "uid")
    assert_error(api.post("/accounts", {**base, "uid": "fern", "email": "moss@example.org"}),
                 409, "conflict", "email")
    for uid in ["a*)(uid=*", "x,ou=people", "fe\u0000rn", "Fern", "r", "root", "a\\2a", "é"]:
        assert_error(api.post("/accounts", {**base, "uid": uid}), 400, "invalid", "uid")
    assert_error(api.post("/accounts", {**base, "uid": "fern", "display_name": "a\u0000b"}),
                 400, "invalid", "display_name")
    assert_error(api.post("/accounts", {**base, "uid": "fern", "email": "not an email"}),
                 400, "invalid", "email")
    assert_error(api.post("/accounts", {**base, "uid": "fern", "person_id": 999}),
                 404, "not_found", "person_id")
    assert_error(api.post("/accounts", {**base, "uid": "fern", "person_id": 10**30}),
                 404, "not_found")
    assert not Account.objects.filter(uid="fern").exists()


def test_malformed_requests_are_400_never_500(api):
    assert_error(api.post("/accounts", raw="{not json"), 400, "invalid")
    assert_error(api.post("/accounts", raw="[1, 2]"), 400, "invalid")
    assert_error(api.post("/accounts", raw="null"), 400, "invalid")
    body = assert_error(api.post("/accounts", {"uid": 12, "display_name": ["x"],
                                               "email": None}), 400, "invalid")
    assert {error["field"] for error in body["errors"]} >= {"uid", "display_name", "email"}
    assert all(error["location"] == "body" for error in body["errors"])
    assert_error(api.post("/accounts", {"uid": "fern"}), 400, "invalid")
    assert_error(api.post("/accounts", {"uid": "fern", "display_name": "F",
                                        "email": "f@example.org", "expires_at": "soon"}),
                 400, "invalid", "expires_at")
    assert_error(api.patch("/accounts/wren", {"is_admin": "maybe"}), 400, "invalid",
                 "is_admin")
    assert_error(api.get("/accounts", limit=0), 400, "invalid", "limit")
    assert_error(api.get("/accounts", limit="many"), 400, "invalid", "limit")
    assert_error(api.get("/accounts", offset=10**40), 400, "invalid", "offset")
    assert_error(api.get("/accounts", q="a\u0000b"), 400, "invalid", "q")
    assert_error(api.get("/accounts", state="sleeping"), 400, "invalid", "state")
    assert_error(api.delete("/accounts/wren/ssh-keys/abc"), 400, "invalid", "key_id")
    assert_error(api.delete(f"/accounts/wren/ssh-keys/{10**30}"), 404, "not_found")
    assert_error(api.get("/no/such/endpoint"), 404, "not_found")
    # A PATCH needs a body; an empty object changes nothing.
    assert_error(api.patch("/accounts/wren", raw=""), 400, "invalid")
    assert api.patch("/accounts/wren", {}).status_code == 200
    # A lone surrogate escape, and bytes that are not UTF-8 at all.
    assert_error(api.post("/groups", raw='{"name": "\\ud800x"}'), 400, "invalid")
    assert_error(api.patch("/accounts/wren", raw='{"display_name": "\\udfff"}'), 400,
                 "invalid")
    assert_error(api.post("/accounts", raw="[" * 100000 + "]" * 100000), 400, "invalid")
    assert_error(api.post("/groups", raw=b'{"name": "\xff"}'), 400, "invalid")
    response = api.call("put", "/accounts")
    assert response.status_code == 405


@pytest.mark.parametrize("uid", ["nobody-here", "a*", "%2A%29%28uid%3D%2A", "%00", "x%00y",
                                 "%5C", "%28cn%3D%29", "%E2%98%83"])
def test_unknown_or_impossible_uid_is_404(api, uid):
    assert_error(api.get(f"/accounts/{uid}"), 404, "not_found")
    assert_error(api.patch(f"/accounts/{uid}", {"display_name": "X"}), 404, "not_found")
    assert_error(api.post("/groups/tech/members", {"uid": "x\u0000"}), 404, "not_found")


def test_search_with_ldap_characters_is_harmless(api):
    for text in ["*", ")(uid=*", "\\", "%", "_"]:
        response = api.get("/accounts", q=text)
        assert response.status_code == 200
        assert response.json()["count"] == 0


def test_patch_account_and_expiry(api, member):
    moment = "2031-05-01T12:00:00"
    response = api.patch("/accounts/moss", {"expires_at": moment, "is_admin": True})
    assert response.status_code == 200, response.content
    member.refresh_from_db()
    assert member.is_admin and member.expires_at is not None
    # A field left out stays; an explicit null removes the expiry.
    api.patch("/accounts/moss", {"display_name": "Moss"})
    member.refresh_from_db()
    assert member.expires_at is not None
    api.patch("/accounts/moss", {"expires_at": None})
    member.refresh_from_db()
    assert member.expires_at is None
    assert_error(api.patch("/accounts/moss", {"email": "wren@example.org"}), 409, "conflict",
                 "email")


def test_disable_enable_and_set_password(api, member, directory):
    dn = normalize_dn(f"uid=moss,ou=people,{BASE}")
    assert dn in directory.entries
    response = api.post("/accounts/moss/disable")
    assert response.status_code == 200 and response.json()["state"] == "disabled"
    assert dn not in directory.entries
    assert api.post("/accounts/moss/enable").json()["state"] == "active"
    assert dn in directory.entries
    assert_error(api.post("/accounts/wren/disable"), 403, "forbidden")
    assert api.post("/accounts/moss/password",
                    {"password": "brand new phrase 5"}).status_code == 204
    member.refresh_from_db()
    assert member.check_password("brand new phrase 5")
    assert_error(api.post("/accounts/moss/password", {"password": "123"}), 400, "invalid",
                 "password")
    assert_error(api.post("/accounts/moss/password", {}), 400, "invalid", "password")


def test_admin_ssh_keys(api, member):
    response = api.post("/accounts/moss/ssh-keys", {"key": ED25519})
    assert response.status_code == 201
    key_id = response.json()["id"]
    assert [key["id"] for key in api.get("/accounts/moss/ssh-keys").json()] == [key_id]
    assert_error(api.delete(f"/accounts/wren/ssh-keys/{key_id}"), 404, "not_found")
    assert api.delete(f"/accounts/moss/ssh-keys/{key_id}").status_code == 204
    assert_error(api.delete(f"/accounts/moss/ssh-keys/{key_id}"), 404, "not_found")


# --- groups ---------------------------------------------------------------------------------


def test_group_lifecycle(api, member, directory):
    response = api.post("/groups", {"name": "tech", "description": "Tech team"})
    assert response.status_code == 201, response.content
    assert response.json() | {"created_at": None} == {
        "name": "tech", "description": "Tech team", "kind": "team", "member_count": 0,
        "valid_count": 0, "created_at": None}
    assert_error(api.post("/groups", {"name": "tech"}), 409, "conflict", "name")
    assert_error(api.post("/groups", {"name": "cn=x,*"}), 400, "invalid", "name")
    assert_error(api.post("/groups", {"name": "ops", "kind": "cabal"}), 400, "invalid", "kind")
    later = (clock.now() + dt.timedelta(days=30)).isoformat()
    response = api.post("/groups/tech/members", {"uid": "moss", "expires_at": later})
    assert response.status_code == 201, response.content
    assert response.json()["uid"] == "moss"
    group_dn = normalize_dn(f"cn=tech,ou=groups,{BASE}")
    assert directory.entries[group_dn]["member"] == [f"uid=moss,ou=people,{BASE}".encode()]
    assert_error(api.post("/groups/tech/members", {"uid": "moss",
                                                   "expires_at": "2001-01-01T00:00:00Z"}),
                 400, "invalid", "expires_at")
    members = api.get("/groups/tech/members").json()
    assert members["count"] == 1 and members["items"][0]["expires_at"] is not None
    group = api.get("/groups/tech").json()
    assert group["member_count"] == 1 and group["valid_count"] == 1
    assert api.patch("/groups/tech", {"description": "Ops"}).json()["description"] == "Ops"
    assert api.get("/groups", q="tec").json()["count"] == 1
    assert api.delete("/groups/tech/members/moss").status_code == 204
    assert_error(api.delete("/groups/tech/members/moss"), 404, "not_found")
    assert not GroupMembership.objects.exists()
    assert api.delete("/groups/tech").status_code == 204
    assert group_dn not in directory.entries
    assert_error(api.get("/groups/tech"), 404, "not_found")
    assert_error(api.get("/groups/%00"), 404, "not_found")
    assert_error(api.get("/groups/tech%2A"), 404, "not_found")


# --- directory ------------------------------------------------------------------------------


def test_directory_plan_and_sync(api, member, directory):
    directory.entries.clear()
    directory.entries[normalize_dn(BASE)] = {}
    plan = api.get("/directory/plan").json()
    assert not plan["is_noop"]
    assert f"+ uid=moss,ou=people,{BASE}" in plan["lines"]
    assert not directory.entries.keys() - {normalize_dn(BASE)}  # a plan changes nothing
    dry = api.post("/directory/sync", {"dry_run": True}).json()
    assert dry["applied"] == 0 and dry["lines"] == plan["lines"]
    result = api.post("/directory/sync").json()
    assert result["applied"] == len(plan["lines"]) and result["failures"] == []
    assert api.get("/directory/plan").json()["is_noop"] is True


def test_directory_down_is_503(api, directory):
    directory.available = False
    assert_error(api.get("/directory/plan"), 503, "directory_unavailable")
    assert_error(api.post("/directory/sync", {}), 503, "directory_unavailable")


# --- schema and query counts ----------------------------------------------------------------


def test_openapi_schema_builds_and_documents_errors(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Chaton API" and schema["info"]["version"] == "1"
    components = schema["components"]["schemas"]
    assert set(components["ErrorOut"]["properties"]) == {"code", "message", "field"}
    assert "errors" in components["ValidationErrorOut"]["properties"]
    for path in ["/api/v1/accounts", "/api/v1/groups/{name}/members", "/api/v1/me",
                 "/api/v1/members/persons", "/api/v1/directory/plan"]:
        assert path in schema["paths"], path
    get_account = schema["paths"]["/api/v1/accounts/{uid}"]["get"]
    assert get_account["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"}
    assert {"AdminToken", "AccountToken"} <= set(schema["components"]["securitySchemes"])
    assert get_account["security"] == [{"AdminToken": []}]
    assert schema["paths"]["/api/v1/me"]["get"]["security"] == [{"AccountToken": []}]
    assert "password" not in json.dumps(components.get("AccountOut", {}))


@pytest.mark.parametrize("path", ["/accounts", "/groups", "/groups/tech/members", "/tokens"])
def test_list_query_count_does_not_grow(api, path, django_assert_max_num_queries):
    group = actions.do_create_group("tech", acting_user=None)

    def grow(count: int, start: int) -> None:
        for index in range(start, start + count):
            account = make_account(f"user{index}")
            actions.do_add_to_group(group, account, acting_user=None)
            actions.do_create_group(f"team{index}", acting_user=None)
            do_create_api_token(account, "t", acting_user=None)

    grow(2, 0)
    api.get(path)  # the first call may record last_used_at
    with django_assert_max_num_queries(4):
        few = api.get(path)
    grow(20, 2)
    with django_assert_max_num_queries(4):
        many = api.get(path)
    assert many.json()["count"] > few.json()["count"]


def test_sync_options_are_true_booleans_not_numbers(api) -> None:
    response = api.post("/directory/sync", {"delete_foreign": 1})
    assert response.status_code == 400


def test_patch_changes_the_owner_and_the_directory_follows(api, directory) -> None:
    from chaton.adapters.ldap import normalize_dn
    from chaton.members import actions as member_actions

    partner = member_actions.do_create_organization("Les Amis du Test", "amis@example.org",
                                                    acting_user=None)
    created = api.post("/accounts", {"uid": "asso", "display_name": "Asso",
                                     "email": "asso@example.org"})
    assert created.status_code in (200, 201), created.content
    changed = api.patch("/accounts/asso", {"organization_id": partner.pk})
    assert changed.status_code == 200, changed.content
    assert changed.json()["organization_id"] == partner.pk
    entry = directory.entries[normalize_dn("uid=asso,ou=people,dc=chaton,dc=test")]
    assert entry["o"] == [b"Les Amis du Test"]
    both = api.patch("/accounts/asso", {"organization_id": partner.pk, "person_id": 1})
    assert both.status_code == 400
    cleared = api.patch("/accounts/asso", {"organization_id": None})
    assert cleared.json()["organization_id"] is None
    assert "o" not in directory.entries[normalize_dn("uid=asso,ou=people,dc=chaton,dc=test")]
