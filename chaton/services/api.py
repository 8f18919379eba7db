"""``/api/v1/services``: hosts, the catalogue, instances, the reconcile plan and the diagram.

Every endpoint is for administrators. Writes go through
:mod:`chaton.services.actions`; their refusals answer the coded errors of
``/api/v1`` — ``invalid`` (400: a bad setting, an image that does not exist,
an unknown application), ``conflict`` (409: a domain, short name or port
taken), ``decision_required`` (403, with the ``link`` of a proposal: closing
an instance, opening one for a partner organization), ``engine_unreachable``
(503: a host's Docker engine does not answer; nothing was changed),
``engine_error`` (502), ``proxy_unavailable`` (503). No answer ever carries
an instance's secrets.

Opening an instance (its deployment) and an upgrade (blue/green, waiting for
health) are long: their endpoints check the request and record it, then answer
``202 Accepted`` with a job to poll at ``GET /api/v1/jobs/{id}`` (see
:mod:`chaton.core.jobs`), whose result is the instance, or the attempt
(``outcome`` healthy or rolled_back). They run in turn with the worker's
reconcile.

The instances' live state comes from one snapshot per host: the lists are
not paginated (a collective runs a handful of services, not thousands).
"""


import datetime as dt
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from pydantic import StrictBool, model_validator

from chaton.core import jobs
from chaton.core.api import ERRORS, ErrorOut, InputSchema, JobOut, acting_account, as_json
from chaton.core.models import Job
from chaton.directory.models import Group
from chaton.directory.queries import group_by_name
from chaton.services import actions, catalog, diagram, queries, reconcile
from chaton.services import jobs as services_jobs
from chaton.services.catalog import Manifest
from chaton.services.models import Deployment, Host, HostRole, Instance, Outcome
from chaton.services.plan import Plan
from chaton.services.queries import InstanceWithState

router = Router(tags=["services"])

#: The errors of an endpoint that talks to a host's engine or the proxy.
ENGINE_ERRORS: dict[int, Any] = {**ERRORS, 502: ErrorOut, 503: ErrorOut}
#: The lock of the services' long work: deploys, upgrades and the worker's reconcile run in
#: turn.
SERVICES_LOCK = services_jobs.JOB


# --- schemas --------------------------------------------------------------------------------


class ServicesInput(InputSchema):
    """A request body of these endpoints: no NUL character anywhere in it.

    Its texts end up in the database (PostgreSQL refuses NUL outright) and in
    containers' environments (where the engine does).
    """

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        pending = [data]
        while pending:  # a loop, not recursion: a deeply nested body cannot blow the stack
            value = pending.pop()
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(_("A text holds a NUL character."))
            if isinstance(value, dict):
                pending.extend(value.keys())
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
        return data


class EngineOut(Schema):
    reachable: bool
    version: str = ""
    name: str = ""
    swarm_manager: bool = False
    error: str = ""


class HostOut(Schema):
    name: str
    docker_url: str
    address: str = Field(..., description="Where the proxy reaches the ports it publishes.")
    roles: list[str] = Field(..., description="apps, proxy, backups")
    swarm: bool
    is_default: bool
    ldap_url: str
    first_port: int
    last_port: int
    created_at: dt.datetime


class HostDetailOut(HostOut):
    engine: EngineOut = Field(..., description="What the host's engine says now.")
    instances: list[str] = Field(..., description="The short names of its instances.")


class HostIn(ServicesInput):
    name: str = Field(..., max_length=64)
    docker_url: str = Field(..., max_length=255,
                            description="unix:///path, tcp://host:port or ssh://user@host")
    address: str = Field("127.0.0.1", max_length=255)
    roles: list[str] = Field(default_factory=lambda: [str(HostRole.APPS)], max_length=10)
    swarm: StrictBool | None = Field(None, description="Leave out: as the engine says.")
    is_default: StrictBool = False
    tls_ca: str = Field("", max_length=255)
    tls_certificate: str = Field("", max_length=255)
    tls_key: str = Field("", max_length=255)
    ldap_url: str = Field("", max_length=255)
    first_port: int = Field(20000, ge=1, le=65535)
    last_port: int = Field(29999, ge=1, le=65535)
    check: StrictBool = Field(True, description="The engine must answer.")


