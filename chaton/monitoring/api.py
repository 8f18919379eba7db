"""``/api/v1/monitoring``: probes, incidents, maintenance windows, a test alert.

Administrators only (a custom probe makes the server connect where it is told).
Errors are the coded ones of ``/api/v1``: ``invalid`` (400: a bad target or
condition, with its ``field``), ``not_found`` (404), ``conflict`` (409: a
derived probe deleted, an incident acknowledged twice), ``forbidden`` (403).
"""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from chaton.core.api import ERRORS, InputSchema, acting_account
from chaton.monitoring import actions, queries
from chaton.monitoring.models import Incident, Maintenance, Probe

router = Router(tags=["monitoring"])


class ProbeOut(Schema):
    key: str
    name: str
    kind: str
    target: str
    conditions: list[str]
    source: str
    service: str
    public: bool
    interval_seconds: int
    timeout_seconds: int
    enabled: bool
    state: str
    last_checked_at: dt.datetime | None
    last_duration_ms: float | None
    last_error: str
    cert_expires_at: dt.datetime | None
    consecutive_failures: int


class ProbeIn(InputSchema):
    name: str
    kind: str = Field(..., description="http, tcp, tls, dns, smtp, imap or ldap")
    target: str = Field(..., description="A URL (http, ldap), HOST:PORT, or a DNS name")
    conditions: list[str] = Field(default_factory=list,
                                  examples=[["[STATUS] == 200", "[RESPONSE_TIME] < 500"]])
    options: dict[str, Any] = Field(default_factory=dict)
    service: str = ""
    public: bool = False
    interval_seconds: int = 60
    timeout_seconds: int = 10


class IncidentOut(Schema):
    id: int
    probe: str
    service: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    duration_seconds: float | None
    first_error: str
    last_error: str
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    note: str
    alerts_sent: int


class AckIn(InputSchema):
    note: str | None = None


class MaintenanceOut(Schema):
    id: int
    title: str
    description: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    services: list[str]


class MaintenanceIn(InputSchema):
    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    description: str = ""
    services: list[str] = Field(default_factory=list, description="Service labels; none: all")


class TestAlertOut(Schema):
    queued: int


def _incident(incident: Incident) -> dict[str, Any]:
    duration = incident.duration
    return {"id": incident.pk, "probe": incident.probe.key, "service": incident.probe.service,
            "opened_at": incident.opened_at, "resolved_at": incident.resolved_at,
            "duration_seconds": duration.total_seconds() if duration else None,
            "first_error": incident.first_error, "last_error": incident.last_error,
            "acknowledged_by": (incident.acknowledged_by.uid
                                if incident.acknowledged_by else None),
            "acknowledged_at": incident.acknowledged_at, "note": incident.note,
            "alerts_sent": incident.alerts_sent}


@router.get("/probes", response={200: list[ProbeOut], **ERRORS}, summary="List the probes")
def list_probes(request: HttpRequest, state: str = "", service: str = "",
                kind: str = "") -> Any:
    return list(queries.probes(state=state, service=service, kind=kind))


@router.post("/probes", response={201: ProbeOut, **ERRORS}, summary="Add a custom probe")
def add_probe(request: HttpRequest, payload: ProbeIn) -> tuple[int, Probe]:
    probe = actions.do_add_probe(acting_user=acting_account(request), **payload.model_dump())
    return 201, probe


@router.get("/probes/{key}", response={200: ProbeOut, **ERRORS}, summary="Get a probe")
def get_probe(request: HttpRequest, key: str) -> Probe:
    return queries.probe_by_key(key)


@router.delete("/probes/{key}", response={204: None, **ERRORS},
               summary="Delete a custom probe (409 for a derived one)")
def delete_probe(request: HttpRequest, key: str) -> tuple[int, None]:
    actions.do_delete_probe(queries.probe_by_key(key), acting_user=acting_account(request))
    return 204, None


@router.get("/incidents", response={200: list[IncidentOut], **ERRORS},
            summary="List incidents, newest first")
def list_incidents(request: HttpRequest, open: bool = False) -> Any:
    return [_incident(incident) for incident in queries.incidents(open_only=open)]


@router.get("/incidents/{incident_id}", response={200: IncidentOut, **ERRORS},
            summary="Get an incident")
def get_incident(request: HttpRequest, incident_id: str) -> Any:
    return _incident(queries.incident_by_id(incident_id))


@router.post("/incidents/{incident_id}/ack", response={200: IncidentOut, **ERRORS},
             summary="Acknowledge an open incident (its reminders stop)")
def acknowledge(request: HttpRequest, incident_id: str, payload: AckIn | None = None) -> Any:
    incident = actions.do_acknowledge_incident(
        queries.incident_by_id(incident_id), acting_user=acting_account(request),
        note=payload.note if payload is not None else None)
    return _incident(incident)


@router.get("/maintenance", response={200: list[MaintenanceOut], **ERRORS},
            summary="List maintenance windows")
def list_maintenance(request: HttpRequest) -> Any:
    return list(queries.maintenance_windows())


@router.post("/maintenance", response={201: MaintenanceOut, **ERRORS},
             summary="Plan a maintenance window")
def add_maintenance(request: HttpRequest, payload: MaintenanceIn) -> tuple[int, Maintenance]:
    window = actions.do_add_maintenance(acting_user=acting_account(request),
                                        **payload.model_dump())
    return 201, window


@router.delete("/maintenance/{window_id}", response={204: None, **ERRORS},
               summary="Delete a maintenance window")
def delete_maintenance(request: HttpRequest, window_id: str) -> tuple[int, None]:
    actions.do_delete_maintenance(queries.maintenance_by_id(window_id),
                                  acting_user=acting_account(request))
    return 204, None


@router.post("/test-alert", response={200: TestAlertOut, **ERRORS},
             summary="Queue a test alert to the alert group and the team channel")
def test_alert(request: HttpRequest) -> Any:
    return {"queued": actions.do_send_test_alert(acting_user=acting_account(request))}
