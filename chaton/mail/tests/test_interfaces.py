"""The mail API, pages, CLI and public files, with the DNS and the signer faked; bad input
gets a clear error everywhere and nothing is made."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.core import clock
from chaton.directory import actions as directory_actions
from chaton.governance.tests.test_api import Api, api_for, assert_error
from chaton.mail import actions
from chaton.mail.models import DkimKey, KeyState, MailDomain
from chaton.testing.second_factor import login_with_second_factor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("english")]

MAIL = "/mail"


class Json(Api):
    def patch(self, path, body):
        return self.call("patch", path, body)


@pytest.fixture
def wren(directory):
    return directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                               email="wren@example.org", is_admin=True)


@pytest.fixture
def api(client, wren) -> Json:
    plain = api_for(client, wren)
    return Json(plain.client, plain.headers["Authorization"].removeprefix("Bearer "))


@pytest.fixture
def admin_client(client, wren):
    login_with_second_factor(client, wren)
    return client


def test_api_domains_records_plan_apply(mail, api):
    response = api.post(f"{MAIL}/domains", {"name": "Lists.Example.org", "zone": "example.org",
                                            "mx_hosts": ["mx.example.org"],
                                            "sending_addresses": ["192.0.2.7"]})
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "lists.example.org"
    assert [d["name"] for d in api.get(f"{MAIL}/domains").json()] == [
        "example.org", "lists.example.org"]
    records = api.get(f"{MAIL}/domains/lists.example.org/records").json()
    spf = [r for r in records["records"] if r["purpose"] == "SPF"]
    assert spf[0]["values"] == ["v=spf1 mx ip4:192.0.2.7 -all"]
    assert "lists.example.org. 3600 IN MX 10 mx.example.org." in records["zone_file"]
    plan = api.get(f"{MAIL}/domains/lists.example.org/plan").json()
    assert {step["action"] for step in plan["steps"]} == {"add"}
    changed = api.post(f"{MAIL}/domains/lists.example.org/apply").json()["changed"]
    assert changed == len(plan["steps"])
    plan = api.get(f"{MAIL}/domains/lists.example.org/plan").json()
    assert {step["action"] for step in plan["steps"]} == {"ok"}
    assert mail.dns.records[("lists.example.org.", "TXT")].values == (
        "v=spf1 mx ip4:192.0.2.7 -all",)
    patched = api.patch(f"{MAIL}/domains/lists.example.org", {"dmarc_policy": "reject"})
    assert patched.json()["dmarc_policy"] == "reject"


def test_api_dkim_status_and_rotate(mail, api):
    actions.do_reconcile_keys(mail.domain)
    keys = api.get(f"{MAIL}/domains/example.org/dkim").json()
    assert [key["state"] for key in keys] == ["pending"]
    assert "private" not in str(keys).lower()
    assert_error(api.post(f"{MAIL}/domains/example.org/dkim/rotate", {}), 409, "conflict")
    clock.travel(dt.timedelta(hours=5))
    actions.do_reconcile_keys(mail.domain)
    answer = api.post(f"{MAIL}/domains/example.org/dkim/rotate", {"emergency": True}).json()
    assert [key["state"] for key in answer["retired"]] == ["retired"]
    assert answer["skipped"]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "not a domain", "zone": "example.org"}, "name"),
    ({"name": "-bad-.example.org", "zone": "example.org"}, "name"),
    ({"name": "example.net", "zone": "example.org"}, "zone"),
    ({"name": "a.example.org", "zone": "example.org", "mx_hosts": ["mx..org"]}, "mx_hosts"),
    ({"name": "a.example.org", "zone": "example.org", "sending_addresses": ["300.1.1.1"]},
     "sending_addresses"),
    ({"name": "a.example.org", "zone": "example.org", "mta_sts_max_age": 31557601},
     "mta_sts_max_age"),
])
def test_api_bad_input_is_a_coded_error_and_nothing_is_made(mail, api, body, field):
    assert_error(api.post(f"{MAIL}/domains", body), 400, "invalid", field)
    assert list(MailDomain.objects.values_list("name", flat=True)) == ["example.org"]


def test_api_unknown_zone_and_domain(mail, api):
    assert_error(api.post(f"{MAIL}/domains", {"name": "a.example.com", "zone": "example.com"}),
                 404, "not_found", "zone")
    assert_error(api.get(f"{MAIL}/domains/nowhere.example/plan"), 404, "not_found")


def test_a_dns_server_down_or_refusing_is_a_coded_error(mail, api):
    mail.dns.down = True
    assert_error(api.post(f"{MAIL}/domains/example.org/apply"), 503, "dns_unavailable")
    mail.dns.down, mail.dns.tsig_refused = False, True
    body = assert_error(api.post(f"{MAIL}/domains/example.org/apply"), 502, "dns_refused")
    assert "TSIG" in body["message"]


def test_a_selector_with_illegal_characters_is_refused(mail, settings, monkeypatch):
    monkeypatch.setattr(settings.CHATON.mail_identity, "selectors", ["bad_selector!"])
    from chaton.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        actions.do_rotate(mail.domain, acting_user=None)
    assert refused.value.field == "selectors"
    assert not DkimKey.objects.exists()


def test_pages_show_records_snippet_and_keys(mail, admin_client):
    actions.do_reconcile_keys(mail.domain)
    key = DkimKey.objects.get()
    page = admin_client.get("/mail/").content.decode()
    assert "example.org" in page
    page = admin_client.get("/mail/domains/example.org/").content.decode()
    assert "v=spf1 mx -all" in page
    assert f"{key.selector}._domainkey.example.org." in page
    assert "IN MX 10 mx.example.org." in page  # the zone-file snippet
    assert "pending" in page


def test_page_forms_keep_what_was_typed_on_error(mail, admin_client):
    response = admin_client.post("/mail/new-domain/", {
        "name": "example.net", "zone": "example.org", "dmarc_policy": "none",
        "mta_sts_mode": "testing", "mx_hosts": "mx.example.net"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "is not in the zone example.org." in page
    assert 'value="mx.example.net"' in page
    response = admin_client.post("/mail/new-domain/", {
        "name": "lists.example.org", "zone": "example.org", "dmarc_policy": "none",
        "mta_sts_mode": "testing"})
    assert response.status_code == 302


def test_pages_are_for_administrators(mail, client, directory):
    member = directory_actions.do_create_account("noa", acting_user=None, display_name="Noa",
                                                 email="noa@example.org")
    client.force_login(member)
    assert client.get("/mail/").status_code in (302, 403)


def test_mta_sts_policy_is_served(mail, client):
    response = client.get("/mail/mta-sts/example.org.txt")
    assert response.status_code == 200
    assert response.content.decode() == (
        "version: STSv1\r\nmode: testing\r\nmx: mx.example.org\r\nmax_age: 604800\r\n")
    assert client.get("/mail/mta-sts/nowhere.example.txt").status_code == 404


def test_cli_domain_dkim_dns(mail):
    runner = CliRunner()
    result = runner.invoke(app, ["mail", "domain", "add", "lists.example.org", "--zone",
                                 "example.org", "--mx", "mx.example.org"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["mail", "domain", "show", "lists.example.org"])
    assert "lists.example.org. 3600 IN TXT \"v=spf1 mx -all\"" in result.output
    result = runner.invoke(app, ["mail", "dns", "plan", "lists.example.org"])
    assert "add" in result.output
    result = runner.invoke(app, ["mail", "dns", "apply", "lists.example.org"])
    assert result.exit_code == 0 and "record sets changed" in result.output
    actions.do_reconcile_keys(MailDomain.objects.get(name="lists.example.org"))
    result = runner.invoke(app, ["mail", "dkim", "status", "lists.example.org"])
    assert "pending" in result.output
    clock.travel(dt.timedelta(hours=5))
    actions.do_reconcile_keys(MailDomain.objects.get(name="lists.example.org"))
    result = runner.invoke(app, ["mail", "dkim", "rotate", "lists.example.org", "--emergency"])
    assert result.exit_code == 0, result.output
    assert "retired at once" in result.output and "skipped" in result.output


@pytest.mark.parametrize("arguments", [
    ["mail", "domain", "add", "not_a_domain", "--zone", "example.org"],
    ["mail", "domain", "add", "example.net", "--zone", "example.org"],
    ["mail", "domain", "show", "nowhere.example"],
])
def test_cli_bad_input_is_one_line_and_exit_2(mail, arguments):
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(MailDomain.objects.values_list("name", flat=True)) == ["example.org"]


def test_retired_keys_readme_is_public_and_lists_nothing(mail, client):
    actions.do_reconcile_keys(mail.domain)
    key = DkimKey.objects.get()
    response = client.get("/.well-known/dkim/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "sha256" in text.lower() and "DKIM-Signature" in text
    assert key.published_name not in text and key.selector not in text
    assert client.get(f"/.well-known/dkim/{key.published_name}.pem").status_code == 404
    assert key.published_name == hashlib.sha256(key.public_key.encode()).hexdigest()
    assert key.state == KeyState.PENDING


def test_cli_zone_add_and_a_bad_server(db):
    runner = CliRunner()
    result = runner.invoke(app, ["mail", "zone", "add", "example.net", "--mode", "rfc2136",
                                 "--server", "127.0.0.1:5300", "--tsig-name", "chaton"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["mail", "zone", "add", "example.com", "--mode", "rfc2136"])
    assert result.exit_code == 2 and "primary server" in result.stderr
    result = runner.invoke(app, ["mail", "zone", "add", "example.com", "--server", "ns:x"])
    assert result.exit_code == 2


def test_the_worker_job_moves_keys_and_says_so(mail):
    from chaton.core.worker import Schedule
    from chaton.mail import jobs

    due = jobs.due_jobs(Schedule())
    assert [name for name, _job in due] == ["mail.dkim"]
    result = due[0][1]()
    assert result is not None and result.ok and "new key" in result.summary
    assert jobs.reconcile_keys() is None  # nothing more to do now


def test_the_demo_loads_twice_without_change(db):
    from chaton.core.demo import DemoReport
    from chaton.mail import demo

    first, second = DemoReport(), DemoReport()
    demo.load(first)
    demo.load(second)
    assert first.created and not second.created
    domain = MailDomain.objects.get(name="example.org")
    assert domain.zone.mode == "manual"


def test_french_pages_render(mail, admin_client, settings):
    settings.LANGUAGE_CODE = "fr"
    actions.do_reconcile_keys(mail.domain)
    assert admin_client.get("/mail/domains/example.org/").status_code == 200
    assert admin_client.get("/.well-known/dkim/").status_code == 200


def test_a_manual_zone_without_a_server_is_no_worker_failure(db, fake_signer):
    from chaton.core.demo import DemoReport
    from chaton.mail import demo, jobs

    demo.load(DemoReport())
    result = jobs.reconcile_keys()
    assert result is not None and result.ok
    assert DkimKey.objects.get().state == KeyState.PENDING


def test_the_diagnosis_from_each_interface(mail, api, admin_client):
    """The diagnosis (its own tests are in test_diagnosis.py) runs on request; the zone's
    records are not published yet: findings, each with its fix, everywhere."""
    actions.do_reconcile_keys(mail.domain)
    mail.dns.records.clear()
    page = admin_client.get("/mail/domains/example.org/").content.decode()
    assert "Run the diagnosis" in page
    page = admin_client.get("/mail/domains/example.org/?diagnose=1").content.decode()
    assert 'class="finding-error"' in page
    findings = api.get(f"{MAIL}/domains/example.org/diagnosis").json()
    assert findings and all(finding["fix"] for finding in findings)
    assert {finding["code"] for finding in findings} & {"record_missing", "spf_missing"}
    result = CliRunner().invoke(app, ["mail", "domain", "diagnose", "example.org"])
    assert result.exit_code == 1, result.output
    assert findings[0]["code"] in result.output


def test_the_api_is_for_administrators(mail, client, directory):
    member = directory_actions.do_create_account("noa", acting_user=None, display_name="Noa",
                                                 email="noa@example.org")
    api = api_for(client, member)
    assert api.get(f"{MAIL}/domains").status_code == 403
    assert api.post(f"{MAIL}/domains/example.org/dkim/rotate", {}).status_code == 403
    assert not DkimKey.objects.exists()


def test_the_demo_domain_shows_its_records(db, admin_client, fake_signer):
    """``make run``: the demo's domain, in a zone set by hand with no server to ask, shows
    what to set, as a checklist and a zone-file snippet."""
    from chaton.core.demo import DemoReport
    from chaton.mail import demo

    demo.load(DemoReport())
    page = admin_client.get("/mail/domains/example.org/").content.decode()
    assert "names no authoritative server" in page
    assert "v=spf1 mx ip4:192.0.2.25 -all" in page
    assert "_dmarc.example.org. 3600 IN TXT" in page
