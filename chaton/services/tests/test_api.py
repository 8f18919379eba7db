"""``/api/v1/services`` against FakeEngines and the recorded proxy: hosts, the catalogue,
instances from creation to removal, the plan, reconcile and the diagram; every bad input a
coded JSON error (never a 500) that leaves nothing behind; the list's constant queries."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chaton.adapters.docker.fake import FakeEngine
from chaton.core import jobs
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.governance.policy import current
from chaton.governance.tests.test_api import Api, api_for, assert_error
from chaton.members import actions as member_actions
from chaton.services import actions
from chaton.services.models import Host, Instance
from chaton.services.tests.conftest import ADDRESS, FakeEngines, RecordedProxy, age_instances
from chaton.testing import jobs as accepted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("directory")]
SERVICES = "/services"


@pytest.fixture
def admin_api(client) -> Api:
    wren = directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                               email="wren@example.org", is_admin=True)
    return api_for(client, wren)


class Json(Api):
    def patch(self, path, body):
        return self.call("patch", path, body)


@pytest.fixture
def api(admin_api) -> Json:
    return Json(admin_api.client, admin_api.headers["Authorization"].removeprefix("Bearer "))


@pytest.fixture(autouse=True)
def jobs_run_by_the_tests(monkeypatch):
    """The tests run the jobs the API starts themselves, in turn, not in the lane's threads."""
    monkeypatch.setattr(jobs, "submit", lambda job_id: False)


def new_instance(api: Json, domain: str = "pad.example.org", **values):
    return api.post(f"{SERVICES}/instances",
                    {"application": "webtest", "domain": domain, "host": "box", **values})


def opened(api: Json, domain: str = "pad.example.org", **values) -> dict:
    """Open an instance through the API, run its deployment job; return the instance."""
    return accepted.result_of(api.client, new_instance(api, domain, **values),
                              {"Authorization": api.headers["Authorization"]})


def nothing_made(engine: FakeEngine, count: int = 0) -> None:
    assert Instance.objects.count() == count
    assert len(engine.workloads) == count and len(engine.networks) == count


def allow_closing() -> None:
    policy = current()
    policy.classes = {"service.close": "ordinary"}
    policy.save()


# -- hosts ----------------------------------------------------------------------------------------


