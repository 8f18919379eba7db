"""The status page and /metrics follow what the cycle sees: a public service that fails opens
an incident the page shows and /metrics reports; resolved, it stays listed; rolled up, its
day's bar shows the downtime."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaton.core import clock
from chaton.monitoring import cycle, rollups
from chaton.monitoring.engine import ProbeResult
from chaton.monitoring.models import Incident, Probe, Source

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        yield


def tick(minutes: float = 1) -> None:
    clock.travel(clock._offset + dt.timedelta(minutes=minutes))
    cycle.run_cycle(reconcile=False)


def scrape(client, settings, monkeypatch) -> dict[str, float]:
    monkeypatch.setattr(settings.CHATON.monitoring, "metrics_allow", ["127.0.0.1"])
    body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    return {sample.labels.get("instance", sample.name): sample.value
            for family in text_string_to_metric_families(body)
            if family.name in ("probe_success", "chaton_incidents_open")
            for sample in family.samples}


def test_a_failing_public_service_shows_on_the_status_page_and_in_metrics(
        client, engine, notifier, tech, settings, monkeypatch) -> None:
    probe = Probe.objects.create(key="custom-pads", name="Pads", kind="http",
                                 target="https://10.9.8.7/", source=Source.CUSTOM,
                                 service="Pads", public=True)
    tick()
    assert json.loads(client.get("/status.json").content)["services"][0]["state"] == "up"
    engine.results[probe.key] = ProbeResult(probe.key, False, 15.0,
                                            "connect to 10.9.8.7:443 refused")
    for _ in range(3):
        tick()
    incident = Incident.objects.get()
    page = client.get("/status/?lang=en").content.decode()
    assert f'id="incident-{incident.pk}"' in page and "Unavailable since" in page
    assert "10.9.8.7" not in page
    assert scrape(client, settings, monkeypatch) == {"custom-pads": 0.0,
                                                     "chaton_incidents_open": 1.0}

    engine.results.pop(probe.key)
    tick()
    tick()
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    data = json.loads(client.get("/status.json").content)
    assert data["state"] == "up"
    assert data["incidents"][0]["resolved_at"] is not None
    assert scrape(client, settings, monkeypatch)["custom-pads"] == 1.0

    clock.travel(clock._offset + dt.timedelta(days=1))
    rollups.roll_up_all()
    data = json.loads(client.get("/status.json").content)
    uptime = data["services"][0]["uptime"]["90d"]
    assert uptime is not None and 0 < uptime < 100
