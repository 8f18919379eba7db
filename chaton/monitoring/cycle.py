"""One monitoring cycle: run the due probes, store results, move states, open and resolve
incidents, send alerts.

::

    run_cycle(now)
      reconcile()                      derived probes in step with the desired state
      due_probes(now)                  each probe at its interval, with a jitter of its own
      engine.run(specs) + checks       the engine's kinds; Docker, backups, disk, web
      apply_result(probe, result)      Result row, state, counters, incident, alerts

States: a success is "up" ("warning" when its certificate expires within
``cert_warning_days`` or its disk is almost full); a failure is "down"; a
probe not checked for longer than two intervals is "unknown" (no data).
After such a gap — Chaton itself was not running — the counters start again:
failures before the gap never add up with those after it into an incident.
An incident opens after ``failures_to_open`` consecutive failures and
resolves after ``successes_to_resolve`` consecutive successes; a reminder
goes out every ``reminder_hours`` while it is open and not acknowledged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from chaton.core import audit, clock, locks
from chaton.directory.backend import managed_admin_password
from chaton.monitoring import alerts, checks, derive
from chaton.monitoring.engine import ProbeResult, ProbeSpec, engine_in_use
from chaton.monitoring.models import ENGINE_KINDS, Incident, Probe, Result, State

#: The lock (:mod:`chaton.core.locks`) a cycle holds while it runs: the name of the worker's
#: job, whose lock the worker's lane takes around it.
CYCLE_LOCK = "monitoring.cycle"

logger = logging.getLogger("chaton.monitoring")

#: A probe not checked for this many intervals has no data (Chaton was not running).
GAP_INTERVALS = 2
#: The share of its interval by which a probe's turn may come early, spread by its key.
JITTER = 0.1


@dataclass
class CycleReport:
    """What one cycle did."""

    checked: int = 0
    failed: int = 0
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)
    #: True when another cycle held the lock: this one did nothing.
    busy: bool = False

    def summary(self) -> str:
        if self.busy:
            return _("Another monitoring cycle is running on this machine; this one did "
                     "nothing.")
        parts = [_("%(checked)d checked, %(failed)d failing") % {"checked": self.checked,
                                                                  "failed": self.failed}]
        if self.opened:
            parts.append(_("opened: %(keys)s") % {"keys": ", ".join(self.opened)})
        if self.resolved:
            parts.append(_("resolved: %(keys)s") % {"keys": ", ".join(self.resolved)})
        if self.reconciled:
            parts.append(_("%(count)d probe(s) reconciled") % {"count": len(self.reconciled)})
        return "; ".join(parts)


def jitter_seconds(probe: Probe) -> float:
    """Return how early the probe's turn comes, fixed per key (0 to 10 % of its interval), so
    that probes of one interval do not all run at the same tick."""
    digest = hashlib.sha256(probe.key.encode()).digest()
    return probe.interval_seconds * JITTER * (digest[0] / 255)


def is_due(probe: Probe, now: dt.datetime) -> bool:
    """Return whether ``probe`` should run at ``now``."""
    if probe.last_checked_at is None:
        return True
    elapsed = (now - probe.last_checked_at).total_seconds()
    return elapsed >= probe.interval_seconds - jitter_seconds(probe)


def due_probes(now: dt.datetime, *, every: bool = False) -> list[Probe]:
    """Return the enabled probes due at ``now`` (all enabled ones with ``every``)."""
    probes = list(Probe.objects.filter(enabled=True).order_by("key"))
    return probes if every else [probe for probe in probes if is_due(probe, now)]


def spec_of(probe: Probe) -> ProbeSpec:
    """Return the engine's spec of a probe; the directory probe's password is read now."""
    options = dict(probe.options)
    if probe.kind == "ldap" and probe.source == "derived":
        ldap = settings.CHATON.ldap
        options["password"] = (managed_admin_password() if ldap.managed
                               else ldap.resolved_bind_password())
    return ProbeSpec(key=probe.key, kind=probe.kind, target=probe.target,
                     conditions=tuple(probe.conditions), timeout=float(probe.timeout_seconds),
                     options=options)


def run_probes(probes: Sequence[Probe], now: dt.datetime
               ) -> dict[str, tuple[ProbeResult, bool]]:
    """Run ``probes``: the engine's kinds through the engine, the others here. Return by key
    the result and whether it is a warning. Never raise for a probe's failure."""
    engine_probes = [probe for probe in probes if probe.kind in ENGINE_KINDS]
    out: dict[str, tuple[ProbeResult, bool]] = {}
    specs = []
    for probe in engine_probes:
        try:
            specs.append(spec_of(probe))
        except Exception as error:  # an unreadable password file: that probe fails alone
            out[probe.key] = (ProbeResult(probe.key, False, 0.0, str(error)[:300]), False)
    if specs:
        concurrency = settings.CHATON.monitoring.concurrency
        with engine_in_use() as engine:
            for result in engine.run(specs, concurrency=concurrency):
                out[result.key] = (result, False)
    out.update(checks.run_computed([probe for probe in probes
                                    if probe.kind not in ENGINE_KINDS], now))
    return out


def _certificate_warning(result: ProbeResult, now: dt.datetime) -> str:
    expires = result.cert_expires_at
    days = settings.CHATON.monitoring.cert_warning_days
    if result.ok and expires is not None and expires - now < dt.timedelta(days=days):
        left = max(0, (expires - now).days)
        return f"the certificate expires in {left} day(s), on {expires:%Y-%m-%d}"
    return ""


