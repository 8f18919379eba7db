"""The governance operations ``service.open`` and ``service.close``: an ordinary opening runs
at once and a counter-vote removes it again; an opening for a partner organization and every
closing run only from an adopted decision; closing cannot be undone; the direct paths (the
API, the CLI) are refused with a link to a proposal, and nothing changes."""

from __future__ import annotations

import urllib.parse

import pytest
from django.utils import translation
from typer.testing import CliRunner

from chaton.adapters.docker.fake import FakeEngine
from chaton.cli.app import app
from chaton.core.errors import Conflict, InvalidInput, NotFound
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.governance import actions as governance
from chaton.governance import operations, queries
from chaton.governance.gate import DecisionRequired
from chaton.governance.models import Decision, Kind, OperationStatus, Status
from chaton.governance.policy import current
from chaton.governance.tests.test_api import api_for, assert_error, make_account, make_member
from chaton.members import actions as member_actions
from chaton.members.models import Organization
from chaton.services import actions
from chaton.services.models import DesiredState, Host, Instance
from chaton.services.tests.conftest import age_instances
from chaton.testing.jobs import finish_jobs
from chaton.testing.voters import own_session

pytestmark = pytest.mark.django_db(transaction=True)

OPEN_PAD = {"type": "service.open",
            "params": {"application": "webtest", "domain": "pad.example.org", "host": "box",
                       "settings": {"greeting": "salut"}}}
CLOSE_PAD = {"type": "service.close", "params": {"instance": "pad"}}


@pytest.fixture
def collective(directory, host: Host):
    """An administrator (wren), three voters, and a partner organization."""
    people = {"wren": make_account("wren", is_admin=True)}
    for uid in ("aubin", "brune", "cyan"):
        people[uid] = make_member(uid)
    member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                          slug="radio-ourse", acting_user=None)
    return people


def act(title, specs, **options) -> Decision:
    """Take an ordinary action, then run the jobs its operations started in the long lane
    (a deployment, a removal), as the worker would."""
    decision = governance.do_act(title, specs, **options)
    finish_jobs()
    return decision


def adopt(collective, specs, title="Services") -> int:
    """Propose the operations, have two of the three voters adopt them, run the executor;
    return the decision's id."""
    decision = governance.do_propose(title, specs, acting_user=collective["aubin"])
    for voter in ("aubin", "brune"):
        governance.do_vote(decision, "for", acting_user=collective[voter],
                           credential=own_session(collective[voter]))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    governance.execute_decisions()
    finish_jobs()  # the deployment, in the long lane
    return decision.pk


def cancel(collective, decision) -> None:
    """Open a counter-vote on an ordinary action and cancel it; run the executor."""
    governance.do_open_counter_vote(decision, acting_user=collective["aubin"])
    for voter in ("aubin", "brune"):
        governance.do_vote(decision, "against", acting_user=collective[voter],
                           credential=own_session(collective[voter]))
    decision.refresh_from_db()
    assert decision.status == Status.CANCELLED
    governance.execute_decisions()
    finish_jobs()  # the removal, in the long lane


def test_both_operations_are_registered_with_their_class() -> None:
    opening = operations.get("service.open")
    closing = operations.get("service.close")
    assert opening.default_kind(opening.Params.model_validate(
        {"application": "webtest", "domain": "a.example.org"})) == Kind.ORDINARY
    assert opening.default_kind(opening.Params.model_validate(
        {"application": "webtest", "domain": "a.example.org",
         "organization": "radio-ourse"})) == Kind.EXTRAORDINARY
    assert closing.default_kind(closing.Params.model_validate({"instance": "pad"})) \
        == Kind.EXTRAORDINARY
    assert not closing.revertible and opening.reverts_with == ("service.close",)


def test_an_ordinary_opening_runs_at_once_and_a_counter_vote_removes_it(
        collective, engine: FakeEngine) -> None:
    decision = act("A pad for the members", [OPEN_PAD],
                                 acting_user=collective["wren"])
    instance = Instance.objects.get(domain="pad.example.org")
    assert instance.settings == {"greeting": "salut", "max_size_mb": 10}
    assert instance.owner is None and len(engine.workloads) == 1
    row = decision.operations.get()
    assert (row.status, row.result) == (OperationStatus.DONE, {"instance": "pad"})
    cancel(collective, decision)
    row.refresh_from_db()
    assert row.status == OperationStatus.REVERTED, row.message
    # Removed by the revert; what people put in it is kept on the host.
    assert not Instance.objects.exists() and not engine.workloads
    assert engine.volumes == {"chaton-pad-data": "pad"}