def test_hosts_list_create_and_show_with_live_info(api, engines: FakeEngines,
                                                  recorded_proxy) -> None:
    response = api.post(f"{SERVICES}/hosts", {"name": "box", "docker_url":
                                              "unix:///run/fake/docker.sock",
                                              "address": ADDRESS, "is_default": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["engine"] == {"reachable": True, "version": "fake", "name": "fake",
                              "swarm_manager": False, "error": ""}
    assert body["roles"] == ["apps"] and body["is_default"] and body["instances"] == []
    assert [host["name"] for host in api.get(f"{SERVICES}/hosts").json()] == ["box"]
    engines["box"].available = False
    shown = api.get(f"{SERVICES}/hosts/box").json()
    assert shown["engine"]["reachable"] is False
    assert "the fake engine is down" in shown["engine"]["error"]
    assert_error(api.get(f"{SERVICES}/hosts/nowhere"), 404, "not_found", "host")


def test_a_host_whose_engine_does_not_answer_is_503_and_not_added(
        api, engines: FakeEngines) -> None:
    engines.engines["down"] = FakeEngine(available=False)
    response = api.post(f"{SERVICES}/hosts", {"name": "down", "docker_url": "tcp://192.0.2.9:2376"})
    assert_error(response, 503, "engine_unreachable", "host")
    assert not Host.objects.exists()
    assert_error(api.post(f"{SERVICES}/hosts", {"name": "x", "docker_url": "ftp://x"}),
                 400, "invalid", "docker_url")
    assert_error(api.post(f"{SERVICES}/hosts", {"name": "x", "docker_url": "unix:///x",
                                                "roles": ["cooking"]}), 400, "invalid", "roles")


# -- the catalogue --------------------------------------------------------------------------------


def test_catalogue_lists_applications_and_shows_the_settings_schema(api) -> None:
    listed = {entry["name"]: entry for entry in api.get(f"{SERVICES}/catalog").json()}
    assert {"etherpad", "mattermost", "nextcloud", "castopod", "privatebin", "kanboard",
            "bookstack"} <= set(listed)
    privatebin = listed["privatebin"]
    assert privatebin["ldap"]["supported"] is False and privatebin["ldap"]["reason"]
    assert privatebin["database"] is None and privatebin["backed_up"] == ["data"]
    size = next(setting for setting in privatebin["settings"]
                if setting["name"] == "max_paste_size_mb")
    assert (size["default"], size["minimum"], size["maximum"]) == (10, 1, 100)
    assert listed["etherpad"]["database"] == "postgres"
    shown = api.get(f"{SERVICES}/catalog/privatebin").json()
    schema = shown["settings_schema"]
    assert schema["properties"]["max_paste_size_mb"]["maximum"] == 100
    assert schema["additionalProperties"] is False
    assert_error(api.get(f"{SERVICES}/catalog/nothing"), 404, "not_found", "application")


# -- instances ------------------------------------------------------------------------------------


def test_instance_create_show_list_patch(api, host: Host, engine: FakeEngine,
                                         recorded_proxy: RecordedProxy) -> None:
    response = new_instance(api, settings={"greeting": "salut"})
    assert response.status_code == 202, response.content
    assert (response.json()["kind"], response.json()["target"]) == ("services.deploy", "pad")
    body = accepted.result_of(api.client, response,
                              {"Authorization": api.headers["Authorization"]})
    assert (body["slug"], body["host"], body["port"], body["image"]) == (
        "pad", "box", 20000, "chaton-test/web:1")
    assert body["settings"] == {"greeting": "salut", "max_size_mb": 10}
    assert body["live"]["state"] == "running" and body["plan"] == []
    assert [event["kind"] for event in body["events"]] == ["create"]
    assert "secrets" not in body and "token" not in str(body)
    assert recorded_proxy.last == {"pad.example.org": f"{ADDRESS}:20000"}
    engine.stop_by_hand("pad")
    listed = api.get(f"{SERVICES}/instances").json()
    assert [(item["slug"], item["live"]["state"]) for item in listed] == [("pad", "stopped")]
    assert api.get(f"{SERVICES}/instances", host="box").json()[0]["slug"] == "pad"
    assert_error(api.get(f"{SERVICES}/instances", host="nowhere"), 404, "not_found")
    shown = api.get(f"{SERVICES}/instances/pad").json()
    assert any("stopped by hand" in line for line in shown["plan"])
    response = api.patch(f"{SERVICES}/instances/pad", {"settings": {"max_size_mb": 40}})
    assert response.status_code == 200, response.content
    assert response.json()["settings"] == {"greeting": "salut", "max_size_mb": 40}
    assert response.json()["events"][0]["kind"] == "settings"
    assert_error(api.patch(f"{SERVICES}/instances/pad", {"settings": {"max_size_mb": 0}}),
                 400, "invalid", "settings.max_size_mb")
    assert_error(api.patch(f"{SERVICES}/instances/pad", {"settings": {"colour": "red"}}),
                 400, "invalid", "settings.colour")
    directory_actions.do_create_group("pads", acting_user=None)
    assert_error(api.patch(f"{SERVICES}/instances/pad", {"login_group": "pads"}),
                 400, "invalid", "login_group")
    assert_error(api.patch(f"{SERVICES}/instances/pad", {"sizes": 1}), 400, "invalid")
    assert_error(api.get(f"{SERVICES}/instances/nothing"), 404, "not_found", "slug")
    assert_error(api.get(f"{SERVICES}/instances/pa%00d"), 404, "not_found", "slug")
    assert_error(api.get(f"{SERVICES}/hosts/b%00x"), 404, "not_found", "host")


@pytest.mark.parametrize(("values", "status", "code", "field"), [
    ({"settings": {"max_size_mb": 1000}}, 400, "invalid", "settings.max_size_mb"),
    ({"settings": {"max_size_mb": "ten"}}, 400, "invalid", "settings.max_size_mb"),
    ({"settings": {"greeting": "x" * 50, "max_size_mb": 1}}, 400, "invalid", "settings"),
    ({"application": "nothing"}, 400, "invalid", "application"),
    ({"domain": "not a domain"}, 400, "invalid", "domain"),
    ({"image": "chaton-test/web:missing"}, 400, "invalid", "image"),
    ({"image": "latest"}, 400, "invalid", "image"),
    ({"host": "nowhere"}, 404, "not_found", "host"),
    ({"login_group": "nobody"}, 404, "not_found", "login_group"),
    ({"organization": "nobody"}, 404, "not_found", "organization"),
    ({"port": 70000}, 400, "invalid", "port"),
    ({"slug": "Bad Slug!"}, 400, "invalid", "slug"),
    ({"colour": "red"}, 400, "invalid", "colour"),
    ({"settings": {"greeting": "a\x00b"}}, 400, "invalid", None),
    ({"organization": "a\x00b"}, 400, "invalid", None),
])
def test_bad_input_is_a_coded_error_and_nothing_is_made(api, host, engine, values, status,
                                                        code, field) -> None:
    response = new_instance(api, **values)
    assert_error(response, status, code, field)
    nothing_made(engine)
    assert not AuditLog.objects.filter(action__startswith="instance.").exists()


def test_taken_domain_port_clash_and_unreachable_engine(api, host, engine) -> None:
    opened(api)
    assert_error(new_instance(api, slug="other"), 409, "conflict", "domain")
    assert_error(new_instance(api, "team.example.org", port=20000), 409, "conflict", "port")
    engine.taken_ports.add(20001)
    assert_error(new_instance(api, "team.example.org", port=20001), 409, "conflict", "port")
    engine.available = False
    assert_error(new_instance(api, "team.example.org"), 503, "engine_unreachable", "host")
    engine.available = True
    nothing_made(engine, 1)


def test_a_deployment_that_fails_is_the_jobs_error_and_leaves_nothing(api, host,
                                                                      engine) -> None:
    response = new_instance(api)
    assert response.status_code == 202, response.content
    assert Instance.objects.filter(slug="pad").exists()  # recorded, to be deployed
    engine.available = False  # the engine goes away before the deployment
    error = accepted.error_of(api.client, response,
                              {"Authorization": api.headers["Authorization"]}, 503,
                              "engine_unreachable", "host")
    assert "box" in error["message"]
    assert not Instance.objects.exists()
    engine.available = True
    nothing_made(engine)


def test_the_instance_list_costs_the_same_queries_for_2_and_20(api, host) -> None:
    for index in range(2):
        actions.do_create_instance("webtest", f"site{index}.example.org", host,
                                   acting_user=None)
    api.get(f"{SERVICES}/hosts")  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as few:
        assert len(api.get(f"{SERVICES}/instances").json()) == 2
    for index in range(2, 20):
        actions.do_create_instance("webtest", f"site{index}.example.org", host,
                                   acting_user=None)
    with CaptureQueriesContext(connection) as many:
        assert len(api.get(f"{SERVICES}/instances").json()) == 20
    assert len(few.captured_queries) == len(many.captured_queries)


def test_upgrade_answers_a_job_whose_result_is_the_attempt(api, host, engine) -> None:
    opened(api)
    response = api.post(f"{SERVICES}/instances/pad/upgrade", {"image": "chaton-test/web:2"})
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["kind"], job["target"], job["state"]) == ("services.upgrade", "pad", "queued")
    # Recorded at once: the instance shows it upgrading, a second upgrade is refused.
    assert api.get(f"{SERVICES}/instances/pad").json()["live"]["state"] == "upgrading"
    assert_error(api.post(f"{SERVICES}/instances/pad/upgrade", {"image": "chaton-test/web:1"}),
                 409, "conflict", "image")  # one upgrade at a time
    headers = {"Authorization": api.headers["Authorization"]}
    deployment = accepted.result_of(api.client, response, headers)
    assert deployment["outcome"] == "healthy" and deployment["to_image"] == "chaton-test/web:2"
    response = api.post(f"{SERVICES}/instances/pad/upgrade",
                        {"image": "chaton-test/web:broken"})
    body = accepted.result_of(api.client, response, headers)
    assert body["outcome"] == "rolled_back" and "did not pass its health check" in body["message"]
    assert api.get(f"{SERVICES}/instances/pad").json()["image"] == "chaton-test/web:2"
    assert_error(api.post(f"{SERVICES}/instances/pad/upgrade", {"image": "nothing"}),
                 400, "invalid", "image")


def test_removal_needs_the_short_name_and_a_decision(api, host, engine) -> None:
    opened(api)
    age_instances()
    assert_error(api.delete(f"{SERVICES}/instances/pad"), 400, "invalid", "confirm")
    body = assert_error(api.delete(f"{SERVICES}/instances/pad?confirm=pad"), 403,
                        "decision_required")
    assert body["link"].startswith("/decisions/new/?operation=service.close")
    assert Instance.objects.get(slug="pad").state == "running"
    allow_closing()
    response = api.delete(f"{SERVICES}/instances/pad?confirm=pad&delete_data=true")
    assert response.status_code == 204
    nothing_made(engine)
    assert not engine.volumes


def test_a_service_for_a_partner_organization_needs_a_decision(api, host, engine) -> None:
    member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                          slug="radio-ourse", acting_user=None)
    body = assert_error(new_instance(api, organization="radio-ourse"), 403,
                        "decision_required")
    assert "operation=service.open" in body["link"] and "organization=radio-ourse" in body["link"]
    nothing_made(engine)
    assert_error(new_instance(api, organization="radio-ourse", person="x@example.org"),
                 400, "invalid", "organization")