def apply_result(probe: Probe, result: ProbeResult, now: dt.datetime, *,
                 warning: bool = False, report: CycleReport | None = None) -> None:
    """Store ``result`` for ``probe`` and move its state, counters and incident."""
    config = settings.CHATON.monitoring
    report = report if report is not None else CycleReport()
    with transaction.atomic():
        probe = Probe.objects.select_for_update().get(pk=probe.pk)
        Result.objects.create(probe=probe, at=now, ok=result.ok, duration_ms=result.duration_ms,
                              error=result.error[:2000], cert_expires_at=result.cert_expires_at)
        gap = (probe.last_checked_at is not None and (now - probe.last_checked_at)
               > dt.timedelta(seconds=GAP_INTERVALS * probe.interval_seconds))
        if gap:
            probe.consecutive_failures = probe.consecutive_successes = 0
        certificate = _certificate_warning(result, now)
        if result.ok:
            probe.consecutive_successes += 1
            probe.consecutive_failures = 0
            probe.state = State.WARNING if (warning or certificate) else State.UP
            probe.last_error = certificate or (result.error if warning else "")
        else:
            probe.consecutive_failures += 1
            probe.consecutive_successes = 0
            probe.state = State.DOWN
            probe.last_error = result.error
            report.failed += 1
        probe.last_checked_at = now
        probe.last_duration_ms = result.duration_ms
        if result.cert_expires_at is not None:
            probe.cert_expires_at = result.cert_expires_at
        probe.save(update_fields=["state", "last_error", "last_checked_at", "last_duration_ms",
                                  "cert_expires_at", "consecutive_failures",
                                  "consecutive_successes", "updated_at"])
        report.checked += 1
        incident = Incident.objects.filter(probe=probe, resolved_at__isnull=True).first()
        if incident is None and probe.consecutive_failures >= config.failures_to_open:
            incident = Incident.objects.create(probe=probe, opened_at=now,
                                               first_error=result.error, last_error=result.error)
            audit.record("monitoring.incident_opened", incident, acting_user=None,
                         after={"probe": probe.key, "error": result.error[:200]},
                         actor_label="monitoring")
            alerts.alert(incident, "opened", now)
            incident.save(update_fields=["alerts_sent", "last_alert_at"])
            report.opened.append(probe.key)
        elif incident is not None and probe.consecutive_successes >= config.successes_to_resolve:
            incident.resolved_at = now
            audit.record("monitoring.incident_resolved", incident, acting_user=None,
                         after={"probe": probe.key,
                                "seconds": int((now - incident.opened_at).total_seconds())},
                         actor_label="monitoring")
            if incident.alerts_sent:
                alerts.alert(incident, "resolved", now)
            incident.save(update_fields=["resolved_at", "alerts_sent", "last_alert_at"])
            report.resolved.append(probe.key)
        elif incident is not None:
            if not result.ok:
                incident.last_error = result.error
            _remind(incident, now)
            incident.save(update_fields=["last_error", "alerts_sent", "last_alert_at"])


def _remind(incident: Incident, now: dt.datetime) -> None:
    hours = settings.CHATON.monitoring.reminder_hours
    if not hours or incident.acknowledged_at is not None:
        return
    since = incident.last_alert_at or incident.opened_at
    if now - since >= dt.timedelta(hours=hours):
        # A window that silenced the opening alert: this is then the first one.
        alerts.alert(incident, "reminder" if incident.alerts_sent else "opened", now)


def mark_gaps(now: dt.datetime) -> int:
    """Put in "unknown" the enabled probes not checked for longer than two intervals (the
    page then says "no data"); return how many."""
    stale = []
    for probe in Probe.objects.filter(enabled=True).exclude(state=State.UNKNOWN).filter(
            ~Q(last_checked_at=None)):
        assert probe.last_checked_at is not None
        if (now - probe.last_checked_at).total_seconds() > GAP_INTERVALS * probe.interval_seconds:
            stale.append(probe.pk)
    return Probe.objects.filter(pk__in=stale).update(state=State.UNKNOWN)


def run_cycle(now: dt.datetime | None = None, *, every: bool = False,
              reconcile: bool = True, lock: bool = True) -> CycleReport:
    """Run one cycle at ``now``; with ``every``, run every enabled probe whatever its turn.
    Return what it did. A probe's failure never stops the others.

    One cycle at a time on the machine (the worker's, ``chaton monitor run``'s): while
    another holds :data:`CYCLE_LOCK`, return at once a report that says so (``busy``),
    having checked nothing — a probe is never checked twice for one turn. ``lock=False``
    is for a caller that holds the lock already (the worker, which holds its job's name).
    """
    if not lock:
        return _run_cycle(now, every=every, reconcile=reconcile)
    with locks.held(CYCLE_LOCK) as taken:
        if not taken:
            return CycleReport(busy=True)
        return _run_cycle(now, every=every, reconcile=reconcile)


def _run_cycle(now: dt.datetime | None, *, every: bool, reconcile: bool) -> CycleReport:
    report = CycleReport()
    if reconcile:
        try:
            report.reconciled = derive.reconcile()
        except Exception:  # the probes already known still run
            logger.exception("monitoring: the reconcile failed")
    now = now or clock.now()
    mark_gaps(now)
    probes = due_probes(now, every=every)
    outcomes = run_probes(probes, now)
    for probe in probes:
        result, warning = outcomes.get(probe.key, (ProbeResult(probe.key, False, 0.0,
                                                               "no result"), False))
        try:
            apply_result(probe, result, now, warning=warning, report=report)
        except Exception:
            logger.exception("monitoring: cannot record the result of %s", probe.key)
    return report