def test_an_opening_for_a_partner_organization_runs_only_from_a_decision(
        collective, engine: FakeEngine) -> None:
    spec = {"type": "service.open", "params": {**OPEN_PAD["params"],
                                               "organization": "radio-ourse"}}
    with pytest.raises(DecisionRequired):
        act("A pad for Radio Ourse", [spec], acting_user=collective["wren"])
    wren = collective["wren"]
    with pytest.raises(DecisionRequired) as refused:
        actions.do_create_instance("webtest", "pad.example.org", Host.objects.get(name="box"),
                                   acting_user=wren,
                                   owner=Organization.objects.get())
    assert "operation=service.open" in refused.value.params["link"]
    assert not Instance.objects.exists() and not engine.workloads
    adopt(collective, [spec])
    instance = Instance.objects.get(domain="pad.example.org")
    assert instance.organization is not None and instance.organization.slug == "radio-ourse"
    assert len(engine.workloads) == 1


def test_closing_runs_only_from_a_decision(collective, engine: FakeEngine) -> None:
    act("A pad", [OPEN_PAD], acting_user=collective["wren"])
    age_instances()
    with pytest.raises(DecisionRequired):
        act("Close the pad", [CLOSE_PAD], acting_user=collective["wren"])
    with pytest.raises(DecisionRequired):
        actions.do_remove_instance(Instance.objects.get(), confirm="pad",
                                   acting_user=collective["wren"])
    assert Instance.objects.get().state == DesiredState.RUNNING
    decision_id = adopt(collective, [{"type": "service.close",
                                      "params": {"instance": "pad", "delete_data": True}}])
    assert not Instance.objects.exists() and not engine.workloads and not engine.volumes
    row = Decision.objects.get(pk=decision_id).operations.get()
    assert row.status == OperationStatus.DONE
    assert row.result == {"instance": "pad", "application": "webtest",
                          "domain": "pad.example.org", "host": "box", "data_kept": False}


def test_a_closing_cannot_be_undone_and_says_why(collective, engine: FakeEngine) -> None:
    act("A pad", [OPEN_PAD], acting_user=collective["wren"])
    policy = current()
    policy.classes = {"service.close": "ordinary"}
    policy.save()
    decision = act("Close the pad", [CLOSE_PAD], acting_user=collective["wren"])
    assert not Instance.objects.exists()
    cancel(collective, decision)
    row = decision.operations.get()
    assert row.status == OperationStatus.NOT_REVERTED
    assert "cannot be opened again automatically" in row.message
    assert "kept on the host box" in row.message
    assert engine.volumes == {"chaton-pad-data": "pad"}


def test_bad_operations_are_refused_when_proposed(collective) -> None:
    wren = collective["wren"]
    act("A pad", [OPEN_PAD], acting_user=wren)
    cases = [
        ({**OPEN_PAD["params"]}, Conflict, "domain"),
        ({**OPEN_PAD["params"], "domain": "team.example.org", "application": "nothing"},
         InvalidInput, "application"),
        ({**OPEN_PAD["params"], "domain": "team.example.org", "host": "nowhere"},
         NotFound, "host"),
        ({**OPEN_PAD["params"], "domain": "team.example.org",
          "settings": {"max_size_mb": "many"}}, InvalidInput, "settings.max_size_mb"),
        ({**OPEN_PAD["params"], "domain": "team.example.org",
          "settings": {"max_size_mb": 1000}}, InvalidInput, "settings.max_size_mb"),
        ({**OPEN_PAD["params"], "domain": "team.example.org", "login_group": "nobody"},
         NotFound, "group"),
    ]
    for params, error, field in cases:
        with pytest.raises(error) as refused:
            governance.do_propose("Another", [{"type": "service.open", "params": params}],
                                  acting_user=wren)
        # The governance names the operation's field within the proposal.
        assert refused.value.field == f"operations.0.{field}", (params, refused.value)
    with pytest.raises(NotFound):
        governance.do_propose("Close", [{"type": "service.close",
                                         "params": {"instance": "nothing"}}], acting_user=wren)


def test_settings_typed_as_text_as_a_form_or_a_proposal_link_carries_them(
        collective, engine: FakeEngine) -> None:
    """The gate's link carries the settings as JSON; the proposal form and the CLI
    send "name=value" lines: both become the typed settings."""
    with pytest.raises(DecisionRequired) as refused:
        actions.do_create_instance(
            "webtest", "radio.example.org", Host.objects.get(name="box"), acting_user=None,
            owner=Organization.objects.get(),
            settings={"greeting": "hé", "max_size_mb": 12})
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
        refused.value.params["link"]).query))
    params = {key: value for key, value in query.items() if key != "operation" and value
              and value != "None"}
    adopt(collective, [{"type": "service.open", "params": params}])
    assert Instance.objects.get().settings == {"greeting": "hé", "max_size_mb": 12}
    lines = {**OPEN_PAD["params"], "domain": "team.example.org",
             "settings": "greeting=hello\nmax_size_mb=7"}
    act("Team", [{"type": "service.open", "params": lines}],
                      acting_user=collective["wren"])
    assert Instance.objects.get(domain="team.example.org").settings == {
        "greeting": "hello", "max_size_mb": 7}


