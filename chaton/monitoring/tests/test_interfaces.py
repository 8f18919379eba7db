"""The monitoring API, pages and reconcile; from the attacker's side: only administrators see
probes and incidents, acknowledge, add probes (a custom probe reaches internal addresses)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.core.models import AuditLog
from chaton.monitoring import derive
from chaton.monitoring.models import Incident, Maintenance, Probe, Source
from chaton.testing.second_factor import login_with_second_factor

API = "/api/v1/monitoring"
pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, client, key: str | None) -> None:
        self.client = client
        self.headers = {"Accept-Language": "en"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **params):
        return self.client.get(API + path, params, headers=self.headers)

    def post(self, path: str, body=None):
        return self.client.post(API + path, json.dumps(body) if body is not None else None,
                                content_type="application/json", headers=self.headers)

    def delete(self, path: str):
        return self.client.delete(API + path, headers=self.headers)


@pytest.fixture
def api(client, admin):
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def member_api(client, member):
    _token, key = do_create_api_token(member, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def incident():
    probe = Probe.objects.create(key="directory:ldap", name="Directory", kind="ldap",
                                 target="ldap://127.0.0.1:1", service="Directory")
    return Incident.objects.create(probe=probe, opened_at=clock.now(), first_error="refused",
                                   last_error="refused")


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


PROBE = {"name": "Association site", "kind": "http", "target": "https://asso.example.org/",
         "conditions": ["[STATUS] == 200", "[RESPONSE_TIME] < 500"], "public": True}


def test_an_administrator_adds_lists_shows_and_deletes_a_custom_probe(api):
    added = api.post("/probes", PROBE)
    assert added.status_code == 201, added.content
    key = added.json()["key"]
    assert key.startswith("custom:") and added.json()["source"] == "custom"
    assert [probe["key"] for probe in api.get("/probes").json()] == [key]
    assert api.get(f"/probes/{key}").json()["conditions"] == PROBE["conditions"]
    assert AuditLog.objects.filter(action="monitoring.probe_added").count() == 1
    assert api.delete(f"/probes/{key}").status_code == 204
    assert not Probe.objects.exists()
    assert AuditLog.objects.filter(action="monitoring.probe_deleted").count() == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"conditions": ["[STATUS] = 200"]}, "conditions"),
    ({"conditions": ["[NOPE] == 1"]}, "conditions"),
    ({"target": "ftp://asso.example.org/"}, "target"),
    ({"kind": "gopher"}, "kind"),
    ({"kind": "tcp", "target": "asso.example.org"}, "target"),
    ({"timeout_seconds": 120}, "timeout_seconds"),
    ({"options": {"password": "hunter2"}}, "options"),
    ({"kind": "tcp", "target": "asso.example.org:443", "conditions": ["[STATUS] == 200"]},
     "conditions"),
    ({"kind": "dns", "target": "asso.example.org", "conditions": ["[CERTIFICATE_EXPIRATION] > 7d"]},
     "conditions"),
    ({"conditions": ["[CERTIFICATE_EXPIRATION] > soon"]}, "conditions"),
])
def test_a_bad_probe_is_a_coded_error_naming_its_field_and_nothing_is_added(api, change, field):
    assert_error(api.post("/probes", {**PROBE, **change}), 400, "invalid", field)
    assert not Probe.objects.exists()


def test_a_placeholder_the_kind_never_fills_is_refused_by_name(api):
    """A TCP probe has no HTTP status: a condition on it would never hold, so it is refused
    with a message naming the condition, the placeholder and what the kind offers."""
    body = assert_error(api.post("/probes", {**PROBE, "kind": "tcp",
                                             "target": "asso.example.org:443",
                                             "conditions": ["[CONNECTED] == true",
                                                            "[STATUS] == 200"]}),
                        400, "invalid", "conditions")
    assert "“[STATUS] == 200”" in body["message"]
    assert "a tcp probe has no value for [STATUS]" in body["message"]
    assert "[CONNECTED]" in body["message"] and "[RESPONSE_TIME]" in body["message"]
    assert not Probe.objects.exists()


def test_unknown_probe_incident_or_window_is_not_found_never_a_500(api):
    assert_error(api.get("/probes/custom:404"), 404, "not_found")
    assert_error(api.get("/probes/bad%00key"), 404, "not_found")
    assert_error(api.post("/incidents/99999999999999999999999/ack"), 400, "invalid")
    assert_error(api.post("/incidents/77/ack"), 404, "not_found")
    assert_error(api.delete("/maintenance/5"), 404, "not_found")


def test_a_derived_probe_cannot_be_deleted_by_hand(api):
    Probe.objects.create(key="chaton:web", name="Chaton", kind="web", target="http://x/",
                         service="Chaton", source=Source.DERIVED)
    assert_error(api.delete("/probes/chaton:web"), 409, "conflict")
    assert Probe.objects.filter(key="chaton:web").exists()


def test_acknowledging_an_incident_is_audited_and_only_once(api, incident):
    answer = api.post(f"/incidents/{incident.pk}/ack", {"note": "the disk is full"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["acknowledged_by"] == "wren"
    assert answer.json()["note"] == "the disk is full"
    assert_error(api.post(f"/incidents/{incident.pk}/ack"), 409, "conflict")
    assert AuditLog.objects.filter(action="monitoring.incident_acknowledged").count() == 1
    listed = api.get("/incidents", open=True).json()
    assert [item["id"] for item in listed] == [incident.pk]


def test_maintenance_windows_are_added_listed_deleted(api):
    start = clock.now()
    body = {"title": "Upgrade", "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(hours=2)).isoformat(), "services": ["Directory"]}
    added = api.post("/maintenance", body)
    assert added.status_code == 201, added.content
    assert_error(api.post("/maintenance", {**body, "ends_at": start.isoformat()}), 400,
                 "invalid", "ends_at")
    assert [item["title"] for item in api.get("/maintenance").json()] == ["Upgrade"]
    assert api.delete(f"/maintenance/{added.json()['id']}").status_code == 204
    assert not Maintenance.objects.exists()


def test_the_test_alert_reaches_the_alert_group_and_the_channel(api, tech, notifier,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/test-alert")
    assert answer.json() == {"queued": 2}
    assert notifier.mails[0].recipients == ("wren@example.org",)
    assert len(notifier.posts) == 1


# -- from the attacker's side ----------------------------------------------------------------


def test_a_member_reaches_no_monitoring_endpoint_and_changes_nothing(member_api, incident):
    for path in ("/probes", "/probes/directory:ldap", "/incidents", "/maintenance"):
        assert_error(member_api.get(path), 403, "forbidden")
    assert_error(member_api.post("/probes", PROBE), 403, "forbidden")
    assert_error(member_api.post(f"/incidents/{incident.pk}/ack", {"note": "mine"}), 403,
                 "forbidden")
    assert_error(member_api.post("/test-alert"), 403, "forbidden")
    assert_error(member_api.post("/maintenance", {"title": "x", "starts_at": "2030-01-01T00:00Z",
                                                  "ends_at": "2030-01-02T00:00Z"}), 403,
                 "forbidden")
    assert_error(member_api.delete("/probes/directory:ldap"), 403, "forbidden")
    incident.refresh_from_db()
    assert incident.acknowledged_at is None and incident.note == ""
    assert Probe.objects.count() == 1 and not Maintenance.objects.exists()


def test_without_a_token_the_api_answers_401(client):
    assert_error(Api(client, None).get("/probes"), 401, "unauthorized")


def test_the_actions_refuse_a_member_whatever_the_interface(member, incident):
    from chaton.core.errors import Forbidden
    from chaton.monitoring import actions

    with pytest.raises(Forbidden):
        actions.do_add_probe(name="internal", kind="tcp", target="10.0.0.1:22",
                             acting_user=member)
    with pytest.raises(Forbidden):
        actions.do_acknowledge_incident(incident, acting_user=member)
    with pytest.raises(Forbidden):
        actions.do_send_test_alert(acting_user=member)
    assert Probe.objects.count() == 1


def test_a_member_sees_no_monitoring_page_nor_posts_to_one(client, member, incident):
    client.force_login(member)
    for url in ("/monitoring/", "/monitoring/incidents/", f"/monitoring/incidents/{incident.pk}/",
                "/monitoring/probes/directory:ldap/", "/monitoring/maintenance/",
                "/monitoring/probes/add/"):
        assert client.get(url).status_code == 403, url
    assert client.post("/monitoring/probes/add/", {"name": "x", "kind": "tcp",
                                                   "target": "10.0.0.1:22",
                                                   "interval_seconds": 60,
                                                   "timeout_seconds": 5}).status_code == 403
    assert client.post(f"/monitoring/incidents/{incident.pk}/",
                       {"note": "x", "acknowledge": "1"}).status_code == 403
    assert Probe.objects.count() == 1
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    answer = client.get("/monitoring/")
    assert answer.status_code == 302 and "login" in answer["Location"]


# -- pages -----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, admin):
    login_with_second_factor(client, admin)
    return client


def test_the_pages_show_probes_a_probe_incidents_and_windows(admin_client, incident, english):
    listing = admin_client.get("/monitoring/")
    assert listing.status_code == 200
    assert "directory:ldap" in listing.content.decode()
    assert admin_client.get("/monitoring/", {"state": "down"}).status_code == 200
    page = admin_client.get("/monitoring/probes/directory:ldap/")
    assert page.status_code == 200 and "<svg" in page.content.decode()
    assert admin_client.get("/monitoring/probes/nothing/").status_code == 404
    assert "refused" in admin_client.get("/monitoring/incidents/").content.decode()
    assert admin_client.get(f"/monitoring/incidents/{incident.pk}/").status_code == 200
    assert admin_client.get("/monitoring/incidents/999/").status_code == 404
    assert admin_client.get("/monitoring/maintenance/").status_code == 200


def test_a_bad_condition_in_the_form_is_shown_and_the_input_kept(admin_client, english):
    answer = admin_client.post("/monitoring/probes/add/", {
        "name": "Association site", "kind": "http", "target": "https://asso.example.org/",
        "conditions": "[STATUS] == 200\n[STATUS] = 200", "interval_seconds": 60,
        "timeout_seconds": 10})
    body = answer.content.decode()
    assert answer.status_code == 200
    assert "[STATUS] = 200" in body and "asso.example.org" in body
    assert "Condition “[STATUS] = 200”: " in body and "expected an operator" in body
    assert not Probe.objects.exists()


def test_the_form_refuses_a_placeholder_the_kind_never_fills(admin_client, english):
    answer = admin_client.post("/monitoring/probes/add/", {
        "name": "Mail port", "kind": "tcp", "target": "mail.example.org:587",
        "conditions": "[BODY] contains ESMTP", "interval_seconds": 60, "timeout_seconds": 10})
    body = answer.content.decode()
    assert answer.status_code == 200
    assert "a tcp probe has no value for [BODY]" in body and "mail.example.org:587" in body
    assert not Probe.objects.exists()


def test_acknowledging_from_the_page(admin_client, incident, english):
    answer = admin_client.post(f"/monitoring/incidents/{incident.pk}/",
                               {"note": "restarting slapd", "acknowledge": "1"})
    assert answer.status_code == 302
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None and incident.note == "restarting slapd"


# -- the reconcile ---------------------------------------------------------------------------


def test_the_reconcile_derives_probes_keeps_custom_ones_and_removes_orphans(admin):
    from chaton.services.models import Host, Instance

    host = Host.objects.create(name="local", docker_url="unix:///nowhere.sock", is_default=True)
    instance = Instance.objects.create(slug="pads", application="etherpad",
                                       domain="pads.example.org", host=host, port=20001)
    custom = Probe.objects.create(key="custom:1", name="Mine", kind="tcp",
                                  target="127.0.0.1:1", service="Mine", source=Source.CUSTOM)
    lines = derive.reconcile()
    keys = set(Probe.objects.values_list("key", flat=True))
    assert {"instance:pads:https", "directory:ldap", "chaton:web", "host:local:docker",
            "disk:data", "custom:1"} <= keys
    https = Probe.objects.get(key="instance:pads:https")
    assert https.target.startswith("https://pads.example.org/") and https.public
    assert https.conditions[0].startswith("[STATUS] == ")
    assert lines and derive.reconcile() == []  # in step: nothing to do
    instance.state = "removed"  # being closed: no longer watched
    instance.save(update_fields=["state"])
    assert "- instance:pads:https" in derive.reconcile()
    assert not Probe.objects.filter(instance__isnull=False).exists()
    custom.refresh_from_db()
    assert custom.source == Source.CUSTOM


def test_the_lists_do_not_grow_queries_with_probes_and_incidents(
        admin_client, api, django_assert_max_num_queries):
    def make(count: int, start: int) -> None:
        for index in range(start, start + count):
            probe = Probe.objects.create(key=f"custom:{index}", name=f"Site {index}",
                                         kind="http", target=f"https://s{index}.example.org/",
                                         service=f"Site {index}", source=Source.CUSTOM)
            Incident.objects.create(probe=probe, opened_at=clock.now(), first_error="down")

    make(2, 1)
    with django_assert_max_num_queries(60) as few:
        admin_client.get("/monitoring/")
        admin_client.get("/monitoring/incidents/")
        api.get("/incidents")
    baseline = len(few.captured_queries)
    make(20, 100)
    with django_assert_max_num_queries(baseline) as many:
        admin_client.get("/monitoring/")
        admin_client.get("/monitoring/incidents/")
        api.get("/incidents")
    assert len(many.captured_queries) <= baseline
