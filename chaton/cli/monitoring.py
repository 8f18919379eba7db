"""``chaton monitor``: probes, incidents, maintenance windows, alerts (see
:mod:`chaton.monitoring`).

``run`` runs cycles in the foreground (``--once``: every probe once, then exit);
the worker runs the same cycles in its long lane.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated

import typer
from django.utils.translation import gettext as _
from rich.table import Table

from chaton.cli.runtime import acting_user, cell, console, setup_django

app = typer.Typer(no_args_is_help=True, add_completion=False)
probe_app = typer.Typer(no_args_is_help=True, add_completion=False)
incident_app = typer.Typer(no_args_is_help=True, add_completion=False)
maintenance_app = typer.Typer(no_args_is_help=True, add_completion=False)
app.add_typer(probe_app, name="probe", help="Custom probes: add, delete.")
app.add_typer(incident_app, name="incident", help="Incidents: list, acknowledge.")
app.add_typer(maintenance_app, name="maintenance", help="Maintenance windows: add, list, delete.")


def _when(value: dt.datetime | None) -> str:
    from django.utils import timezone

    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _moment(text: str, *, field: str) -> dt.datetime:
    """Given ``YYYY-MM-DDTHH:MM`` (the collective's time zone), return the moment."""
    from django.utils import timezone

    from chaton.core.errors import InvalidInput

    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(_("“%(value)s” is not a moment: expected YYYY-MM-DDTHH:MM, for "
                             "example %(example)s.") % {"value": text,
                                                       "example": "2026-03-31T22:00"},
                           field=field) from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


@app.command("list")
def list_probes(
    state: Annotated[str, typer.Option(help="Only probes in this state (up, down, warning, "
                                            "unknown).")] = "",
    service: Annotated[str, typer.Option(help="Only the probes of this service.")] = "",
    kind: Annotated[str, typer.Option(help="Only probes of this kind.")] = "",
) -> None:
    """List the probes: state, last check, last response time, last error."""
    setup_django()
    from chaton.monitoring import queries

    table = Table(_("key"), _("service"), _("kind"), _("state"), _("last checked"), _("ms"),
                  _("last error"))
    for probe in queries.probes(state=state, service=service, kind=kind):
        table.add_row(cell(probe.key), cell(probe.service), cell(probe.kind),
                      cell(probe.get_state_display()), cell(_when(probe.last_checked_at)),
                      cell(f"{probe.last_duration_ms:.0f}" if probe.last_duration_ms is not None
                           else ""), cell(probe.last_error))
    console().print(table)


@app.command("show")
def show_probe(key: Annotated[str, typer.Argument(metavar="KEY")]) -> None:
    """Show one probe: what it checks, its state, its open incident."""
    setup_django()
    from chaton.monitoring import queries

    probe = queries.probe_by_key(key)
    out = console()
    out.print(f"{probe.key}: {probe.name}")
    out.print(f"  {_('kind')}: {probe.kind}  {_('target')}: {probe.target}")
    out.print(f"  {_('service')}: {probe.service}  {_('source')}: {probe.get_source_display()}")
    if probe.conditions:
        out.print(f"  {_('conditions')}: " + "; ".join(probe.conditions))
    out.print(f"  {_('state')}: {probe.get_state_display()}  {_('last checked')}: "
              f"{_when(probe.last_checked_at)}")
    if probe.last_error:
        out.print(f"  {_('last error')}: {probe.last_error}")
    if probe.cert_expires_at:
        out.print(f"  {_('certificate expires')}: {_when(probe.cert_expires_at)}")
    for incident in queries.incidents(probe=probe, limit=5):
        out.print(f"  #{incident.pk} {_when(incident.opened_at)} → "
                  f"{_when(incident.resolved_at) or _('open')}: {incident.first_error}")


@app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="Run every probe once, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between cycles.")] = 10.0,
) -> None:
    """Run monitoring cycles in the foreground (the worker runs them too).

    One cycle runs at a time on the machine: while another (the worker's) runs, a cycle
    here says so and checks nothing; --once then exits with status 0 (the probes are being
    checked, which is what was asked).
    """
    setup_django()
    from chaton.monitoring.cycle import run_cycle

    if once:
        console().print(run_cycle(every=True).summary())
        return
    while True:  # pragma: no cover - stopped by a signal
        console().print(run_cycle().summary())
        time.sleep(interval)


@app.command("reconcile")
def reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change.")] = False,
) -> None:
    """Derive the probes from what Chaton runs: add, update, remove."""
    setup_django()
    from chaton.monitoring import derive

    lines = derive.reconcile(dry_run=dry_run)
    console().print("\n".join(lines) if lines else _("The probes are in step."))


