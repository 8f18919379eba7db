"""Reads of the monitoring app: one lookup per natural key, the lists the pages show."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.errors import InvalidInput, NotFound
from chaton.monitoring.models import Incident, Maintenance, Period, Probe, Result, Rollup


def probe_by_key(key: str) -> Probe:
    """Return the probe of ``key``. Raise NotFound."""
    clean = (key or "").strip()
    looked_up = len(clean) <= 200 and not any(ord(char) < 32 for char in clean)
    probe = Probe.objects.filter(key=clean).first() if clean and looked_up else None
    if probe is None:
        raise NotFound(_("No probe %(key)s.") % {"key": clean[:200]}, field="key")
    return probe


def incident_by_id(incident_id: int | str) -> Incident:
    """Return the incident of ``incident_id``. Raise NotFound."""
    try:
        number = int(incident_id)
        if not 0 < number < 2**63:
            raise ValueError(number)
    except (TypeError, ValueError):
        raise InvalidInput(_("An incident's number is a whole number."), field="id") from None
    incident = Incident.objects.select_related("probe", "acknowledged_by").filter(
        pk=number).first()
    if incident is None:
        raise NotFound(_("No incident %(id)s.") % {"id": number}, field="id")
    return incident


def maintenance_by_id(window_id: int | str) -> Maintenance:
    """Return the maintenance window of ``window_id``. Raise NotFound."""
    try:
        number = int(window_id)
        if not 0 < number < 2**63:
            raise ValueError(number)
    except (TypeError, ValueError):
        raise InvalidInput(_("A maintenance window's number is a whole number."),
                           field="id") from None
    window = Maintenance.objects.filter(pk=number).first()
    if window is None:
        raise NotFound(_("No maintenance window %(id)s.") % {"id": number}, field="id")
    return window


def probes(*, state: str = "", service: str = "", kind: str = "") -> QuerySet[Probe]:
    """Return the probes, filtered by state, service and kind when given."""
    chosen = Probe.objects.all().order_by("service", "key")
    if state:
        chosen = chosen.filter(state=state)
    if service:
        chosen = chosen.filter(service=service)
    if kind:
        chosen = chosen.filter(kind=kind)
    return chosen


def services() -> list[str]:
    """Return the service labels that have probes, sorted."""
    return sorted(set(Probe.objects.values_list("service", flat=True)))


def incidents(*, open_only: bool = False, probe: Probe | None = None,
              limit: int = 200) -> QuerySet[Incident]:
    """Return incidents, newest first."""
    chosen = Incident.objects.select_related("probe", "acknowledged_by").order_by("-opened_at")
    if open_only:
        chosen = chosen.filter(resolved_at__isnull=True)
    if probe is not None:
        chosen = chosen.filter(probe=probe)
    return chosen[:limit]


def maintenance_windows(*, current_or_future: bool = False) -> QuerySet[Maintenance]:
    """Return maintenance windows, latest start first."""
    chosen = Maintenance.objects.select_related("created_by").order_by("-starts_at")
    if current_or_future:
        chosen = chosen.filter(ends_at__gt=clock.now())
    return chosen


def recent_results(probe: Probe, hours: int = 24) -> QuerySet[Result]:
    """Return the probe's raw results of the last ``hours``, oldest first."""
    return Result.objects.filter(probe=probe, at__gte=clock.now() - dt.timedelta(hours=hours)
                                 ).order_by("at")


def rollups(probe: Probe, period: str = Period.DAY, days: int = 90) -> QuerySet[Rollup]:
    """Return the probe's roll-ups of one period over the last ``days``, oldest first."""
    return Rollup.objects.filter(probe=probe, period=period,
                                 start__gte=clock.now() - dt.timedelta(days=days)
                                 ).order_by("start")
