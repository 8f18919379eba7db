"""The register of authority requests and the profile, from the attacker's side: what was asked
and answered never leaves the administrators' pages, API and command, whatever the way in."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from chaton.core.actions import do_create_api_token
from chaton.core.models import AuditLog
from chaton.testing.second_factor import login_with_second_factor
from chaton.transparency import actions
from chaton.transparency.models import AuthorityRequest, OrganizationProfile

pytestmark = pytest.mark.django_db
API = "/api/v1/transparency"
PRIVATE_ASKED = "Identity and IP addresses of the account alix.martin (Alix Martin, 12 rue Lepic)"
PRIVATE_ANSWER = "We sent the account's creation date to officer Dupont"
PUBLIC_TEXT = "Identification of an account holder; we answered with the only data we keep."


class Api:
    def __init__(self, client: Any, key: str | None) -> None:
        self.client = client
        self.headers = {"Accept-Language": "en"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str) -> Any:
        return self.client.get(API + path, headers=self.headers)

    def send(self, method: str, path: str, body: Any = None) -> Any:
        return getattr(self.client, method)(API + path, json.dumps(body),
                                            content_type="application/json",
                                            headers=self.headers)


@pytest.fixture
def api(client: Any, admin: Any) -> Api:
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def member_api(client: Any, member: Any) -> Api:
    _token, key = do_create_api_token(member, "tests", acting_user=None)
    return Api(client, key)


def record(**fields: Any) -> AuthorityRequest:
    values = {"received_on": dt.date(2026, 3, 2), "authority": "Gendarmerie of Lyon",
              "kind": "identification", "asked": PRIVATE_ASKED, "answered": PRIVATE_ANSWER,
              "answered_on": dt.date(2026, 3, 9)} | fields
    return actions.do_add_authority_request(acting_user=None, **values)


def assert_nothing_private(text: str) -> None:
    for secret in ("alix", "Alix", "12 rue Lepic", "Dupont", "creation date"):
        assert secret not in text, secret


def test_an_administrator_records_and_publishes_a_request_through_the_api(api: Api) -> None:
    added = api.send("post", "/requests", {
        "received_on": "2026-03-02", "authority": "Gendarmerie of Lyon",
        "kind": "identification", "asked": PRIVATE_ASKED, "answered": PRIVATE_ANSWER,
        "answered_on": "2026-03-09"})
    assert added.status_code == 201, added.content
    request_id = added.json()["id"]
    assert added.json()["published"] is False
    published = api.send("post", f"/requests/{request_id}/publish",
                         {"published_text": PUBLIC_TEXT})
    assert published.status_code == 200, published.content
    assert published.json()["published_text"] == PUBLIC_TEXT
    twice = api.send("post", f"/requests/{request_id}/publish", {"published_text": "again"})
    assert twice.status_code == 409 and twice.json()["code"] == "conflict"
    actions_logged = list(AuditLog.objects.filter(action__startswith="transparency.request")
                          .values_list("action", flat=True))
    assert sorted(actions_logged) == ["transparency.request_add", "transparency.request_publish"]
    for row in AuditLog.objects.filter(action__startswith="transparency.request"):
        assert_nothing_private(json.dumps([row.before, row.after]))


def test_the_public_never_sees_an_unpublished_request_nor_private_fields(
        client: Any, api: Api) -> None:
    published = record()
    actions.do_publish_authority_request(published, acting_user=None, published_text=PUBLIC_TEXT)
    record(authority="Court of Paris", kind="seizure", asked="Mailbox of camille@example.org",
           answered="", answered_on=None)

    page = client.get("/transparency/?lang=en")
    assert page.status_code == 200
    body = page.content.decode()
    assert PUBLIC_TEXT in body and "Gendarmerie of Lyon" in body
    assert "Court of Paris" not in body and "camille" not in body
    assert_nothing_private(body)

    public = client.get(API + "/public/requests")
    assert public.status_code == 200
    assert public.json() == [{"received_on": "2026-03-02", "authority": "Gendarmerie of Lyon",
                              "kind": "identification", "published_text": PUBLIC_TEXT}]
    # Every other way in needs an administrator.
    assert client.get(API + "/requests").status_code == 401
    assert client.get(API + f"/requests/{published.pk}").status_code == 401
    assert client.get("/transparency/requests/").status_code == 302
    assert client.get(f"/transparency/requests/{published.pk}/").status_code == 302


@pytest.mark.usefixtures("english")
def test_a_member_cannot_read_record_nor_publish_requests(client: Any, member: Any,
                                                          member_api: Api) -> None:
    row = record()
    assert member_api.get("/requests").status_code == 403
    assert member_api.get(f"/requests/{row.pk}").status_code == 403
    assert member_api.send("post", "/requests", {
        "received_on": "2026-03-02", "authority": "x", "kind": "y", "asked": "z"}
    ).status_code == 403
    assert member_api.send("post", f"/requests/{row.pk}/publish",
                           {"published_text": PRIVATE_ASKED}).status_code == 403
    client.force_login(member)
    assert client.get("/transparency/requests/").status_code == 403
    assert client.post(f"/transparency/requests/{row.pk}/",
                       {"published_text": PRIVATE_ASKED}).status_code == 403
    row.refresh_from_db()
    assert not row.published and row.published_text == ""
    with pytest.raises(Exception, match="Only administrators"):
        actions.do_publish_authority_request(row, acting_user=member, published_text="x")


def test_the_private_record_cannot_be_published_as_is(api: Api) -> None:
    row = record()
    refused = api.send("post", f"/requests/{row.pk}/publish", {"published_text": PRIVATE_ASKED})
    assert refused.status_code == 400 and refused.json()["field"] == "published_text"
    empty = api.send("post", f"/requests/{row.pk}/publish", {"published_text": "   "})
    assert empty.status_code == 400
    extra = api.send("post", f"/requests/{row.pk}/publish",
                     {"published_text": PUBLIC_TEXT, "published": True, "asked": "x"})
    assert extra.status_code == 400
    row.refresh_from_db()
    assert not row.published


def test_bad_requests_are_coded_errors(api: Api) -> None:
    future = api.send("post", "/requests", {"received_on": "2999-01-01", "authority": "x",
                                            "kind": "y", "asked": "z"})
    assert future.status_code == 400 and future.json()["field"] == "received_on"
    before = api.send("post", "/requests", {"received_on": "2026-03-02", "authority": "x",
                                            "kind": "y", "asked": "z",
                                            "answered_on": "2026-03-01"})
    assert before.status_code == 400 and before.json()["field"] == "answered_on"
    assert api.get("/requests/99999999999999").status_code == 404
    assert api.get("/requests/0").status_code == 404


def test_the_register_pages_record_and_publish(client: Any, admin: Any, english: None) -> None:
    login_with_second_factor(client, admin)
    bad = client.post("/transparency/requests/", {"received_on": "2026-03-02",
                                                 "authority": "", "kind": "identification",
                                                 "asked": PRIVATE_ASKED})
    assert bad.status_code == 200 and "This field is required" in bad.content.decode()
    assert PRIVATE_ASKED in bad.content.decode()  # nothing typed is lost
    added = client.post("/transparency/requests/", {
        "received_on": "2026-03-02", "authority": "Gendarmerie of Lyon",
        "kind": "identification", "asked": PRIVATE_ASKED})
    assert added.status_code == 302
    row = AuthorityRequest.objects.get()
    detail = client.get(added["Location"])
    assert PRIVATE_ASKED in detail.content.decode()
    refused = client.post(added["Location"], {"published_text": PRIVATE_ASKED})
    assert "rewrite it without personal data" in refused.content.decode()
    client.post(added["Location"], {"published_text": PUBLIC_TEXT})
    row.refresh_from_db()
    assert row.published and row.published_text == PUBLIC_TEXT


def test_the_cli_adds_lists_and_publishes(admin: Any) -> None:
    from chaton.cli.transparency import app

    runner = CliRunner()
    added = runner.invoke(app, ["request", "add", "--received-on", "2026-03-02",
                                "--authority", "Gendarmerie of Lyon", "--kind", "identification",
                                "--asked", PRIVATE_ASKED])
    assert added.exit_code == 0, added.output
    row = AuthorityRequest.objects.get()
    listed = runner.invoke(app, ["request", "list"])
    assert f"#{row.pk} 2026-03-02 Gendarmerie of Lyon — identification [private]" in \
        listed.output
    published = runner.invoke(app, ["request", "publish", str(row.pk), "--text", PUBLIC_TEXT])
    assert published.exit_code == 0, published.output
    row.refresh_from_db()
    assert row.published


def test_the_settings_page_shows_clear_errors_and_saves(client: Any, admin: Any, english: None,
                                                       member: Any) -> None:
    client.force_login(member)
    assert client.get("/transparency/settings/").status_code == 403
    login_with_second_factor(client, admin)
    form = {"name": "Chaton Demo", "type": "ASSOCIATION", "status": "ACTIVE",
            "website": "chaton-demo.example.org", "country_code": "FR",
            "description": "Our collective", "funding": "liberapay = https://liberapay.com/x/"}
    bad = client.post("/transparency/settings/", form)
    body = bad.content.decode()
    assert bad.status_code == 200 and "absolute address" in body and "Our collective" in body
    assert not OrganizationProfile.objects.exists()
    bad_funding = client.post("/transparency/settings/", form | {
        "website": "https://chaton-demo.example.org/", "funding": "liberapay"})
    assert "name = address" in bad_funding.content.decode()
    saved = client.post("/transparency/settings/", form | {
        "website": "https://chaton-demo.example.org/"})
    assert saved.status_code == 302
    profile = OrganizationProfile.objects.get()
    assert profile.funding == {"liberapay": "https://liberapay.com/x/"}
    assert AuditLog.objects.filter(action="transparency.profile_update").count() == 1


def test_the_profile_api(api: Api, member_api: Api) -> None:
    assert member_api.send("patch", "/profile", {"name": "Taken over"}).status_code == 403
    changed = api.send("patch", "/profile", {"name": "Chaton Demo", "country_code": "be"})
    assert changed.status_code == 200 and changed.json()["country_code"] == "BE"
    bad = api.send("patch", "/profile", {"contact_email": "nobody"})
    assert bad.status_code == 400 and bad.json()["field"] == "contact_email"
    dates = api.send("patch", "/profile", {"chatons_start_date": "2020-01-01",
                                           "chatons_end_date": "2019-01-01"})
    assert dates.status_code == 400 and dates.json()["field"] == "chatons_end_date"


def test_the_answer_is_recorded_later_and_stays_private(client: Any, api: Api,
                                                       member_api: Api) -> None:
    row = record(answered="", answered_on=None)
    assert member_api.send("post", f"/requests/{row.pk}/answer", {
        "answered": PRIVATE_ANSWER, "answered_on": "2026-03-09"}).status_code == 403
    early = api.send("post", f"/requests/{row.pk}/answer",
                     {"answered": PRIVATE_ANSWER, "answered_on": "2026-03-01"})
    assert early.status_code == 400 and early.json()["field"] == "answered_on"
    answered = api.send("post", f"/requests/{row.pk}/answer",
                        {"answered": PRIVATE_ANSWER, "answered_on": "2026-03-09"})
    assert answered.status_code == 200 and answered.json()["answered"] == PRIVATE_ANSWER
    actions.do_publish_authority_request(row, acting_user=None, published_text=PUBLIC_TEXT)
    assert_nothing_private(client.get("/transparency/?lang=en").content.decode())
    assert_nothing_private(json.dumps(client.get(API + "/public/requests").json()))


def test_the_settings_page_sets_a_hosts_facts(client: Any, admin: Any, english: None) -> None:
    from chaton.services.models import Host
    from chaton.transparency.models import HostFacts

    host = Host.objects.create(name="main", docker_url="unix:///run/docker.sock",
                               is_default=True)
    login_with_second_factor(client, admin)
    page = client.get("/transparency/settings/").content.decode()
    assert 'id="host-main"' in page
    prefix = f"host-{host.pk}-"
    bad = client.post("/transparency/settings/", {
        "form": "host", "host": "main", prefix + "provider_type": "HOSTEDSERVER",
        prefix + "country_code": "F1"})
    assert bad.status_code == 200 and "two letters" in bad.content.decode()
    saved = client.post("/transparency/settings/", {
        "form": "host", "host": "main", prefix + "provider_type": "HOSTEDSERVER",
        prefix + "server_type": "VIRTUAL", prefix + "country_code": "fr"})
    assert saved.status_code == 302
    facts = HostFacts.objects.get(host=host)
    assert (facts.provider_type, facts.server_type, facts.country_code) == (
        "HOSTEDSERVER", "VIRTUAL", "FR")


def test_a_line_break_cannot_add_a_key_to_the_files(api: Api, client: Any) -> None:
    for field in ("website", "legal_url", "contact_url", "logo"):
        sneaky = api.send("patch", "/profile",
                          {field: "https://a.example.org/\nsubs.evil=https://evil.example/x"})
        assert sneaky.status_code == 400 and sneaky.json()["field"] == field
    funding = api.send("patch", "/profile", {"funding": {
        "liberapay": "https://a.example.org/\rsubs.evil=https://evil.example/x"}})
    assert funding.status_code == 400
    api.send("patch", "/profile", {"name": "Chaton\nsubs.evil = https://evil.example/x",
                                   "description": "two\nlines"})
    text = client.get("/.well-known/chatonsinfos/organization.properties").content.decode()
    assert "\nsubs.evil" not in text