# -- the direct paths ----------------------------------------------------------------------------


def test_the_api_refuses_closing_and_opening_for_a_partner_directly(
        client, collective, engine: FakeEngine) -> None:
    act("A pad", [OPEN_PAD], acting_user=collective["wren"])
    age_instances()
    api = api_for(client, collective["wren"])
    body = assert_error(api.delete("/services/instances/pad?confirm=pad"), 403,
                        "decision_required")
    assert body["link"] == "/decisions/new/?operation=service.close&instance=pad&delete_data=False"
    body = assert_error(api.post("/services/instances", {
        "application": "webtest", "domain": "radio.example.org", "host": "box",
        "organization": "radio-ourse"}), 403, "decision_required")
    assert "operation=service.open" in body["link"]
    assert list(Instance.objects.values_list("slug", "state")) == [("pad", "running")]
    assert len(engine.workloads) == 1


def test_the_cli_refuses_closing_and_opening_for_a_partner_directly(
        collective, engine: FakeEngine) -> None:
    act("A pad", [OPEN_PAD], acting_user=collective["wren"])
    age_instances()
    runner = CliRunner()
    for arguments in (["service", "instance", "remove", "pad", "--yes"],
                      ["--as", "wren", "service", "instance", "add", "webtest",
                       "radio.example.org", "--host", "box", "--organization", "radio-ourse"]):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chaton: error: "), result.stderr
        assert "needs a decision of the members" in lines[0]
        assert "/decisions/new/?operation=service." in lines[0]
    assert list(Instance.objects.values_list("slug", "state")) == [("pad", "running")]
    assert len(engine.workloads) == 1


def test_closing_a_new_instance_is_ordinary_until_it_is_a_week_old(
        collective, engine: FakeEngine, settings) -> None:
    """A pad opened a minute ago holds no one's data: closing it is an ordinary action.
    Once ``new_instance_days`` have passed it takes a decision, and an instance a partner
    organization got by decision is never closed without one."""
    wren = collective["wren"]
    closing = operations.get("service.close")
    act("A pad", [OPEN_PAD], acting_user=wren)
    assert closing.default_kind(closing.Params.model_validate({"instance": "pad"})) \
        == Kind.ORDINARY
    age_instances(days=6)
    decision = act("Close the pad", [{
        "type": "service.close", "params": {"instance": "pad", "delete_data": True}}],
        acting_user=wren)
    assert decision.kind == Kind.ORDINARY
    assert not Instance.objects.exists() and not engine.workloads and not engine.volumes
    # Seven days and more: a vote again, by every way in.
    act("A pad", [OPEN_PAD], acting_user=wren)
    age_instances(days=7)
    with pytest.raises(DecisionRequired):
        act("Close the pad", [CLOSE_PAD], acting_user=wren)
    with pytest.raises(DecisionRequired):
        actions.do_remove_instance(Instance.objects.get(), confirm="pad", acting_user=wren)
    # The setting moves the bound; 0 means always a decision.
    settings.CHATON.services.new_instance_days = 30
    assert closing.default_kind(closing.Params.model_validate({"instance": "pad"})) \
        == Kind.ORDINARY
    settings.CHATON.services.new_instance_days = 0
    with pytest.raises(DecisionRequired):
        actions.do_remove_instance(Instance.objects.get(), confirm="pad", acting_user=wren)
    settings.CHATON.services.new_instance_days = 7
    # A partner's instance, opened by decision a minute ago: closing it is a decision too.
    adopt(collective, [{"type": "service.open", "params": {
        **OPEN_PAD["params"], "domain": "radio.example.org", "slug": "radio",
        "organization": "radio-ourse"}}])
    with pytest.raises(DecisionRequired):
        actions.do_remove_instance(Instance.objects.get(slug="radio"), confirm="radio",
                                   acting_user=wren)
    assert set(Instance.objects.values_list("slug", "state")) == {
        ("pad", "running"), ("radio", "running")}


def test_a_login_group_travels_with_the_opening(collective, engines) -> None:
    """An application that logs in through the directory: its group is named in the params."""
    from chaton.services import catalog

    etherpad = catalog.get("etherpad")
    engine = engines(Host.objects.get(name="box"))
    engine.images |= {etherpad.image, etherpad.database.image}
    directory_actions.do_create_group("pads", acting_user=None)
    act("Etherpad", [{"type": "service.open", "params": {
        "application": "etherpad", "domain": "pad.example.org", "host": "box",
        "login_group": "pads"}}], acting_user=collective["wren"])
    instance = Instance.objects.get()
    assert instance.login_group is not None and instance.login_group.name == "pads"
    # No host named: the default one, when there is one.
    with pytest.raises(InvalidInput, match="no default host"):
        act("Another", [{"type": "service.open", "params": {
            "application": "webtest", "domain": "x.example.org"}}],
            acting_user=collective["wren"])


