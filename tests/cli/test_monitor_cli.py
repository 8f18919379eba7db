"""``chaton monitor``: probes, a cycle, incidents, maintenance windows, the test alert; errors
as one line, exit 2; a member acting with ``--as`` is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from rich.console import Console
from typer.testing import CliRunner

from chaton.adapters.notifications.fake import FakeNotifier
from chaton.cli import runtime
from chaton.cli.app import app
from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.monitoring.engine import FakeProbeEngine, ProbeResult, use_probes
from chaton.monitoring.models import Incident, Maintenance, Probe
from chaton.notifications import outbox

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("english")]


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNotifier]:
    monkeypatch.setattr(runtime, "_console", Console(width=300, highlight=False, soft_wrap=True))
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url",
                        "https://chat.example.org/hooks/abc")
    notifier = FakeNotifier()
    with outbox.use_notifications(notifier):
        yield notifier
    clock.travel(dt.timedelta(0))


def cli(*arguments: str) -> Any:
    return CliRunner().invoke(app, list(arguments))


def test_probes_are_added_listed_shown_run_and_deleted() -> None:
    added = cli("monitor", "probe", "add", "--name", "Association site", "--kind", "http",
                "--target", "https://asso.example.org/", "--condition", "[STATUS] == 200")
    assert added.exit_code == 0, added.output
    probe = Probe.objects.get()
    assert probe.key in added.stdout
    failing = ProbeResult(probe.key, False, 3.0, "[STATUS] (500) == 200")
    engine = FakeProbeEngine({probe.key: failing})
    with use_probes(engine):
        ran = cli("monitor", "run", "--once")
    assert ran.exit_code == 0, ran.output
    assert "checked" in ran.stdout
    probe.refresh_from_db()
    assert probe.state == "down"
    listed = cli("monitor", "list", "--state", "down")
    assert probe.key in listed.stdout and "[STATUS] (500) == 200" in listed.stdout
    shown = cli("monitor", "show", probe.key)
    assert "https://asso.example.org/" in shown.stdout
    deleted = cli("monitor", "probe", "delete", probe.key)
    assert deleted.exit_code == 0 and not Probe.objects.filter(key=probe.key).exists()
    assert AuditLog.objects.filter(action="monitoring.probe_deleted").count() == 1


def test_errors_are_one_line_exit_2_and_nothing_is_added() -> None:
    bad = cli("monitor", "probe", "add", "--name", "x", "--kind", "http", "--target",
              "https://asso.example.org/", "--condition", "[STATUS] = 200")
    assert bad.exit_code == 2 and "expected an operator" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    assert cli("monitor", "show", "custom:9").exit_code == 2
    assert cli("monitor", "incident", "ack", "12").exit_code == 2
    assert cli("monitor", "incident", "ack", "twelve").exit_code == 2
    late = cli("monitor", "maintenance", "add", "--title", "x", "--start", "2030-01-02T10:00",
               "--end", "2030-01-01T10:00")
    assert late.exit_code == 2 and "after the start" in late.output
    assert not Probe.objects.exists() and not Maintenance.objects.exists()


def test_incidents_are_listed_and_acknowledged_maintenance_added_and_listed() -> None:
    probe = Probe.objects.create(key="chaton:web", name="Chaton's web", kind="web",
                                 target="http://127.0.0.1:1/", service="Chaton")
    incident = Incident.objects.create(probe=probe, opened_at=clock.now(), first_error="refused")
    assert "refused" in cli("monitor", "incident", "list", "--open").stdout
    acked = cli("monitor", "incident", "ack", str(incident.pk), "--note", "restarting")
    assert acked.exit_code == 0, acked.output
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None and incident.note == "restarting"
    added = cli("monitor", "maintenance", "add", "--title", "Move to a new disk", "--start",
                "2030-01-01T22:00", "--end", "2030-01-02T01:00", "--service", "Chaton")
    assert added.exit_code == 0, added.output
    assert "Move to a new disk" in cli("monitor", "maintenance", "list").stdout


def test_the_test_alert_and_the_reconcile(wide: FakeNotifier) -> None:
    sent = cli("monitor", "test-alert")
    assert sent.exit_code == 0 and "1 test notification" in sent.stdout
    assert len(wide.posts) == 1
    dry = cli("monitor", "reconcile", "--dry-run")
    assert "+ directory:ldap" in dry.stdout and not Probe.objects.exists()
    cli("monitor", "reconcile")
    assert Probe.objects.filter(key="directory:ldap").exists()
    assert "in step" in cli("monitor", "reconcile").stdout


def test_a_member_acting_with_as_is_refused(directory: Any) -> None:
    from chaton.directory import actions

    actions.do_create_account("robin", acting_user=None, display_name="Robin",
                              email="robin@example.org")
    refused = cli("--as", "robin", "monitor", "probe", "add", "--name", "internal", "--kind",
                  "tcp", "--target", "10.0.0.1:22")
    assert refused.exit_code == 2 and "Only administrators" in refused.output
    assert not Probe.objects.exists()


def test_run_while_another_cycle_runs_on_the_machine_says_so_and_exits_0() -> None:
    """Another process (the worker) holds the cycle's lock: ``monitor run --once`` checks
    nothing, says so in one line and exits 0; once it is released, it runs."""
    import subprocess
    import sys

    from chaton.core import locks
    from chaton.monitoring.cycle import CYCLE_LOCK
    from chaton.monitoring.models import Result

    assert cli("monitor", "probe", "add", "--name", "Association site", "--kind", "http",
               "--target", "https://asso.example.org/").exit_code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; lock = open(sys.argv[1], 'a+'); "
         "fcntl.flock(lock, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
         str(locks.lock_path(CYCLE_LOCK))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    engine = FakeProbeEngine()
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with use_probes(engine):
            busy = cli("monitor", "run", "--once")
        assert busy.exit_code == 0, busy.output
        assert busy.stdout.strip() == ("Another monitoring cycle is running on this machine; "
                                       "this one did nothing.")
        assert engine.cycles == [] and not Result.objects.exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    with use_probes(engine):
        ran = cli("monitor", "run", "--once")
    assert ran.exit_code == 0 and " checked" in ran.stdout, ran.output
    assert len(engine.cycles) == 1
    assert Result.objects.filter(probe__source="custom").count() == 1
