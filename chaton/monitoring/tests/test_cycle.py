"""The cycle: states, incidents after 3 failures, alerts once, resolution with its duration,
gaps of no data, maintenance silence, hanging probes, certificate warnings, roll-ups."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from chaton.core import clock
from chaton.monitoring import cycle, rollups
from chaton.monitoring.engine import ProbeResult, ProbeSpec
from chaton.monitoring.models import Incident, Maintenance, Probe, Result, Rollup, Source, State
from chaton.notifications import outbox

# The alerts are read in English (the site's language makes them).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def make_probe(key: str = "custom:pads", **fields) -> Probe:
    values = {"name": "Pads", "kind": "http", "target": "https://pads.example.org/",
              "source": Source.CUSTOM, "service": "Pads (pads.example.org)"}
    values.update(fields)
    return Probe.objects.create(key=key, **values)


_capture = []


@pytest.fixture(autouse=True)
def commits(django_capture_on_commit_callbacks):
    _capture.append(django_capture_on_commit_callbacks)
    yield
    _capture.pop()


def tick(minutes: float = 1, **kwargs) -> cycle.CycleReport:
    """Move the clock by ``minutes`` then run a cycle (its commit callbacks run: the alerts'
    first attempt)."""
    clock.travel(clock._offset + dt.timedelta(minutes=minutes))
    with _capture[-1](execute=True):
        return cycle.run_cycle(reconcile=False, **kwargs)


def fail(engine, key: str, error: str = "[STATUS] (503) == 200") -> None:
    engine.results[key] = ProbeResult(key, False, 12.0, error, status=503)


def heal(engine, key: str) -> None:
    engine.results.pop(key, None)


def test_an_incident_opens_after_three_failures_alerts_once_and_resolves_with_duration(
        engine, notifier, tech):
    probe = make_probe()
    tick()
    assert Probe.objects.get().state == State.UP
    fail(engine, probe.key)
    tick()
    tick()
    probe.refresh_from_db()
    assert probe.state == State.DOWN and probe.consecutive_failures == 2
    assert not Incident.objects.exists()
    report = tick()
    assert report.opened == [probe.key]
    incident = Incident.objects.get()
    assert incident.first_error == "[STATUS] (503) == 200" and incident.is_open
    tick()
    tick()
    assert len(notifier.mails) == 1 and len(notifier.posts) == 1
    assert notifier.mails[0].recipients == ("wren@example.org",)
    assert "Down: Pads" in notifier.mails[0].subject
    heal(engine, probe.key)
    tick()
    assert Incident.objects.get().is_open  # one success is not enough
    report = tick()
    assert report.resolved == [probe.key]
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert abs(incident.duration - dt.timedelta(minutes=4)) < dt.timedelta(seconds=1)
    assert len(notifier.mails) == 2 and len(notifier.posts) == 2
    assert "Resolved" in notifier.mails[1].subject and "4 min" in notifier.mails[1].subject
    assert Probe.objects.get().state == State.UP


def test_a_gap_in_chatons_running_is_no_data_never_an_incident(engine, notifier, tech):
    probe = make_probe()
    tick()
    fail(engine, probe.key)
    tick()
    tick()
    # The worker is stopped for 10 minutes: nothing checks.
    clock.travel(clock._offset + dt.timedelta(minutes=10))
    cycle.mark_gaps(clock.now())
    assert Probe.objects.get().state == State.UNKNOWN
    # Back: one more failure does not make three with the ones before the gap.
    tick(0)
    assert not Incident.objects.exists()
    assert notifier.mails == []
    # The roll-up says "no data" for the gap, not down.
    results = list(Result.objects.order_by("at"))
    summary = rollups.summarize(results, results[0].at, results[-1].at, probe.interval_seconds)
    assert summary.unknown_seconds >= 8 * 60 - 1
    assert summary.down_seconds <= 3 * 60 + 1


def test_a_maintenance_window_silences_alerts_of_its_services_only(engine, notifier, tech,
                                                                   admin):
    silenced = make_probe("custom:pads")
    other = make_probe("custom:cloud", service="Cloud (cloud.example.org)",
                       target="https://cloud.example.org/")
    Maintenance.objects.create(title="Upgrade", starts_at=clock.now(),
                               ends_at=clock.now() + dt.timedelta(hours=1),
                               services=[silenced.service], created_by=admin)
    fail(engine, silenced.key)
    fail(engine, other.key)
    for _ in range(3):
        tick()
    assert Incident.objects.count() == 2
    assert len(notifier.mails) == 1 and "Cloud" in notifier.mails[0].subject


def test_an_alert_failure_never_stops_probing_and_is_retried(engine, notifier, tech):
    notifier.webhook_down = True
    notifier.mail_down = True
    probe = make_probe()
    fail(engine, probe.key)
    for _ in range(3):
        tick()
    assert Incident.objects.filter(resolved_at=None).count() == 1
    for _ in range(3):
        tick()
    assert Result.objects.count() == 6
    notifier.webhook_down = notifier.mail_down = False
    clock.travel(clock._offset + dt.timedelta(minutes=10))
    outbox.drain()
    assert len(notifier.mails) == 1 and len(notifier.posts) == 1


def test_a_reminder_goes_out_until_acknowledged(engine, notifier, tech, admin, settings):
    from chaton.monitoring.actions import do_acknowledge_incident

    probe = make_probe()
    fail(engine, probe.key)
    for _ in range(3):
        tick()
    tick(settings.CHATON.monitoring.reminder_hours * 60)
    assert len(notifier.mails) == 2 and "Still down" in notifier.mails[1].subject
    do_acknowledge_incident(Incident.objects.get(), acting_user=admin, note="on it")
    tick(settings.CHATON.monitoring.reminder_hours * 60)
    assert len(notifier.mails) == 2


def test_a_hanging_probe_times_out_without_holding_the_others(notifier):
    """The engine bounds each probe by its timeout: here a server that never answers."""
    import socket

    from chaton.monitoring.engine import real_engine

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts, never answers
    port = listener.getsockname()[1]
    try:
        specs = [ProbeSpec("hang", "http", f"http://127.0.0.1:{port}/", timeout=1.0),
                 ProbeSpec("closed", "tcp", "127.0.0.1:1", timeout=1.0)]
        started = time.monotonic()
        engine = real_engine()
        try:
            results = engine.run(specs)
        finally:
            engine.close()
        assert time.monotonic() - started < 3
        assert [result.ok for result in results] == [False, False]
        assert "timed out" in results[0].error.lower() or "timeout" in results[0].error.lower()
    finally:
        listener.close()


def test_a_certificate_five_days_from_expiry_is_a_warning(engine, notifier):
    probe = make_probe()
    expires = clock.now() + dt.timedelta(days=5, hours=1)
    engine.results[probe.key] = ProbeResult(probe.key, True, 30.0, cert_expires_at=expires)
    tick(0)
    probe.refresh_from_db()
    assert probe.state == State.WARNING
    assert "expires in 5 day" in probe.last_error
    assert probe.cert_expires_at == expires


def test_rollups_count_up_down_unknown_and_percentiles_then_raw_results_are_pruned(
        engine, notifier, settings):
    probe = make_probe()
    durations = iter(range(1, 1000))
    engine.results[probe.key] = lambda spec: ProbeResult(spec.key, True, float(next(durations)))
    clock.travel(rollups._floor(clock.now(), "hour") + dt.timedelta(hours=1) - clock.now()
                 + clock._offset)
    for _ in range(30):
        tick()
    fail(engine, probe.key)
    for _ in range(10):
        tick()
    clock.travel(clock._offset + dt.timedelta(hours=1))
    rollups.roll_up_all()
    hour = Rollup.objects.get(probe=probe, period="hour",
                              start=rollups._floor(Result.objects.order_by("at").first().at,
                                                   "hour"))
    assert hour.checks == 40 and hour.failures == 10
    assert hour.up_seconds == pytest.approx(30 * 60, abs=61)
    assert hour.down_seconds == pytest.approx(10 * 60, abs=61)
    assert hour.unknown_seconds == pytest.approx(20 * 60, abs=121)
    assert hour.p50_ms == 15 and hour.p99_ms == 30
    clock.travel(clock._offset + dt.timedelta(hours=settings.CHATON.monitoring.raw_hours + 1))
    rollups.roll_up_all()
    assert rollups.prune() == 40
    assert Rollup.objects.filter(probe=probe, period="hour").exists()
    assert Rollup.objects.filter(probe=probe, period="day").exists()


def test_a_backup_older_than_its_threshold_opens_an_incident(engine, notifier, tech):
    from chaton.backups import actions as backup_actions

    repository = backup_actions.do_create_repository(
        "local", kind="local", location="/srv/backups/demo", password="correct horse battery",
        acting_user=None)
    plan = backup_actions.do_create_plan("nightly", repository, acting_user=None)
    cycle.run_cycle(reconcile=True)
    age = Probe.objects.get(key="backup:nightly:age")
    assert age.state == State.UP
    Probe.objects.exclude(key="backup:nightly:age").update(enabled=False)
    clock.travel(dt.timedelta(hours=plan.stale_after_hours + 1))
    for _ in range(3):
        tick(5)
    incident = Incident.objects.get(probe=age)
    assert "older than" in incident.first_error
    assert len(notifier.mails) == 1 and "Backups" in notifier.mails[0].subject


def test_the_demo_is_watched_by_derived_probes_only(engine):
    from chaton.core.demo import DemoReport
    from chaton.monitoring import demo

    report = DemoReport()
    demo.load(report)
    assert report.created and Probe.objects.filter(source=Source.DERIVED).exists()
    assert not Probe.objects.filter(source=Source.CUSTOM).exists()
    again = DemoReport()
    demo.load(again)
    assert again.created == []
