"""Every write of the monitoring app made by people: custom probes, incidents, maintenance
windows, the test alert.

Each ``do_*`` runs in one transaction with an audit row and takes the acting
account keyword-only. Only administrators act here — a custom probe makes
Chaton's server connect where it is told (a tool for reaching internal
addresses), so it is refused to anyone else, whatever the interface.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.core import audit, clock
from chaton.core.errors import Conflict, Forbidden, InvalidInput
from chaton.monitoring import alerts
from chaton.monitoring.engine import (
    PLACEHOLDERS_BY_KIND,
    BadCondition,
    BadSpec,
    ProbeSpec,
    parse_condition,
    validate_spec,
)
from chaton.monitoring.models import CUSTOM_KINDS, Incident, Maintenance, Probe, Source

if TYPE_CHECKING:
    from chaton.directory.models import Account

PROBE_FIELDS = ["key", "name", "kind", "target", "conditions", "options", "service", "public",
                "interval_seconds", "timeout_seconds", "enabled"]
MAINTENANCE_FIELDS = ["title", "starts_at", "ends_at", "services"]
#: Option keys a custom probe may set, by kind (no secret is ever stored).
CUSTOM_OPTIONS: dict[str, frozenset[str]] = {
    "http": frozenset({"method", "verify"}), "tcp": frozenset(),
    "tls": frozenset({"server_name"}), "dns": frozenset({"record", "server", "expected"}),
    "smtp": frozenset({"starttls"}), "imap": frozenset({"tls"}),
    "ldap": frozenset({"base"}),
}
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,253}$")


def _require_admin(acting_user: Account | None) -> None:
    if acting_user is not None and not acting_user.is_admin:
        raise Forbidden(_("Only administrators manage monitoring."))


def clean_target(kind: str, target: str) -> str:
    """Return ``target`` checked for ``kind``. Raise InvalidInput."""
    target = (target or "").strip()
    if not target:
        raise InvalidInput(_("Give a target."), field="target")
    if kind == "http":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(_("An HTTP probe's target is a URL such as "
                                 "https://pad.example.org/."), field="target")
    elif kind == "ldap":
        parts = urlsplit(target)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise InvalidInput(_("An LDAP probe's target is a URL such as "
                                 "ldaps://ldap.example.org."), field="target")
    elif kind == "dns":
        if not _NAME.match(target):
            raise InvalidInput(_("A DNS probe's target is a name such as example.org."),
                               field="target")
    elif not _HOST_PORT.match(target) or not 0 < int(target.rpartition(":")[2]) < 65536:
        raise InvalidInput(_("This probe's target is HOST:PORT, such as "
                             "mail.example.org:587."), field="target")
    return target


def clean_conditions(conditions: list[str], kind: str | None = None) -> list[str]:
    """Return the non-empty conditions, each parsed and (given the probe's kind) each on a
    placeholder that kind fills. Raise InvalidInput naming the bad one."""
    cleaned = [text.strip() for text in conditions if text and text.strip()]
    for text in cleaned:
        try:
            condition = parse_condition(text)
        except BadCondition as error:
            raise InvalidInput(_("Condition “%(condition)s”: %(error)s")
                               % {"condition": text, "error": error}, field="conditions") from None
        filled = PLACEHOLDERS_BY_KIND.get(kind or "")
        if filled is not None and condition.placeholder not in filled:
            raise InvalidInput(
                _("Condition “%(condition)s”: a %(kind)s probe has no value for "
                  "[%(placeholder)s]; it has %(known)s.")
                % {"condition": text, "kind": kind, "placeholder": condition.placeholder,
                   "known": ", ".join(f"[{name}]" for name in sorted(filled))},
                field="conditions")
    return cleaned


def _clean_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - CUSTOM_OPTIONS.get(kind, frozenset())
    if unknown:
        raise InvalidInput(_("Options not allowed for this kind of probe: %(names)s.")
                           % {"names": ", ".join(sorted(unknown))}, field="options")
    return dict(options)


def do_add_probe(*, name: str, kind: str, target: str, acting_user: Account | None,
                 conditions: list[str] | None = None, options: dict[str, Any] | None = None,
                 service: str = "", public: bool = False, interval_seconds: int = 60,
                 timeout_seconds: int = 10) -> Probe:
    """Add a custom probe; its key is ``custom:<id>``. Raise Forbidden (not an
    administrator), InvalidInput (a bad kind, target, condition or timing)."""
    _require_admin(acting_user)
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_("Give the probe a name."), field="name")
    if kind not in CUSTOM_KINDS:
        raise InvalidInput(_("Unknown kind of probe."), field="kind")
    target = clean_target(kind, target)
    cleaned = clean_conditions(conditions or [], kind)
    cleaned_options = _clean_options(kind, options or {})
    if not 10 <= interval_seconds <= 86400:
        raise InvalidInput(_("The interval is between 10 seconds and a day."),
                           field="interval_seconds")
    if not 1 <= timeout_seconds <= 60 or timeout_seconds >= interval_seconds:
        raise InvalidInput(_("The timeout is between 1 and 60 seconds, and shorter than the "
                             "interval."), field="timeout_seconds")
    try:
        validate_spec(ProbeSpec(key="custom:new", kind=kind, target=target,
                                conditions=tuple(cleaned), timeout=float(timeout_seconds),
                                options=cleaned_options))
    except BadCondition as error:
        raise InvalidInput(_("Conditions: %(error)s") % {"error": error},
                           field="conditions") from None
    except BadSpec as error:
        raise InvalidInput(_("This probe cannot run: %(error)s") % {"error": error},
                           field="target") from None
    with transaction.atomic():
        probe = Probe.objects.create(
            key=f"custom:pending:{clock.now().timestamp()}", name=name[:200], kind=kind,
            target=target, conditions=cleaned, options=cleaned_options,
            source=Source.CUSTOM, service=(service or name).strip()[:200], public=public,
            interval_seconds=interval_seconds, timeout_seconds=timeout_seconds)
        probe.key = f"custom:{probe.pk}"
        probe.save(update_fields=["key"])
        audit.record("monitoring.probe_added", probe, acting_user=acting_user,
                     after=audit.snapshot(probe, PROBE_FIELDS))
    return probe


def do_delete_probe(probe: Probe, *, acting_user: Account | None) -> None:
    """Delete a custom probe with its history. Raise Forbidden, Conflict for a derived one
    (the reconcile owns it)."""
    _require_admin(acting_user)
    if probe.source != Source.CUSTOM:
        raise Conflict(_("Probe %(key)s is derived from what Chaton runs: it goes when its "
                         "source goes.") % {"key": probe.key}, field="key")
    with transaction.atomic():
        audit.record("monitoring.probe_deleted", probe, acting_user=acting_user,
                     before=audit.snapshot(probe, PROBE_FIELDS))
        probe.delete()


def do_acknowledge_incident(incident: Incident, *, acting_user: Account | None,
                            note: str | None = None) -> Incident:
    """Acknowledge an open incident (reminders stop); with ``note``, set its note too.
    Raise Forbidden, Conflict when it is resolved or acknowledged already."""
    _require_admin(acting_user)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.resolved_at is not None:
            raise Conflict(_("This incident is resolved already."))
        if incident.acknowledged_at is not None:
            raise Conflict(_("This incident is acknowledged already."))
        incident.acknowledged_at = clock.now()
        incident.acknowledged_by = acting_user
        fields = ["acknowledged_at", "acknowledged_by"]
        if note is not None:
            incident.note = note.strip()
            fields.append("note")
        incident.save(update_fields=fields)
        audit.record("monitoring.incident_acknowledged", incident, acting_user=acting_user,
                     after={"probe": incident.probe.key, "note": incident.note})
    return incident


def do_annotate_incident(incident: Incident, note: str, *,
                         acting_user: Account | None) -> Incident:
    """Set an incident's note (what was found, what was done). Raise Forbidden."""
    _require_admin(acting_user)
    with transaction.atomic():
        before = {"note": incident.note}
        incident.note = (note or "").strip()
        incident.save(update_fields=["note"])
        audit.record("monitoring.incident_annotated", incident, acting_user=acting_user,
                     before=before, after={"note": incident.note})
    return incident


def do_add_maintenance(*, title: str, starts_at: dt.datetime, ends_at: dt.datetime,
                       acting_user: Account | None, description: str = "",
                       services: list[str] | None = None) -> Maintenance:
    """Plan a maintenance window (empty ``services``: every service). Raise Forbidden,
    InvalidInput (no title, an end before the start)."""
    _require_admin(acting_user)
    title = (title or "").strip()
    if not title:
        raise InvalidInput(_("Give the maintenance a title."), field="title")
    if ends_at <= starts_at:
        raise InvalidInput(_("The end comes after the start."), field="ends_at")
    cleaned = sorted({service.strip() for service in services or [] if service.strip()})
    with transaction.atomic():
        window = Maintenance.objects.create(title=title[:200], description=description.strip(),
                                            starts_at=starts_at, ends_at=ends_at,
                                            services=cleaned, created_by=acting_user)
        audit.record("monitoring.maintenance_added", window, acting_user=acting_user,
                     after=audit.snapshot(window, MAINTENANCE_FIELDS))
    return window


def do_delete_maintenance(window: Maintenance, *, acting_user: Account | None) -> None:
    """Delete a maintenance window. Raise Forbidden."""
    _require_admin(acting_user)
    with transaction.atomic():
        audit.record("monitoring.maintenance_deleted", window, acting_user=acting_user,
                     before=audit.snapshot(window, MAINTENANCE_FIELDS))
        window.delete()


def do_send_test_alert(*, acting_user: Account | None) -> int:
    """Queue a test alert to the alert group and the team channel; return how many
    notifications were queued (0: no member with a mail address and no webhook). Raise
    Forbidden."""
    _require_admin(acting_user)
    with transaction.atomic():
        name = acting_user.uid if acting_user is not None else "chaton"
        rows = alerts.queue(_("Test alert from Chaton's monitoring"),
                            _("%(name)s sent this test: alerts reach you.") % {"name": name},
                            source="monitoring:test")
        target = acting_user if acting_user is not None else (rows[0] if rows else None)
        if target is not None:
            audit.record("monitoring.test_alert", target, acting_user=acting_user,
                         after={"queued": len(rows)})
    return len(rows)