class SettingOut(Schema):
    name: str
    type: str
    label: str
    default: Any
    minimum: int | None
    maximum: int | None
    choices: list[str]
    help: str


class LdapOut(Schema):
    supported: bool
    reason: str


class ApplicationOut(Schema):
    name: str
    label: str
    description: str
    homepage: str
    image: str
    ldap: LdapOut
    database: str | None = Field(..., description="postgres, mariadb, or none")
    backed_up: list[str] = Field(..., description="The volumes that hold user data (and the "
                                                  "database, dumped).")
    settings: list[SettingOut]

    @staticmethod
    def resolve_database(manifest: Manifest) -> str | None:
        return manifest.database.kind if manifest.database else None

    @staticmethod
    def resolve_backed_up(manifest: Manifest) -> list[str]:
        return list(manifest.user_data)


class ApplicationDetailOut(ApplicationOut):
    settings_schema: dict[str, Any] = Field(..., description="The JSON schema of its settings.")

    @staticmethod
    def resolve_settings_schema(manifest: Manifest) -> dict[str, Any]:
        return manifest.settings_model().model_json_schema()


class LiveOut(Schema):
    state: str = Field(..., description="running, starting, unhealthy, stopped, missing, "
                                        "upgrading, drift, off, removing, unreachable")
    health: str
    detail: str
    workloads: list[str]


class InstanceOut(Schema):
    slug: str
    application: str
    domain: str
    host: str
    organization: str | None = Field(..., description="The owning organization's short name.")
    person: str | None = Field(..., description="The owning person's email.")
    login_group: str | None = Field(..., description="None: every account may log in.")
    settings: dict[str, Any]
    image: str
    port: int
    state: str = Field(..., description="The desired state: running, stopped, removed.")
    live: LiveOut
    created_at: dt.datetime


class DeploymentOut(Schema):
    id: int
    kind: str = Field(..., description="create, upgrade, settings, repair")
    outcome: str = Field(..., description="pending, healthy, rolled_back, failed, done")
    from_image: str
    to_image: str
    message: str
    actor: str
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @staticmethod
    def resolve_actor(deployment: Deployment) -> str:
        return deployment.actor_label


class InstanceDetailOut(InstanceOut):
    events: list[DeploymentOut]
    plan: list[str] = Field(..., description="What a reconcile would do for it.")


class InstanceIn(ServicesInput):
    application: str = Field(..., max_length=64)
    domain: str = Field(..., max_length=300)
    host: str | None = Field(None, max_length=64, description="Leave out: the default host.")
    slug: str = Field("", max_length=40, description="Leave out: made from the domain.")
    organization: str | None = Field(None, max_length=64,
                                     description="The owner: a partner organization's short "
                                                 "name (needs a decision by default).")
    person: str | None = Field(None, max_length=254, description="Or a person's email.")
    login_group: str | None = Field(None, max_length=128)
    settings: dict[str, Any] = Field(default_factory=dict)
    port: int | None = Field(None, ge=1, le=65535)
    image: str = Field("", max_length=300, description="Leave out: the catalogue's pin.")


class InstancePatch(ServicesInput):
    """Only what is sent changes; ``"login_group": null`` lets every account log in."""

    settings: dict[str, Any] | None = None
    login_group: str | None = Field(None, max_length=128)


class UpgradeIn(ServicesInput):
    image: str = Field(..., max_length=300)
    wait: StrictBool = Field(True, description="Kept for older clients: the answer is a job "
                                               "to poll either way.")


class PlanOut(Schema):
    lines: list[str] = Field(..., description="+ create, ~ change, ^ upgrade, * setup, "
                                              "- remove, ! drift repaired, ? kept, x error")
    counts: dict[str, int]
    is_noop: bool
    errors: dict[str, str] = Field(..., description="Hosts (or instances) not planned: why.")


