"""``/api/v1/governance``: the life of a proposal and of a contested ordinary action, every
refusal as a coded JSON error, the registry, the policy, the inventory, the schema and the
list's query count.

The helpers at the top are shared with ``test_gate.py`` and the CLI tests.
"""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, GroupMembership
from chaton.governance import actions
from chaton.governance.models import Decision, Operation, Vote
from chaton.governance.policy import current
from chaton.members import actions as member_actions
from chaton.testing.voters import recorded_at_start

API = "/api/v1"
GOVERNANCE = "/governance"
pytestmark = pytest.mark.django_db(transaction=True)


# --- shared helpers -------------------------------------------------------------------------


class Api:
    """The Django test client with a bearer token and JSON bodies."""

    def __init__(self, client, key: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, body=None, *, raw: str | None = None, **params):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        handler = getattr(self.client, method)
        if method == "get":
            return handler(API + path, params, headers=self.headers)
        return handler(API + path, data, content_type="application/json", headers=self.headers)

    def get(self, path, **params):
        return self.call("get", path, **params)

    def post(self, path, body=None, **kwargs):
        return self.call("post", path, body, **kwargs)

    def delete(self, path):
        return self.call("delete", path)


def api_for(client, account: Account) -> Api:
    """Return an API client acting with a new token that ``account`` made for itself (it
    may vote)."""
    _token, key = do_create_api_token(account, "tests", acting_user=account, owner_proved=True)
    return Api(client, key)


def assert_error(response, status: int, code: str, field=None) -> dict:
    """Assert a coded JSON error and return its body."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["field"] == field, body
    return body


def make_account(uid: str, *, is_admin: bool = False, person=None) -> Account:
    return directory_actions.do_create_account(
        uid, acting_user=None, display_name=uid.title(), email=f"{uid}@example.org",
        is_admin=is_admin, person=person)


def make_member(uid: str, *, joined_days_ago: int = 60, is_admin: bool = False) -> Account:
    """Return the account of a new person whose membership began ``joined_days_ago`` days ago
    (a voter after the policy's delay, 10 days by default)."""
    person = member_actions.do_create_person(f"{uid.title()} Quillon", f"{uid}@example.org",
                                             acting_user=None)
    recorded_at_start(member_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=joined_days_ago)))
    return make_account(uid, is_admin=is_admin, person=person)


def set_classes(classes: dict[str, str]) -> None:
    """Give operation types a class, as a policy.change decision would (test set-up)."""
    policy = current()
    policy.classes = classes
    policy.save()


GRANT_PASSWORDS = {"type": "group.grant",
                   "params": {"group": "passwords", "account": "kim", "expires_on": "2031-06-30"}}
GRANT_TECH = {"type": "group.grant", "params": {"group": "tech", "account": "kim"}}


@pytest.fixture
def collective(directory):
    """An administrator (wren, no person), three voters, a newcomer, an account of nobody
    (kim), a group that needs a decision (passwords) and one that does not (tech)."""
    people = {"wren": make_account("wren", is_admin=True), "kim": make_account("kim")}
    for uid in ("aubin", "brune", "cyan"):
        people[uid] = make_member(uid)
    people["dune"] = make_member("dune", joined_days_ago=2)
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    directory_actions.do_create_group("tech", acting_user=None)
    return people


@pytest.fixture
def apis(client, collective):
    return {uid: api_for(client, account) for uid, account in collective.items()}


@pytest.fixture(autouse=True)
def clock_back():
    yield
    clock.travel(dt.timedelta(0))


def propose(api: Api, *specs, title: str = "Kim reads the technical passwords") -> dict:
    response = api.post(f"{GOVERNANCE}/decisions", {"title": title,
                                                     "operations": list(specs or
                                                                        [GRANT_PASSWORDS])})
    assert response.status_code == 201, response.content
    return response.json()


# --- the life of a proposal -----------------------------------------------------------------