@probe_app.command("add")
def add_probe(
    name: Annotated[str, typer.Option(help="What people see.")],
    kind: Annotated[str, typer.Option(help="http, tcp, tls, dns, smtp, imap or ldap.")],
    target: Annotated[str, typer.Option(help="A URL (http, ldap), HOST:PORT, or a DNS name.")],
    condition: Annotated[list[str] | None, typer.Option(
        help='A condition such as "[STATUS] == 200" (repeat it).')] = None,
    service: Annotated[str, typer.Option(help="The service label (default: the name).")] = "",
    public: Annotated[bool, typer.Option(help="Show it on the status page.")] = False,
    interval: Annotated[int, typer.Option(help="Seconds between checks.")] = 60,
    timeout: Annotated[int, typer.Option(help="Seconds before it fails.")] = 10,
    option: Annotated[str, typer.Option(help='Options as JSON, e.g. \'{"record": "MX"}\'.')
                      ] = "",
) -> None:
    """Add a custom probe (administrators only: it makes this server connect anywhere)."""
    setup_django()
    from chaton.core.errors import InvalidInput
    from chaton.monitoring.actions import do_add_probe

    try:
        options = json.loads(option) if option else {}
    except ValueError:
        raise InvalidInput(_("--option is JSON, such as {\"record\": \"MX\"}."),
                           field="options") from None
    if not isinstance(options, dict):
        raise InvalidInput(_("--option is a JSON object."), field="options")
    probe = do_add_probe(name=name, kind=kind, target=target, conditions=condition or [],
                         options=options, service=service, public=public,
                         interval_seconds=interval, timeout_seconds=timeout,
                         acting_user=acting_user())
    console().print(_("Probe %(key)s added.") % {"key": probe.key})


@probe_app.command("delete")
def delete_probe(key: Annotated[str, typer.Argument(metavar="KEY")]) -> None:
    """Delete a custom probe and its history."""
    setup_django()
    from chaton.monitoring import queries
    from chaton.monitoring.actions import do_delete_probe

    do_delete_probe(queries.probe_by_key(key), acting_user=acting_user())
    console().print(_("Probe %(key)s deleted.") % {"key": key})


@incident_app.command("list")
def list_incidents(
    open_only: Annotated[bool, typer.Option("--open", help="Only open incidents.")] = False,
) -> None:
    """List incidents, newest first."""
    setup_django()
    from chaton.monitoring import alerts, queries

    table = Table(_("id"), _("probe"), _("opened"), _("resolved"), _("duration"),
                  _("acknowledged by"), _("first error"))
    for incident in queries.incidents(open_only=open_only):
        table.add_row(cell(incident.pk), cell(incident.probe.key), cell(_when(incident.opened_at)),
                      cell(_when(incident.resolved_at)),
                      cell(alerts.format_duration(incident.duration or dt.timedelta(0))),
                      cell(incident.acknowledged_by.uid if incident.acknowledged_by else ""),
                      cell(incident.first_error))
    console().print(table)


@incident_app.command("ack")
def acknowledge(
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    note: Annotated[str | None, typer.Option(help="What is known, what is done.")] = None,
) -> None:
    """Acknowledge an open incident: its reminders stop."""
    setup_django()
    from chaton.monitoring import queries
    from chaton.monitoring.actions import do_acknowledge_incident

    incident = do_acknowledge_incident(queries.incident_by_id(incident_id), note=note,
                                       acting_user=acting_user())
    console().print(_("Incident %(id)s acknowledged.") % {"id": incident.pk})


@maintenance_app.command("add")
def add_maintenance(
    title: Annotated[str, typer.Option(help="What people see on the status page.")],
    start: Annotated[str, typer.Option(help="YYYY-MM-DDTHH:MM.")],
    end: Annotated[str, typer.Option(help="YYYY-MM-DDTHH:MM.")],
    service: Annotated[list[str] | None, typer.Option(
        help="A service it covers (repeat it; none: every service).")] = None,
    description: Annotated[str, typer.Option(help="More for people.")] = "",
) -> None:
    """Plan a maintenance window: its services' alerts are silenced during it."""
    setup_django()
    from chaton.monitoring.actions import do_add_maintenance

    window = do_add_maintenance(title=title, starts_at=_moment(start, field="start"),
                                ends_at=_moment(end, field="end"), services=service or [],
                                description=description, acting_user=acting_user())
    console().print(_("Maintenance window %(id)s added.") % {"id": window.pk})


@maintenance_app.command("list")
def list_maintenance() -> None:
    """List the maintenance windows, latest first."""
    setup_django()
    from chaton.monitoring import queries

    table = Table(_("id"), _("title"), _("starts"), _("ends"), _("services"))
    for window in queries.maintenance_windows():
        table.add_row(cell(window.pk), cell(window.title), cell(_when(window.starts_at)),
                      cell(_when(window.ends_at)),
                      cell(", ".join(window.services) or _("all")))
    console().print(table)


@maintenance_app.command("delete")
def delete_maintenance(window_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Delete a maintenance window."""
    setup_django()
    from chaton.monitoring import queries
    from chaton.monitoring.actions import do_delete_maintenance

    do_delete_maintenance(queries.maintenance_by_id(window_id), acting_user=acting_user())
    console().print(_("Maintenance window %(id)s deleted.") % {"id": window_id})


@app.command("test-alert")
def test_alert() -> None:
    """Send a test alert to the alert group and the team channel."""
    setup_django()
    from chaton.monitoring.actions import do_send_test_alert

    queued = do_send_test_alert(acting_user=acting_user())
    console().print(_("%(count)d test notification(s) queued.") % {"count": queued})
