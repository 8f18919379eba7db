"""``/api/v1/mail``: mail domains and zones, their records, the DNS plan and its application,
the DKIM keys and their rotation. Administrators only (the API's default authentication).

Writes go through :mod:`chaton.mail.actions`. No answer carries a private key or a TSIG
secret. ``publish_retired_keys`` is read-only here: setting it is refused with 403
``decision_required`` and a link to a proposal of ``mail.publish_retired_keys``. Besides the
shared errors: 503 ``dns_unavailable`` (a DNS server does not answer), 502 ``dns_refused``
(it refused the update or the TSIG key).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import StrictBool, StrictInt

from chaton.core.api import ERRORS, ErrorOut, InputSchema, acting_account
from chaton.mail import actions, dnsplan, queries
from chaton.mail.models import DkimKey, DnsZone, MailDomain
from chaton.mail.records import expected, zone_snippet

router = Router(tags=["mail"])

DNS_ERRORS: dict[int, Any] = {**ERRORS, 502: ErrorOut, 503: ErrorOut}


class ZoneIn(InputSchema):
    name: str
    mode: str = "manual"
    server_host: str = ""
    server_port: StrictInt = 53
    tsig_name: str = ""
    tsig_algorithm: str = "hmac-sha256"
    tsig_secret: str = ""


class ZoneOut(Schema):
    name: str
    mode: str
    server_host: str
    server_port: int
    tsig_name: str
    has_tsig_secret: bool


def zone_out(zone: DnsZone) -> dict[str, Any]:
    return {"name": zone.name, "mode": zone.mode, "server_host": zone.server_host,
            "server_port": zone.server_port, "tsig_name": zone.tsig_name,
            "has_tsig_secret": bool(zone.tsig_secret)}


class DomainIn(InputSchema):
    name: str
    zone: str
    dkim_zone: str | None = None
    organization: str | None = None
    mx_hosts: list[str] = []
    sending_addresses: list[str] = []
    dmarc_policy: str = "none"
    dmarc_report_address: str = ""
    mta_sts_mode: str = "testing"
    mta_sts_max_age: StrictInt = 604800
    tls_rpt_address: str = ""
    rotation_days: StrictInt | None = None
    #: Refused (403 decision_required): the members decide it.
    publish_retired_keys: StrictBool | None = None


class DomainPatch(InputSchema):
    mx_hosts: list[str] | None = None
    sending_addresses: list[str] | None = None
    dmarc_policy: str | None = None
    dmarc_report_address: str | None = None
    mta_sts_mode: str | None = None
    mta_sts_max_age: StrictInt | None = None
    tls_rpt_address: str | None = None
    rotation_days: StrictInt | None = None
    #: Refused (403 decision_required): the members decide it.
    publish_retired_keys: StrictBool | None = None


class DomainOut(Schema):
    name: str
    zone: str
    dkim_zone: str | None
    organization: str | None
    mx_hosts: list[str]
    sending_addresses: list[str]
    dmarc_policy: str
    dmarc_report_address: str
    mta_sts_mode: str
    mta_sts_max_age: int
    tls_rpt_address: str
    publish_retired_keys: bool
    rotation_days: int


def domain_out(domain: MailDomain) -> dict[str, Any]:
    return {"name": domain.name, "zone": domain.zone.name,
            "dkim_zone": domain.dkim_zone.name if domain.dkim_zone else None,
            "organization": domain.organization.slug if domain.organization else None,
            **{name: getattr(domain, name) for name in (
                "mx_hosts", "sending_addresses", "dmarc_policy", "dmarc_report_address",
                "mta_sts_mode", "mta_sts_max_age", "tls_rpt_address", "publish_retired_keys",
                "rotation_days")}}


class RecordOut(Schema):
    zone: str
    name: str
    type: str
    ttl: int
    values: list[str]
    purpose: str
    absent: bool


class RecordsOut(Schema):
    records: list[RecordOut]
    zone_file: str


class StepOut(Schema):
    action: str
    zone: str
    name: str
    type: str
    purpose: str
    wanted: list[str]
    current: list[str]


class PlanOut(Schema):
    domain: str
    manual_zones: list[str]
    steps: list[StepOut]


class ApplyOut(Schema):
    changed: int


class KeyOut(Schema):
    selector: str
    algorithm: str
    bits: int
    state: str
    public_key: str
    emergency: bool
    created_at: dt.datetime
    advertised_at: dt.datetime | None
    activated_at: dt.datetime | None
    retiring_at: dt.datetime | None
    retired_at: dt.datetime | None
    revealed_at: dt.datetime | None
    published_url: str | None


def key_out(key: DkimKey) -> dict[str, Any]:
    published = key.state == "revealed" and key.domain.publish_retired_keys
    return {**{name: getattr(key, name) for name in (
        "selector", "algorithm", "bits", "state", "public_key", "emergency", "created_at",
        "advertised_at", "activated_at", "retiring_at", "retired_at", "revealed_at")},
        "published_url": f"/.well-known/dkim/{key.published_name}.pem" if published else None}


class FindingOut(Schema):
    domain: str
    code: str
    severity: str
    subject: str
    expected: str
    found: str
    server: str
    fix: str


class RotateIn(InputSchema):
    emergency: StrictBool = False


class RotateOut(Schema):
    new_keys: list[KeyOut]
    retired: list[KeyOut]
    skipped: list[str]


# --- zones ----------------------------------------------------------------------------------

@router.get("/zones", response={200: list[ZoneOut], **ERRORS}, summary="List the DNS zones")
def list_zones(request: HttpRequest) -> list[dict[str, Any]]:
    return [zone_out(zone) for zone in DnsZone.objects.all()]


@router.post("/zones", response={201: ZoneOut, **ERRORS}, summary="Record a DNS zone")
def create_zone(request: HttpRequest, payload: ZoneIn) -> tuple[int, dict[str, Any]]:
    zone = actions.do_create_zone(payload.name, acting_user=acting_account(request),
                                  mode=payload.mode, server_host=payload.server_host,
                                  server_port=payload.server_port, tsig_name=payload.tsig_name,
                                  tsig_algorithm=payload.tsig_algorithm,
                                  tsig_secret=payload.tsig_secret)
    return 201, zone_out(zone)


# --- domains --------------------------------------------------------------------------------

@router.get("/domains", response={200: list[DomainOut], **ERRORS},
            summary="List the mail domains")
def list_domains(request: HttpRequest) -> list[dict[str, Any]]:
    return [domain_out(domain) for domain in
            MailDomain.objects.select_related("zone", "dkim_zone", "organization")]


@router.post("/domains", response={201: DomainOut, **ERRORS}, summary="Add a mail domain")
def create_domain(request: HttpRequest, payload: DomainIn) -> tuple[int, dict[str, Any]]:
    """403 ``decision_required`` when ``publish_retired_keys`` is given."""
    from chaton.members.queries import organization_by_slug

    values = payload.dict(exclude={"name", "zone", "dkim_zone", "organization"},
                          exclude_none=True)
    if payload.publish_retired_keys is None:
        values.pop("publish_retired_keys", None)
    domain = actions.do_add_domain(
        payload.name, acting_user=acting_account(request),
        zone=queries.zone_by_name(payload.zone),
        dkim_zone=queries.zone_by_name(payload.dkim_zone, field="dkim_zone")
        if payload.dkim_zone else None,
        organization=organization_by_slug(payload.organization, field="organization")
        if payload.organization else None, **values)
    return 201, domain_out(domain)


@router.get("/domains/{name}", response={200: DomainOut, **ERRORS}, summary="Get a mail domain")
def get_domain(request: HttpRequest, name: str) -> dict[str, Any]:
    return domain_out(queries.domain_by_name(name))


@router.patch("/domains/{name}", response={200: DomainOut, **ERRORS},
              summary="Change a mail domain's settings")
def update_domain(request: HttpRequest, name: str, payload: DomainPatch) -> dict[str, Any]:
    """403 ``decision_required`` when ``publish_retired_keys`` is given."""
    domain = queries.domain_by_name(name)
    values = payload.dict(exclude_unset=True)
    actions.do_update_domain(domain, acting_user=acting_account(request), **values)
    return domain_out(queries.domain_by_name(name))


@router.delete("/domains/{name}", response={204: None, **ERRORS},
               summary="Forget a mail domain (its DNS records stay)")
def delete_domain(request: HttpRequest, name: str) -> tuple[int, None]:
    actions.do_delete_domain(queries.domain_by_name(name), acting_user=acting_account(request))
    return 204, None


@router.get("/domains/{name}/records", response={200: RecordsOut, **ERRORS},
            summary="The records the domain needs, and as a zone file")
def records(request: HttpRequest, name: str) -> dict[str, Any]:
    items = expected(queries.facts_of(queries.domain_by_name(name)))
    return {"records": [{"zone": item.zone, "name": item.record.name,
                         "type": item.record.type, "ttl": item.record.ttl,
                         "values": list(item.record.values), "purpose": item.purpose,
                         "absent": item.absent} for item in items],
            "zone_file": zone_snippet(items)}


@router.get("/domains/{name}/plan", response={200: PlanOut, **DNS_ERRORS},
            summary="What the zones hold against what the domain needs")
def plan(request: HttpRequest, name: str) -> dict[str, Any]:
    domain = queries.domain_by_name(name)
    with dnsplan.coded_errors():
        the_plan = dnsplan.plan(domain)
    return {"domain": the_plan.domain, "manual_zones": list(the_plan.manual_zones),
            "steps": [step.as_dict() for step in the_plan.steps]}


@router.post("/domains/{name}/apply", response={200: ApplyOut, **DNS_ERRORS},
             summary="Apply the plan to the zones Chaton updates")
def apply(request: HttpRequest, name: str) -> dict[str, int]:
    return {"changed": actions.do_apply_dns(queries.domain_by_name(name),
                                            acting_user=acting_account(request))}


@router.get("/domains/{name}/diagnosis", response={200: list[FindingOut], **ERRORS},
            summary="Diagnose the domain: records per server, SPF, DKIM against the signer, "
                    "DMARC, MTA-STS, TLS, reverse DNS; each finding with its fix")
def diagnosis(request: HttpRequest, name: str) -> list[dict[str, str]]:
    from chaton.mail import diagnosis as mail_diagnosis

    return [finding.as_dict()
            for finding in mail_diagnosis.diagnose_domain(queries.domain_by_name(name))]


@router.get("/domains/{name}/dkim", response={200: list[KeyOut], **ERRORS},
            summary="The domain's DKIM keys and their states")
def dkim_status(request: HttpRequest, name: str) -> list[dict[str, Any]]:
    return [key_out(key) for key in queries.key_rows(queries.domain_by_name(name))]


@router.post("/domains/{name}/dkim/rotate", response={200: RotateOut, **ERRORS},
             summary="Start a DKIM rotation (emergency: the active key stops signing at once)")
def rotate(request: HttpRequest, name: str, payload: RotateIn) -> dict[str, Any]:
    result = actions.do_rotate(queries.domain_by_name(name), acting_user=acting_account(request),
                               emergency=payload.emergency)
    return {"new_keys": [key_out(key) for key in result.new_keys],
            "retired": [key_out(key) for key in result.retired],
            "skipped": [str(line) for line in result.skipped]}