def test_a_proposal_from_opening_to_execution(apis, collective, directory):
    opened = apis["aubin"].post(f"{GOVERNANCE}/decisions", {
        "title": "Kim reads the technical passwords", "description": "Kim joins the tech team.",
        "operations": [GRANT_PASSWORDS], "mode": "propose"})
    assert opened.status_code == 201, opened.content
    decision = opened.json()
    assert (decision["kind"], decision["status"]) == ("extraordinary", "open")
    assert decision["proposed_by_uid"] == "aubin"
    assert decision["description"] == "Kim joins the tech team."
    [operation] = decision["operations"]
    assert operation["status"] == "pending" and "kim" in operation["summary"]
    [ballot] = decision["ballots"]
    assert (ballot["kind"], ballot["is_open"], ballot["electorate"]) == ("proposal", True, 3)
    assert (ballot["votes_for"], ballot["votes_against"], ballot["my_vote"]) == (0, 0, None)
    path = f"{GOVERNANCE}/decisions/{decision['id']}"

    # A vote changed before the close counts once, with its last choice.
    assert apis["aubin"].post(f"{path}/vote", {"choice": "against"}).status_code == 200
    changed = apis["aubin"].post(f"{path}/vote", {"choice": "for"}).json()["ballots"][0]
    assert (changed["votes_for"], changed["votes_against"], changed["my_vote"]) == (1, 0, "for")
    # The same vote again is accepted and still counts once.
    again = apis["aubin"].post(f"{path}/vote", {"choice": "for"})
    assert again.status_code == 200 and again.json()["ballots"][0]["votes_for"] == 1
    assert Vote.objects.count() == 1
    seen = apis["brune"].get(path).json()["ballots"][0]
    assert seen["my_vote"] is None
    assert [(vote["person"], vote["choice"]) for vote in seen["votes"]] == [
        ("Aubin Quillon", "for")]

    # 2 of 3: a majority of the electorate, so the proposal is adopted at once.
    adopted = apis["brune"].post(f"{path}/vote", {"choice": "for"}).json()
    assert adopted["status"] == "adopted"
    assert adopted["ballots"][0]["outcome"] == "adopted"
    assert adopted["ballots"][0]["is_open"] is False
    assert not GroupMembership.objects.exists()  # the worker executes it

    assert_error(apis["cyan"].post(f"{path}/vote", {"choice": "against"}), 409,
                 "voting_closed")
    actions.execute_decisions()
    done = apis["cyan"].get(path).json()
    assert done["operations"][0]["status"] == "done"
    assert done["executed_at"] is not None
    membership = GroupMembership.objects.get(group__name="passwords", account__uid="kim")
    assert membership.expires_at is not None
    assert "uid=kim,ou=people,dc=chaton,dc=test" in str(
        directory.entries.get("cn=passwords,ou=groups,dc=chaton,dc=test"))
    # The audit log links the operation, its decision and the votes.
    applied = AuditLog.objects.get(action="operation.apply")
    assert applied.actor_label == f"decision #{decision['id']}"
    assert applied.after["decision"] == decision["id"]
    assert applied.after["votes"]["proposal"] == {"for": 2, "against": 0, "electorate": 3,
                                                  "outcome": "adopted"}


def test_an_ordinary_action_cancelled_by_a_counter_vote_is_reverted(apis, collective):
    acted = apis["wren"].post(f"{GOVERNANCE}/decisions", {
        "title": "Kim joins the tech team", "operations": [GRANT_TECH], "mode": "act"})
    assert acted.status_code == 201, acted.content
    decision = acted.json()
    assert (decision["kind"], decision["status"]) == ("ordinary", "adopted")
    assert decision["operations"][0]["status"] == "done" and decision["ballots"] == []
    assert decision["counter_vote_until"] is not None
    assert GroupMembership.objects.filter(group__name="tech", account__uid="kim").exists()
    path = f"{GOVERNANCE}/decisions/{decision['id']}"

    contested = apis["brune"].post(f"{path}/counter-vote")
    assert contested.status_code == 200, contested.content
    assert contested.json()["status"] == "contested"
    [ballot] = contested.json()["ballots"]
    assert (ballot["kind"], ballot["electorate"], ballot["is_open"]) == ("counter", 3, True)
    assert_error(apis["cyan"].post(f"{path}/counter-vote"), 409, "voting_closed")

    apis["aubin"].post(f"{path}/vote", {"choice": "against"})
    cancelled = apis["brune"].post(f"{path}/vote", {"choice": "against"}).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["ballots"][0]["outcome"] == "cancelled"
    actions.execute_decisions()
    assert not GroupMembership.objects.filter(group__name="tech", account__uid="kim").exists()
    assert apis["aubin"].get(path).json()["operations"][0]["status"] == "reverted"