def test_plan_reconcile_and_diagram(api, host, engine) -> None:
    opened(api)
    engine.remove_by_hand("pad")
    plan = api.get(f"{SERVICES}/plan").json()
    assert not plan["is_noop"] and plan["counts"] == {"run": 1}
    assert plan["lines"][0].startswith("! box: chaton-pad-app-")
    dry = api.post(f"{SERVICES}/reconcile", {"dry_run": True}).json()
    assert dry["applied"] == 1 and not engine.workloads  # shown to the engine, not done
    done = api.post(f"{SERVICES}/reconcile", {}).json()
    assert done["applied"] == 1 and done["failures"] == [] and len(engine.workloads) == 1
    assert api.get(f"{SERVICES}/plan").json()["is_noop"]
    assert_error(api.post(f"{SERVICES}/reconcile", {"dry_run": "maybe"}), 400, "invalid")
    engine.available = False
    down = api.get(f"{SERVICES}/plan").json()
    assert "box" in down["errors"]
    response = api.get(f"{SERVICES}/diagram.svg")
    assert response.status_code == 200 and response["Content-Type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(response.content)  # noqa: S314 - our own drawing
    assert "pad.example.org" in "".join(root.itertext())


def test_only_administrators(client, host) -> None:
    kim = directory_actions.do_create_account("kim", acting_user=None, display_name="Kim",
                                              email="kim@example.org")
    member = api_for(client, kim)
    assert_error(member.get(f"{SERVICES}/instances"), 403, "forbidden")
    assert_error(Api(client, None).get(f"{SERVICES}/hosts"), 401, "unauthorized")
