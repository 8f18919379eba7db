"""The public status page, its JSON and Atom feed, and /metrics: what visitors and scrapers
rely on, and what they must never see or reach."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import feedparser
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from chaton.core import clock
from chaton.monitoring import public
from chaton.monitoring.models import Incident, Maintenance, Probe, Rollup

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
PRIVATE_TARGET = "http://10.20.30.40:8080/internal-health"
PRIVATE_ERROR = "connect to 10.20.30.40:8080 refused (token=hunter2)"
TOKEN = "scrape-token-of-the-collective-0123456789"


def make_probe(key: str, service: str, *, public: bool = True, state: str = "up",
               kind: str = "http", target: str = "https://pads.example.org/",
               **fields: Any) -> Probe:
    return Probe.objects.create(key=key, name=key, kind=kind, target=target, service=service,
                                public=public, state=state, last_checked_at=clock.now(),
                                last_duration_ms=42.0, **fields)


def day_rollup(probe: Probe, day: dt.date, *, up: float = 86400.0, down: float = 0.0,
               unknown: float = 0.0) -> None:
    Rollup.objects.create(probe=probe, period="day", start=clock.start_of_day(day),
                          up_seconds=up, down_seconds=down, unknown_seconds=unknown,
                          checks=1440, failures=int(down // 60), p50_ms=40, p95_ms=80,
                          p99_ms=120)


@pytest.fixture
def history() -> dict[str, Any]:
    """Pads (public, 90 days, one bad day, two days without data, an open incident),
    Chat (public, up), a private probe with an internal target and an incident, and
    maintenance windows: one now, one next week, one over."""
    today = clock.today()
    pads = make_probe("instance-pads-https", "Pads", state="down",
                      target="https://192.168.77.5/health", last_error=PRIVATE_ERROR)
    chat = make_probe("instance-chat-https", "Chat")
    secret = make_probe("host-backstage-docker", "Backstage", public=False, state="down",
                        kind="docker", target=PRIVATE_TARGET, last_error=PRIVATE_ERROR)
    for offset in range(90):
        day = today - dt.timedelta(days=offset)
        if offset in (10, 11):
            day_rollup(pads, day, up=0.0, down=0.0, unknown=86400.0)  # Chaton was not running
            continue
        day_rollup(pads, day, up=43200.0 if offset == 5 else 86400.0,
                   down=43200.0 if offset == 5 else 0.0)
        day_rollup(chat, day)
        day_rollup(secret, day, up=0.0, down=86400.0)
    Rollup.objects.create(probe=pads, period="hour", start=clock.now() - dt.timedelta(hours=1),
                          up_seconds=1800, down_seconds=1800, checks=60, failures=30)
    now = clock.now()
    incident = Incident.objects.create(probe=pads, opened_at=now - dt.timedelta(minutes=20),
                                       first_error=PRIVATE_ERROR, last_error=PRIVATE_ERROR,
                                       note="the disk of 192.168.77.5 is full")
    resolved = Incident.objects.create(probe=chat, opened_at=now - dt.timedelta(days=2),
                                       resolved_at=now - dt.timedelta(days=2, minutes=-35),
                                       first_error=PRIVATE_ERROR)
    hidden = Incident.objects.create(probe=secret, opened_at=now - dt.timedelta(hours=3),
                                     first_error=PRIVATE_ERROR)
    Maintenance.objects.create(starts_at=now - dt.timedelta(hours=1),
                               ends_at=now + dt.timedelta(hours=1), title="Chat upgrade",
                               services=["Chat"])
    Maintenance.objects.create(starts_at=now + dt.timedelta(days=7),
                               ends_at=now + dt.timedelta(days=7, hours=2),
                               title="New storage for the pads", description="Two hours.")
    Maintenance.objects.create(starts_at=now - dt.timedelta(days=3),
                               ends_at=now - dt.timedelta(days=3, hours=-1),
                               title="Long finished works")
    return {"pads": pads, "chat": chat, "secret": secret, "incident": incident,
            "resolved": resolved, "hidden": hidden}


def bars(page: str, service: str) -> list[tuple[str, str]]:
    """Return the (class, title) of each bar of ``service`` on the status page."""
    section = page.split(f'<span class="name">{service}</span>', 1)[1].split("</ol>", 1)[0]
    return re.findall(r'<li class="(\w+)" title="([^"]*)"></li>', section)


# -- the status page ------------------------------------------------------------


def test_the_status_page_shows_services_bars_incidents_and_maintenance(client, history,
                                                                        english) -> None:
    response = client.get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    pads = bars(page, "Pads")
    assert len(pads) == 90 and len(bars(page, "Chat")) == 90
    today = clock.today()
    by_day = {title.split(":")[0]: level for level, title in pads}
    assert by_day[today.isoformat()] == "up"
    assert by_day[(today - dt.timedelta(days=5)).isoformat()] == "down"
    # Days Chaton did not run are "no data", never down.
    assert by_day[(today - dt.timedelta(days=10)).isoformat()] == "none"
    assert "no data" in dict((title.split(":")[0], title) for _level, title in pads)[
        (today - dt.timedelta(days=11)).isoformat()]
    assert "unavailable" in page.split('<span class="name">Pads</span>', 1)[1][:200]
    assert f'id="incident-{history["incident"].pk}"' in page
    assert f'id="incident-{history["resolved"].pk}"' in page
    assert "Chat upgrade" in page and "New storage for the pads" in page
    assert "Long finished works" not in page
    assert "Some services are unavailable." in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3", "")


def test_the_status_page_is_cacheable_and_sets_no_cookie(client, history) -> None:
    response = client.get("/status/")
    assert "max-age=30" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert response.has_header("ETag")
    assert not response.cookies, "no session or CSRF cookie on a public, cached page"
    again = client.get("/status/", HTTP_IF_NONE_MATCH=response["ETag"],
                       HTTP_ACCEPT_LANGUAGE=response["Content-Language"])
    assert again.status_code == 304 and not again.content
    assert 'rel="stylesheet"' not in response.content.decode()  # no external asset


def test_the_status_page_speaks_french_and_english_through_plain_links(client, history) -> None:
    english = client.get("/status/?lang=en")
    assert english["Content-Language"] == "en"
    assert '<html lang="en">' in english.content.decode()
    french = client.get("/status/?lang=fr")
    assert french["Content-Language"] == "fr" and '<html lang="fr">' in french.content.decode()
    assert french["ETag"] != english["ETag"]
    assert "Accept-Language" in english["Vary"]


def test_private_probes_targets_and_errors_never_reach_the_public(client, history) -> None:
    bodies = [client.get(url).content.decode() for url in
              ("/status/?lang=en", "/status/?lang=fr", "/status.json", "/status/feed.atom")]
    for body in bodies:
        for secret in ("10.20.30.40", "192.168.77.5", "hunter2", "Backstage",
                       "instance-pads-https", "host-backstage-docker", "internal-health",
                       "disk of"):
            assert secret not in body
        assert f"incident-{history['hidden'].pk}\"" not in body
    assert "Backstage" not in json.dumps(json.loads(bodies[2]))


def test_a_disabled_public_probe_is_not_shown(client, history) -> None:
    Probe.objects.filter(pk=history["chat"].pk).update(enabled=False)
    page = client.get("/status/?lang=en").content.decode()
    assert '<span class="name">Chat</span>' not in page


def test_status_page_queries_do_not_grow_with_services(client, history,
                                                       django_assert_max_num_queries) -> None:
    for index in range(20):
        probe = make_probe(f"extra-{index}", f"Extra {index}")
        day_rollup(probe, clock.today())
    with django_assert_max_num_queries(12):
        assert client.get("/status/?lang=en").status_code == 200


def test_an_empty_status_page_says_so(client, english) -> None:
    page = client.get("/status/?lang=en").content.decode()
    assert "No public service yet." in page and "All services are running." in page


# -- JSON and Atom -----------------------------------------------------------------


def test_status_json_gives_states_uptimes_incidents_and_maintenance(client, history) -> None:
    response = client.get("/status.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "max-age=30" in response["Cache-Control"] and not response.cookies
    data = json.loads(response.content)
    services = {service["name"]: service for service in data["services"]}
    assert set(services) == {"Pads", "Chat"}
    assert services["Pads"]["state"] == "down"
    assert services["Chat"]["in_maintenance"] is True
    assert services["Chat"]["uptime"] == {"24h": None, "7d": 100.0, "30d": 100.0, "90d": 100.0}
    # Pads: 86 full days and one half day over the 88 days with data.
    assert services["Pads"]["uptime"]["90d"] == pytest.approx(100 * 87.5 / 88, abs=0.001)
    assert services["Pads"]["uptime"]["7d"] == pytest.approx(100 * 6.5 / 7, abs=0.001)
    assert services["Pads"]["uptime"]["24h"] == 50.0
    assert data["state"] == "down"
    incidents = {incident["id"]: incident for incident in data["incidents"]}
    assert set(incidents) == {history["incident"].pk, history["resolved"].pk}
    assert incidents[history["incident"].pk]["resolved_at"] is None
    assert incidents[history["incident"].pk]["duration_seconds"] is None
    assert incidents[history["resolved"].pk]["duration_seconds"] == 35 * 60
    assert [window["title"] for window in data["maintenance"]] == [
        "Chat upgrade", "New storage for the pads"]
    # Nothing changed: the same document, the same ETag, and a 304 for a client that has it.
    again = client.get("/status.json", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 or again["ETag"] != response["ETag"]


def test_the_atom_feed_is_valid_and_lists_public_incidents(client, history, english) -> None:
    response = client.get("/status/feed.atom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert len(parsed.entries) == 2
    assert {entry.title for entry in parsed.entries} == {
        "Pads: incident in progress", "Chat: resolved incident"}
    # RFC 4287's required elements, read with a plain XML parser.
    root = ET.fromstring(response.content)  # noqa: S314 -- our own page, in a test
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{name}") is not None and root.find(f"{ATOM}{name}").text
    entries = root.findall(f"{ATOM}entry")
    ids = [entry.find(f"{ATOM}id").text for entry in entries]
    assert len(set(ids)) == 2
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert entry.find(f"{ATOM}{name}").text
        assert entry.find(f"{ATOM}summary") is not None or entry.find(f"{ATOM}content") is not None
    resolved = next(entry for entry in entries
                    if entry.find(f"{ATOM}title").text.startswith("Chat"))
    assert "(35 min)" in resolved.find(f"{ATOM}summary").text


# -- /metrics ---------------------------------------------------------------------


@pytest.fixture
def metrics_config(settings, monkeypatch) -> Any:
    """The [monitoring] section, whatever its other keys: a token and an allow-list."""
    section = getattr(settings.CHATON, "monitoring", None)
    if section is None:
        section = SimpleNamespace()
        monkeypatch.setattr(settings.CHATON, "monitoring", section, raising=False)
    monkeypatch.setattr(section, "metrics_token", TOKEN, raising=False)
    monkeypatch.setattr(section, "metrics_allow", ["192.0.2.0/28", "2001:db8::7"],
                        raising=False)
    return section


def scrape(client: Client, **headers: str) -> Any:
    return client.get("/metrics", **headers)


def families(response: Any) -> dict[str, Any]:
    return {family.name: family for family in
            text_string_to_metric_families(response.content.decode())}


def test_metrics_with_the_token_are_valid_exposition_format(client, history,
                                                            metrics_config) -> None:
    cert = clock.now() + dt.timedelta(days=40)
    Probe.objects.filter(pk=history["chat"].pk).update(cert_expires_at=cert)
    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = families(response)
    success = {sample.labels["instance"]: sample for sample in found["probe_success"].samples}
    assert success["instance-pads-https"].value == 0.0
    assert success["instance-chat-https"].value == 1.0
    assert success["instance-chat-https"].labels == {"instance": "instance-chat-https",
                                                     "service": "Chat", "kind": "http"}
    # Private probes are there too: /metrics is for the collective's own Prometheus.
    assert success["host-backstage-docker"].labels["kind"] == "docker"
    durations = {sample.labels["instance"]: sample.value
                 for sample in found["probe_duration_seconds"].samples}
    assert durations["instance-chat-https"] == pytest.approx(0.042)
    expiry = found["probe_ssl_earliest_cert_expiry"].samples
    assert [(sample.labels["instance"], sample.value) for sample in expiry] == [
        ("instance-chat-https", pytest.approx(cert.timestamp()))]
    for name in ("chaton_directory_sync_pending", "chaton_members", "chaton_decisions_open",
                 "chaton_incidents_open", "chaton_accounts", "chaton_instances",
                 "chaton_backup_last_success_timestamp_seconds",
                 "chaton_backup_last_drill_success"):
        assert name in found
    assert found["chaton_incidents_open"].samples[0].value == 2.0


def test_metrics_report_backups_directory_accounts_and_decisions(client, metrics_config,
                                                                 directory) -> None:
    from chaton.backups import actions as backup_actions
    from chaton.backups.models import Drill, Run
    from chaton.directory import actions as directory_actions
    from chaton.directory.models import SyncState

    repository = backup_actions.do_create_repository(
        "offsite", kind="local", location="/srv/backups/repo", password="correct horse",
        acting_user=None)
    plan = backup_actions.do_create_plan("nightly", repository, acting_user=None)
    finished = clock.now() - dt.timedelta(hours=3)
    Run.objects.create(repository=repository, plan=plan, kind="backup", outcome="succeeded",
                       started_at=finished - dt.timedelta(minutes=5), finished_at=finished)
    Run.objects.create(repository=repository, plan=plan, kind="backup", outcome="failed",
                       started_at=clock.now(), finished_at=clock.now())
    Drill.objects.create(plan=plan, source_name="db", source_kind="postgres",
                         started_at=clock.now() - dt.timedelta(days=2), outcome="passed")
    Drill.objects.create(plan=plan, source_name="db", source_kind="postgres",
                         started_at=clock.now() - dt.timedelta(days=1), outcome="failed")
    directory_actions.do_create_account("noa", acting_user=None, display_name="Noa",
                                        email="noa@example.org")
    SyncState.objects.update_or_create(pk=1, defaults={"pending_since": clock.now()})
    found = families(scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    backup = found["chaton_backup_last_success_timestamp_seconds"].samples
    assert [(sample.labels, sample.value) for sample in backup] == [
        ({"plan": "nightly"}, pytest.approx(finished.timestamp()))]
    assert found["chaton_backup_last_drill_success"].samples[0].value == 0.0
    assert found["chaton_directory_sync_pending"].samples[0].value == 1.0
    accounts = {sample.labels["state"]: sample.value
                for sample in found["chaton_accounts"].samples}
    assert accounts.get("active") == 1.0


def test_metrics_refuse_a_scraper_without_the_token(client, history, metrics_config) -> None:
    refused = scrape(client)
    assert refused.status_code == 401 and "probe_success" not in refused.content.decode()
    assert refused["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [
    "Bearer wrong-token", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ",
    f"Basic {TOKEN}", f"bearer{TOKEN}", TOKEN])
def test_metrics_refuse_a_wrong_token(client, history, metrics_config, header) -> None:
    response = scrape(client, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and b"probe_success" not in response.content


def test_metrics_refuse_a_token_in_the_query_string(client, history, metrics_config) -> None:
    for query in (f"?token={TOKEN}", f"?access_token={TOKEN}", f"?authorization=Bearer+{TOKEN}"):
        response = client.get(f"/metrics{query}")
        assert response.status_code == 401 and b"probe_success" not in response.content


def test_metrics_open_to_an_allowed_address_only(client, history, metrics_config) -> None:
    assert scrape(client, REMOTE_ADDR="192.0.2.9").status_code == 200
    assert scrape(client, REMOTE_ADDR="2001:db8::7").status_code == 200
    for outside in ("192.0.2.16", "127.0.0.1", "2001:db8::8", "not-an-address"):
        assert scrape(client, REMOTE_ADDR=outside).status_code == 401
    # Forwarding headers are the client's to forge: they count for nothing.
    assert scrape(client, REMOTE_ADDR="203.0.113.5",
                  HTTP_X_FORWARDED_FOR="192.0.2.9").status_code == 401
    # An allowed address with a wrong token is still a wrong token.
    assert scrape(client, REMOTE_ADDR="192.0.2.9",
                  HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_metrics_are_closed_when_nothing_is_configured(client, history, metrics_config,
                                                       monkeypatch) -> None:
    monkeypatch.setattr(metrics_config, "metrics_token", "")
    monkeypatch.setattr(metrics_config, "metrics_allow", [])
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer "}, {"REMOTE_ADDR": "127.0.0.1"}):
        assert scrape(client, **headers).status_code == 403
    # An empty configured token never matches an empty bearer.
    monkeypatch.setattr(metrics_config, "metrics_allow", ["192.0.2.0/28"])
    assert scrape(client, REMOTE_ADDR="203.0.113.5").status_code == 403


def test_metrics_are_rebuilt_at_each_scrape(client, history, metrics_config) -> None:
    first = families(scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    Probe.objects.filter(pk=history["pads"].pk).update(state="up")
    second = families(scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    value = {family: {s.labels["instance"]: s.value for s in found["probe_success"].samples}
             for family, found in (("first", first), ("second", second))}
    assert value["first"]["instance-pads-https"] == 0.0
    assert value["second"]["instance-pads-https"] == 1.0
    assert public.render_metrics() == public.render_metrics()


def test_status_pages_answer_get_only(client) -> None:
    for url in ("/status/", "/status.json", "/status/feed.atom", "/metrics"):
        assert Client(enforce_csrf_checks=True).post(url).status_code in (403, 405)
    assert reverse("status") == "/status/" and settings.LANGUAGE_CODE