def test_a_counter_vote_after_its_window_is_refused(apis, collective):
    acted = apis["wren"].post(f"{GOVERNANCE}/decisions", {
        "title": "Kim joins the tech team", "operations": [GRANT_TECH], "mode": "act"}).json()
    clock.travel(dt.timedelta(days=current().counter_vote_window_days, hours=1))
    assert_error(apis["aubin"].post(f"{GOVERNANCE}/decisions/{acted['id']}/counter-vote"), 409,
                 "voting_closed")


def test_withdraw_by_the_author_or_an_administrator_only(apis, collective):
    decision = propose(apis["aubin"])
    path = f"{GOVERNANCE}/decisions/{decision['id']}"
    assert_error(apis["brune"].post(f"{path}/withdraw"), 403, "forbidden")
    withdrawn = apis["aubin"].post(f"{path}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["operations"][0]["status"] == "skipped"
    assert_error(apis["aubin"].post(f"{path}/withdraw"), 409, "voting_closed")
    assert_error(apis["brune"].post(f"{path}/vote", {"choice": "for"}), 409, "voting_closed")


def test_a_vote_after_the_deadline_is_refused(apis, collective):
    decision = propose(apis["aubin"])
    clock.travel(dt.timedelta(days=current().proposal_days, minutes=1))
    body = assert_error(apis["brune"].post(f"{GOVERNANCE}/decisions/{decision['id']}/vote",
                                           {"choice": "for"}), 409, "voting_closed")
    assert f"#{decision['id']}" in body["message"]
    assert not Vote.objects.exists()


def test_secret_votes_show_only_ones_own(apis, collective):
    policy = current()
    policy.votes_public = False
    policy.save()
    decision = propose(apis["aubin"])
    path = f"{GOVERNANCE}/decisions/{decision['id']}"
    apis["aubin"].post(f"{path}/vote", {"choice": "for"})
    [ballot] = apis["brune"].get(path).json()["ballots"]
    assert ballot["votes"] is None and ballot["my_vote"] is None and ballot["votes_for"] == 1
    assert apis["aubin"].get(path).json()["ballots"][0]["my_vote"] == "for"


# --- refusals: coded errors, never a 500, nothing written -----------------------------------


def test_bad_proposals_are_400_and_write_nothing(apis, collective, english):
    api = apis["aubin"]
    path = f"{GOVERNANCE}/decisions"
    body = assert_error(api.post(path, {"title": "X", "operations": [
        {"type": "group.teleport", "params": {}}]}), 400, "invalid", "operations.0.type")
    assert "group.teleport" in body["message"]
    assert_error(api.post(path, {"title": "X", "operations": [
        {"type": "group.grant", "params": "passwords"}]}), 400, "invalid", "operations.0.params")
    assert_error(api.post(path, {"title": "X", "operations": [
        {"type": "group.grant", "params": {"group": 5, "account": "kim"}}]}), 400, "invalid",
        "operations.0.group")
    assert_error(api.post(path, {"title": "X", "operations": [
        {"type": "group.grant", "params": {**GRANT_PASSWORDS["params"], "admin": True}}]}),
        400, "invalid", "operations.0.admin")
    assert_error(api.post(path, {"title": "X", "operations": [
        {"type": "group.grant", "params": {"group": "passwords", "account": "kim",
                                           "expires_on": "soon"}}]}),
        400, "invalid", "operations.0.expires_on")
    assert_error(api.post(path, {"title": "X", "operations": [
        {"type": "group.grant", "params": {"group": "ghosts", "account": "kim"}}]}),
        404, "not_found", "operations.0.group")
    assert_error(api.post(path, {"title": "X", "operations": []}), 400, "invalid", "operations")
    assert_error(api.post(path, {"title": "X", "operations": [GRANT_PASSWORDS] * 21}), 400,
                 "invalid", "operations")
    assert_error(api.post(path, {"title": "X", "operations": [
        {**GRANT_PASSWORDS, "when": "now"}]}), 400, "invalid")
    assert_error(api.post(path, {"title": "X", "operations": [GRANT_PASSWORDS],
                                 "mode": "maybe"}), 400, "invalid", "mode")
    assert_error(api.post(path, {"title": "X", "operations": [GRANT_PASSWORDS],
                                 "quorum": 1}), 400, "invalid", "quorum")
    assert_error(api.post(path, {"title": "  ", "operations": [GRANT_PASSWORDS]}), 400,
                 "invalid", "title")
    assert_error(api.post(path, {"operations": [GRANT_PASSWORDS]}), 400, "invalid", "title")
    assert_error(api.post(path, raw="{not json"), 400, "invalid")
    assert_error(api.post(path, raw="[]"), 400, "invalid")
    assert not Decision.objects.exists() and not Operation.objects.exists()


def test_who_may_propose_and_act(apis, collective):
    path = f"{GOVERNANCE}/decisions"
    for uid in ("kim", "dune"):  # nobody's account; a member still in their voting delay
        assert_error(apis[uid].post(path, {"title": "X", "operations": [GRANT_PASSWORDS]}),
                     403, "forbidden")
    assert_error(apis["aubin"].post(path, {"title": "X", "operations": [GRANT_TECH],
                                           "mode": "act"}), 403, "forbidden")
    body = assert_error(apis["wren"].post(path, {"title": "X", "operations": [GRANT_PASSWORDS],
                                                 "mode": "act"}), 403, "decision_required")
    assert body["link"].startswith("/decisions/new/?operation=group.grant&group=passwords")
    assert not Decision.objects.exists() and not GroupMembership.objects.exists()
    # An administrator may propose without being a voter.
    assert propose(apis["wren"])["proposed_by_uid"] == "wren"


def test_votes_refused_with_their_reason(apis, collective, english):
    decision = propose(apis["aubin"])
    path = f"{GOVERNANCE}/decisions/{decision['id']}/vote"
    assert_error(apis["aubin"].post(path, {"choice": "maybe"}), 400, "invalid", "choice")
    assert_error(apis["aubin"].post(path, {"choice": 1}), 400, "invalid", "choice")
    assert_error(apis["aubin"].post(path, {}), 400, "invalid", "choice")
    assert_error(apis["aubin"].post(path, {"choice": "for", "twice": True}), 400, "invalid")
    body = assert_error(apis["kim"].post(path, {"choice": "for"}), 403, "not_a_voter")
    assert "no member" in body["message"]
    body = assert_error(apis["dune"].post(path, {"choice": "for"}), 403, "not_a_voter")
    assert "not a voting member" in body["message"]
    # Someone who becomes a voter after the opening is not in this ballot's electorate.
    late = make_member("erine", joined_days_ago=current().voting_delay_days)
    assert actions.is_voter_today(late)
    assert_error(api_for(apis["aubin"].client, late).post(path, {"choice": "for"}), 403,
                 "not_a_voter")
    assert not Vote.objects.exists()


@pytest.mark.parametrize("path", ["/decisions/999", "/decisions/0", "/decisions/-4",
                                  f"/decisions/{10**30}"])
def test_unknown_decisions_are_404(apis, collective, path):
    api = apis["aubin"]
    assert_error(api.get(GOVERNANCE + path), 404, "not_found")
    assert_error(api.post(GOVERNANCE + path + "/vote", {"choice": "for"}), 404, "not_found")
    assert_error(api.post(GOVERNANCE + path + "/withdraw"), 404, "not_found")
    assert_error(api.post(GOVERNANCE + path + "/counter-vote"), 404, "not_found")


def test_malformed_queries_are_400(apis, collective):
    api = apis["aubin"]
    assert_error(api.get(f"{GOVERNANCE}/decisions/abc"), 400, "invalid", "decision_id")
    assert_error(api.get(f"{GOVERNANCE}/decisions", status="pending"), 400, "invalid",
                 "status")
    assert_error(api.get(f"{GOVERNANCE}/decisions", kind="urgent"), 400, "invalid", "kind")
    assert_error(api.get(f"{GOVERNANCE}/decisions", limit=0), 400, "invalid", "limit")
    inventory = f"{GOVERNANCE}/inventory"
    assert_error(api.get(inventory, end="2031-01-01"), 400, "invalid", "start")
    assert_error(api.get(inventory, start="2031-01-01", end="yesterday"), 400, "invalid", "end")
    assert_error(api.get(inventory, start="2031-02-01", end="2031-01-01"), 400, "invalid",
                 "end")
    assert_error(api.get(inventory, start="2031-01-01", end="2031-02-01", format="pdf"), 400,
                 "invalid", "format")


def test_every_endpoint_needs_a_token(client, collective):
    anonymous = Api(client, None)
    for method, path in [("get", "/operations"), ("get", "/policy"), ("get", "/decisions"),
                         ("post", "/decisions"), ("get", "/decisions/1"),
                         ("post", "/decisions/1/vote"), ("post", "/decisions/1/withdraw"),
                         ("post", "/decisions/1/counter-vote"), ("get", "/inventory")]:
        assert_error(anonymous.call(method, GOVERNANCE + path, {} if method == "post" else None),
                     401, "unauthorized")


# --- the registry, the policy, the list, the inventory --------------------------------------


def test_the_registry_shows_each_operation_with_its_class_now(apis, collective):
    found = {entry["type"]: entry for entry in apis["kim"].get(
        f"{GOVERNANCE}/operations").json()}
    assert set(found) == {"group.grant", "group.revoke", "group.unprotect", "group.create",
                          "group.rename", "group.delete",
                          "membership.waive_voting_delay", "membership.end",
                          "account.create_for_organization", "policy.change",
                          "service.open", "service.close", "mail.publish_retired_keys"}
    assert found["group.grant"]["default_class"] is None  # it depends on the group
    assert found["group.grant"]["current_class"] is None
    assert found["group.unprotect"]["current_class"] == "extraordinary"
    # Removing from a protected group, or an access a decision granted, is extraordinary.
    assert found["group.revoke"]["default_class"] is None
    assert found["group.revoke"]["current_class"] is None
    grant = found["group.grant"]["params_schema"]
    assert set(grant["required"]) == {"group", "account"}
    assert "expires_on" in grant["properties"]

    set_classes({"group.revoke": "extraordinary", "group.grant": "extraordinary"})
    found = {entry["type"]: entry for entry in apis["kim"].get(
        f"{GOVERNANCE}/operations").json()}
    assert found["group.revoke"]["default_class"] is None
    assert found["group.revoke"]["current_class"] == "extraordinary"
    assert found["group.grant"]["current_class"] == "extraordinary"


def test_the_policy(apis, collective):
    set_classes({"membership.end": "extraordinary"})
    policy = apis["kim"].get(f"{GOVERNANCE}/policy").json()
    assert policy["voting_delay_days"] == current().voting_delay_days
    assert (policy["proposal_days"], policy["counter_vote_window_days"]) == (7, 7)
    assert policy["votes_public"] is True
    assert policy["classes"] == {"membership.end": "extraordinary"}


def test_the_list_filters_and_pages(apis, collective):
    first = propose(apis["aubin"], title="First")
    second = propose(apis["brune"], title="Second")
    apis["wren"].post(f"{GOVERNANCE}/decisions", {"title": "Third", "operations": [GRANT_TECH],
                                                  "mode": "act"})
    apis["aubin"].post(f"{GOVERNANCE}/decisions/{second['id']}/vote", {"choice": "against"})
    listed = apis["kim"].get(f"{GOVERNANCE}/decisions").json()
    assert listed["count"] == 3
    assert [item["title"] for item in listed["items"]] == ["Third", "Second", "First"]
    by_title = {item["title"]: item for item in listed["items"]}
    assert by_title["Second"]["ballots"][0]["votes_against"] == 1
    assert by_title["Third"]["ballots"] == []
    open_ones = apis["kim"].get(f"{GOVERNANCE}/decisions", status="open").json()
    assert {item["id"] for item in open_ones["items"]} == {first["id"], second["id"]}
    ordinary = apis["kim"].get(f"{GOVERNANCE}/decisions", kind="ordinary").json()
    assert [item["title"] for item in ordinary["items"]] == ["Third"]
    page = apis["kim"].get(f"{GOVERNANCE}/decisions", limit=1, offset=1).json()
    assert page["count"] == 3 and [item["title"] for item in page["items"]] == ["Second"]


def test_the_list_costs_the_same_queries_for_3_or_30_decisions(apis, collective):
    api = apis["kim"]

    def grow(count: int) -> None:
        for index in range(count):
            decision = propose(apis["aubin"], title=f"Proposal {index}")
            path = f"{GOVERNANCE}/decisions/{decision['id']}"
            apis["brune"].post(f"{path}/vote", {"choice": "against"})
            if index % 3 == 0:
                apis["wren"].post(f"{GOVERNANCE}/decisions", {
                    "title": f"Action {index}", "operations": [GRANT_TECH], "mode": "act"})
                apis["aubin"].post(f"{path}/withdraw")

    def queries_of_the_list() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(f"{GOVERNANCE}/decisions", limit=100)
        assert response.status_code == 200
        return len(captured), response.json()["count"]

    grow(2)
    api.get(f"{GOVERNANCE}/decisions")  # the first call may record the token's use
    few, few_count = queries_of_the_list()
    grow(20)
    many, many_count = queries_of_the_list()
    assert many_count > few_count
    assert many == few <= 8, (few, many)


def test_the_inventory_in_three_formats(apis, collective):
    decision = propose(apis["aubin"], title="Kim | reads the passwords")
    path = f"{GOVERNANCE}/decisions/{decision['id']}"
    apis["aubin"].post(f"{path}/vote", {"choice": "for"})
    apis["brune"].post(f"{path}/vote", {"choice": "for"})
    apis["wren"].post(f"{GOVERNANCE}/decisions", {"title": "=Kim joins tech",
                                                  "operations": [GRANT_TECH], "mode": "act"})
    today = clock.today().isoformat()
    period = {"start": today, "end": today}

    markdown = apis["kim"].get(f"{GOVERNANCE}/inventory", **period)
    assert markdown.status_code == 200, markdown.content
    assert markdown["Content-Type"].startswith("text/markdown")
    text = markdown.content.decode()
    assert f"| #{decision['id']} | Kim \\| reads the passwords | Aubin | {today} | 2/3 | 0/3 |" \
        in text
    assert text.index("Kim joins tech") < text.index("Kim \\| reads")  # ordinary first

    csv = apis["kim"].get(f"{GOVERNANCE}/inventory", format="csv", **period)
    assert csv["Content-Type"].startswith("text/csv")
    assert "'=Kim joins tech" in csv.content.decode()  # never a formula

    html = apis["kim"].get(f"{GOVERNANCE}/inventory", format="html", **period)
    assert html["Content-Type"].startswith("text/html")
    assert "<td>2/3</td>" in html.content.decode()

    empty = apis["kim"].get(f"{GOVERNANCE}/inventory", start="2001-01-01", end="2001-06-30")
    assert empty.status_code == 200 and "| #" not in empty.content.decode()


def test_openapi_schema_documents_governance(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in ["/operations", "/policy", "/decisions", "/decisions/{decision_id}",
                 "/decisions/{decision_id}/vote", "/decisions/{decision_id}/withdraw",
                 "/decisions/{decision_id}/counter-vote", "/inventory"]:
        assert f"{API}{GOVERNANCE}{path}" in paths, path
    create = paths[f"{API}{GOVERNANCE}/decisions"]["post"]
    assert create["security"] == [{"AccountToken": []}]
    refused = create["responses"]["403"]["content"]["application/json"]["schema"]
    assert refused == {"$ref": "#/components/schemas/DecisionRequiredOut"}
    assert "link" in schema["components"]["schemas"]["DecisionRequiredOut"]["properties"]
    inventory = paths[f"{API}{GOVERNANCE}/inventory"]["get"]["responses"]["200"]["content"]
    assert {"text/markdown", "text/csv", "text/html"} <= set(inventory)