class ReconcileIn(ServicesInput):
    dry_run: StrictBool = False
    delete_orphan_volumes: StrictBool = False


class ReconcileOut(PlanOut):
    applied: int
    failures: list[str]
    upgrades: list[str]
    proxy_changes: list[str]
    proxy_error: str
    #: The instances' read-only directory accounts added, changed or removed.
    account_changes: list[str]
    directory_error: str


# --- what the schemas are fed ---------------------------------------------------------------


def _engine(status: diagram.HostStatus) -> dict[str, Any]:
    return {"reachable": status.reachable, "version": status.version,
            "name": status.engine_name, "swarm_manager": status.swarm_manager,
            "error": status.error}


def _host_detail(host: Host) -> dict[str, Any]:
    values = {name: getattr(host, name) for name in HostOut.model_fields}
    values["engine"] = _engine(diagram.host_status(host))
    values["instances"] = list(host.instances.order_by("slug").values_list("slug", flat=True))
    return values


def _instance(item: InstanceWithState) -> dict[str, Any]:
    instance, live = item.instance, item.live
    try:
        image = instance.image
    except KeyError:  # the application left the catalogue: what it last ran
        image = instance.image_override
    return {
        "slug": instance.slug, "application": instance.application, "domain": instance.domain,
        "host": instance.host.name,
        "organization": instance.organization.slug if instance.organization else None,
        "person": instance.person.email if instance.person else None,
        "login_group": instance.login_group.name if instance.login_group else None,
        "settings": instance.settings, "image": image, "port": instance.port,
        "state": instance.state, "created_at": instance.created_at,
        "live": {"state": live.state, "health": live.health, "detail": live.detail,
                 "workloads": [workload.name for workload in live.workloads]},
    }


def _instance_detail(instance: Instance) -> dict[str, Any]:
    values = _instance(queries.instance_with_state(instance))
    values["events"] = list(queries.events(instance))
    plan, _engines, _planned = reconcile.plan(instances=[instance])
    values["plan"] = plan.lines()
    return values


def _plan(plan: Plan) -> dict[str, Any]:
    return {"lines": plan.lines(), "counts": plan.counts(), "is_noop": plan.is_noop,
            "errors": plan.errors}


# --- hosts ----------------------------------------------------------------------------------


@router.get("/hosts", response={200: list[HostOut], **ERRORS}, summary="List the hosts")
def list_hosts(request: HttpRequest) -> Any:
    return list(queries.hosts())


@router.post("/hosts", response={201: HostDetailOut, **ENGINE_ERRORS}, summary="Add a host")
def create_host(request: HttpRequest, payload: HostIn) -> tuple[int, dict[str, Any]]:
    """Register a host; with ``check`` (the default) its engine must answer (else 503)."""
    host = actions.do_create_host(
        payload.name, payload.docker_url, acting_user=acting_account(request),
        address=payload.address, roles=payload.roles, swarm=payload.swarm,
        is_default=payload.is_default, tls_ca=payload.tls_ca,
        tls_certificate=payload.tls_certificate, tls_key=payload.tls_key,
        ldap_url=payload.ldap_url, first_port=payload.first_port,
        last_port=payload.last_port, check=payload.check)
    return 201, _host_detail(host)


@router.get("/hosts/{name}", response={200: HostDetailOut, **ERRORS},
            summary="Get a host, with what its engine says now")
def get_host(request: HttpRequest, name: str) -> dict[str, Any]:
    return _host_detail(queries.host_by_name(name))


# --- the catalogue --------------------------------------------------------------------------


@router.get("/catalog", response={200: list[ApplicationOut], **ERRORS},
            summary="List the applications of the catalogue")
def list_applications(request: HttpRequest) -> Any:
    return list(catalog.all_manifests().values())