# -- an operation is done when its effect is real ------------------------------------------------


def test_an_opening_whose_deploy_fails_is_failed_and_a_retry_opens_it(
        client, collective, engine: FakeEngine, mailoutbox) -> None:
    """The engine answers the checks, then is unreachable when the deployment starts, after
    the commit: the operation is failed with the reason (no exception escapes the commit),
    the decision shows it, a notice goes out, and an administrator's retry opens the pad."""
    engine.fail_after = engine.writes
    decision = act("A pad for the members", [OPEN_PAD],
                                 acting_user=collective["wren"])
    row = decision.operations.get()
    assert row.status == OperationStatus.FAILED
    assert "box" in row.message and "does not answer" in row.message, row.message
    assert not Instance.objects.exists() and not engine.workloads
    assert queries.row(decision).execution == "failed"
    failure = AuditLog.objects.get(action="operation.fail")
    assert failure.after is not None and failure.after["status"] == "failed"
    # The "failed" notice goes to who acted (the announcement of the action, to the voters).
    assert ["wren@example.org"] in [message.to for message in mailoutbox
                                    if f"#{decision.pk}" in message.subject]

    api = api_for(client, collective["wren"])
    path = f"/governance/decisions/{decision.pk}"
    shown = api.get(path).json()
    assert shown["execution"] == "failed" and shown["operations"][0]["status"] == "failed"
    # A member may not retry; an administrator may, once the engine is back.
    assert_error(api_for(client, collective["aubin"]).post(f"{path}/retry", {}), 403,
                 "forbidden")
    engine.fail_after = None
    body = api.post(f"{path}/retry", {}).json()
    finish_jobs()  # the request only started the deployment
    assert body["operations"][0]["status"] == "done", body
    assert body["execution"] == "executed"
    assert Instance.objects.get().slug == "pad" and len(engine.workloads) == 1
    # Only a failed operation is retried.
    assert_error(api.post(f"{path}/retry", {"position": 0}), 409, "conflict")


def test_an_action_whose_second_operation_fails_after_the_commit_is_partly_executed(
        collective, engine: FakeEngine) -> None:
    team = directory_actions.do_create_group("team", acting_user=None)
    engine.fail_after = engine.writes
    decision = act("A team and its pad", [
        {"type": "group.grant", "params": {"group": "team", "account": "aubin"}}, OPEN_PAD],
        acting_user=collective["wren"])
    grant, opening = decision.operations.order_by("position")
    assert (grant.status, opening.status) == (OperationStatus.DONE, OperationStatus.FAILED)
    assert team.memberships.filter(account__uid="aubin").exists()
    assert queries.row(decision).execution == "partly executed"


def test_a_decided_opening_whose_deploy_fails_can_be_retried_from_the_cli_and_the_page(
        client, collective, engine: FakeEngine) -> None:
    spec = {"type": "service.open", "params": {**OPEN_PAD["params"],
                                               "organization": "radio-ourse"}}
    engine.fail_after = engine.writes
    decision_id = adopt(collective, [spec])  # the executor raises nothing
    decision = Decision.objects.get(pk=decision_id)
    row = decision.operations.get()
    assert row.status == OperationStatus.FAILED and not Instance.objects.exists()

    runner = CliRunner()
    result = runner.invoke(app, ["--as", "wren", "decision", "retry", str(decision_id)])
    assert result.exit_code == 1, result.output  # still unreachable: failed again
    row.refresh_from_db()
    assert row.status == OperationStatus.FAILED and row.attempts == 2
    with translation.override("en"):
        shown = runner.invoke(app, ["decision", "show", str(decision_id)])
    assert "Execution: failed." in shown.output

    # A member's post to the page is refused and changes nothing.
    client.force_login(collective["aubin"])
    client.post(f"/decisions/{decision_id}/operations/0/retry/")
    row.refresh_from_db()
    assert row.status == OperationStatus.FAILED and row.attempts == 2

    engine.fail_after = None
    client.force_login(collective["wren"])
    page = client.get(f"/decisions/{decision_id}/")
    assert f"/decisions/{decision_id}/operations/0/retry/" in page.content.decode()
    response = client.post(f"/decisions/{decision_id}/operations/0/retry/")
    assert response.status_code == 302
    finish_jobs()  # the request only started the deployment
    row.refresh_from_db()
    assert row.status == OperationStatus.DONE, row.message
    assert Instance.objects.get().organization is not None and len(engine.workloads) == 1
    decision.refresh_from_db()
    assert decision.executed_at is not None