@router.get("/catalog/{name}", response={200: ApplicationDetailOut, **ERRORS},
            summary="Get an application, with the JSON schema of its settings")
def get_application(request: HttpRequest, name: str) -> Manifest:
    return queries.manifest_by_name(name)


# --- instances ------------------------------------------------------------------------------


@router.get("/instances", response={200: list[InstanceOut], **ERRORS},
            summary="List the instances with their live state")
def list_instances(request: HttpRequest, host: str = "") -> list[dict[str, Any]]:
    """Every instance (``?host=`` one host's), each with its state on its engine now."""
    chosen = queries.instances(host=queries.host_by_name(host) if host else None)
    return [_instance(item) for item in queries.instances_with_state(chosen)]


@router.post("/instances", response={202: JobOut, **ENGINE_ERRORS},
             summary="Open an instance and deploy it: a job")
def create_instance(request: HttpRequest, payload: InstanceIn) -> tuple[int, Job]:
    """Check everything first (domain, settings, image on the host, port): refused, nothing is
    left behind. Then 202 with a job that deploys it, whose result is the instance; when the
    deployment fails, the instance is removed again and the job's error says why."""
    host = queries.host_or_default(payload.host)
    with transaction.atomic():
        instance = actions.do_create_instance(
            payload.application, payload.domain, host, acting_user=acting_account(request),
            owner=queries.owner_by_key(payload.organization, payload.person),
            settings=payload.settings,
            login_group=_login_group(payload.login_group),
            slug=payload.slug, port=payload.port, image=payload.image, deploy=False)
        job = jobs.do_start_job("services.deploy", params={"instance": instance.pk},
                                target=instance.slug, lock_key=SERVICES_LOCK,
                                acting_user=acting_account(request))
    return 202, job


def _login_group(name: str | None) -> Group | None:
    """Given the group a body names (None: every account of the directory), return it.

    Raise NotFound."""
    return group_by_name(name, field="login_group") if name else None


def _deploy_work(job: Job) -> dict[str, Any]:
    """Deploy the new instance (removed again if that fails); return it as ``GET`` shows it.

    A deployment that is a decision's effect names its ``operation``: a failure marks it
    failed too.
    """
    actions.deploy_created(job.params["instance"], acting_user=job.created_by,
                           operation_id=job.params.get("operation"))
    instance = Instance.objects.get(pk=job.params["instance"])
    return as_json(InstanceDetailOut, _instance_detail(queries.instance_by_slug(instance.slug)))


@router.get("/instances/{slug}", response={200: InstanceDetailOut, **ERRORS},
            summary="Get an instance: live state, history, plan")
def get_instance(request: HttpRequest, slug: str) -> dict[str, Any]:
    return _instance_detail(queries.instance_by_slug(slug))


@router.patch("/instances/{slug}", response={200: InstanceDetailOut, **ENGINE_ERRORS},
              summary="Change an instance's settings or who may log in")
def update_instance(request: HttpRequest, slug: str,
                    payload: InstancePatch) -> dict[str, Any]:
    """The settings sent change, the others keep their values; its containers are replaced."""
    instance = queries.instance_by_slug(slug)
    group: Any = (_login_group(payload.login_group) if "login_group" in payload.model_fields_set
                  else ...)
    actions.do_update_instance_settings(instance, payload.settings,
                                        acting_user=acting_account(request), login_group=group)
    return _instance_detail(queries.instance_by_slug(slug))


@router.post("/instances/{slug}/upgrade", response={202: JobOut, **ENGINE_ERRORS},
             summary="Move an instance to another image pin (blue/green, rolled back if "
                     "unhealthy): a job")
def upgrade_instance(request: HttpRequest, slug: str, payload: UpgradeIn) -> tuple[int, Job]:
    """The image, the instance's state and its engine are checked at once (400, 409, 503);
    then 202 with a job whose result is the attempt: ``outcome`` healthy once the new
    version took the traffic, rolled_back (and ``message``) when it failed its health
    check. Upgrades run in turn with the worker's reconcile, never two at once."""
    instance = queries.instance_by_slug(slug)
    with transaction.atomic():
        deployment = actions.do_upgrade_instance(instance, payload.image,
                                                 acting_user=acting_account(request), wait=False)
        job = jobs.do_start_job("services.upgrade", params={"deployment": deployment.pk},
                                target=instance.slug, lock_key=SERVICES_LOCK,
                                acting_user=acting_account(request))
    return 202, job


def _upgrade_work(job: Job) -> dict[str, Any]:
    """Carry out the pending upgrade (unless the worker already did); return the attempt."""
    deployment = Deployment.objects.select_related("instance").get(pk=job.params["deployment"])
    if deployment.outcome == Outcome.PENDING:
        plan, _result = reconcile.reconcile(
            instances=Instance.objects.filter(pk=deployment.instance_id))
        deployment.refresh_from_db()
        if deployment.outcome == Outcome.PENDING:
            reasons = "; ".join(sorted(plan.errors.values())) or _("no answer yet")
            raise actions.EngineUnavailable(
                _("The upgrade could not be carried out now (%(reasons)s); the worker carries "
                  "it out once the engine answers.") % {"reasons": reasons})
    return as_json(DeploymentOut, deployment)


def _apply_work(job: Job) -> dict[str, Any]:
    """Bring the instances ``params["instances"]`` in line (a decided closing); return what
    was done. What could not be done is left to the worker's next reconcile."""
    plan, result = reconcile.reconcile(
        instances=Instance.objects.filter(pk__in=job.params["instances"]))
    return {"applied": result.applied, "failed": len(result.failures),
            "errors": dict(sorted(plan.errors.items()))}


jobs.register("services.deploy", _deploy_work)
jobs.register("services.upgrade", _upgrade_work)
jobs.register("services.apply", _apply_work)


@router.delete("/instances/{slug}", response={204: None, **ENGINE_ERRORS},
               summary="Remove an instance (?confirm=<its short name>)")
def remove_instance(request: HttpRequest, slug: str, confirm: str = "",
                    delete_data: bool = False) -> tuple[int, None]:
    """``confirm`` repeats the short name. Its data stays on the host unless ``delete_data``.
    Closing a service is extraordinary by default: 403 ``decision_required``."""
    actions.do_remove_instance(queries.instance_by_slug(slug), confirm=confirm,
                               acting_user=acting_account(request), delete_data=delete_data)
    return 204, None


# --- reconcile and diagram ------------------------------------------------------------------


@router.get("/plan", response={200: PlanOut, **ERRORS},
            summary="What a reconcile would change on every host (nothing is changed)")
def get_plan(request: HttpRequest) -> dict[str, Any]:
    return _plan(queries.preview())


@router.post("/reconcile", response={200: ReconcileOut, **ERRORS},
             summary="Bring every host and the proxy to the desired state now")
def post_reconcile(request: HttpRequest, payload: ReconcileIn | None = None) -> dict[str, Any]:
    """Plan and apply (``dry_run``: only show the plan to the engines and the proxy).
    A host that does not answer is listed in ``errors``; the others are reconciled."""
    options = payload or ReconcileIn()
    plan, result = reconcile.reconcile(dry_run=options.dry_run,
                                       delete_orphan_volumes=options.delete_orphan_volumes)
    return {**_plan(plan), "applied": result.applied,
            "failures": [str(failure) for failure in result.failures],
            "upgrades": [f"{slug}: {outcome}" for slug, outcome in result.upgrades],
            "proxy_changes": result.proxy_changes, "proxy_error": result.proxy_error,
            "account_changes": result.account_changes,
            "directory_error": result.directory_error}


@router.get("/diagram.svg", response={200: None, **ERRORS},
            summary="The diagram of the proxy, hosts, instances and domains (SVG)")
def get_diagram(request: HttpRequest) -> HttpResponse:
    return diagram.svg_response(diagram.draw(diagram.landscape(), standalone=True), download=False)
