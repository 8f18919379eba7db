"""Reads of the services: hosts, instances with their live state from the engines, history.

The live state comes from one snapshot per host (a few list calls), never
from one call per instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from chaton.adapters.docker import DockerError, Snapshot, Workload
from chaton.core.errors import InvalidInput, NotFound
from chaton.core.queries import lookup_text
from chaton.members.models import Organization, Person
from chaton.members.queries import organization_by_slug, person_by_email
from chaton.services import catalog, reconcile
from chaton.services.apply import routes
from chaton.services.catalog import Manifest
from chaton.services.engine import engine_for
from chaton.services.models import (
    Deployment,
    DeploymentKind,
    DesiredState,
    Host,
    HostImage,
    Instance,
    Outcome,
)
from chaton.services.plan import Plan, pending_upgrades
from chaton.services.render import APP


def hosts() -> QuerySet[Host]:
    """Return every host, by name."""
    return Host.objects.order_by("name")


def default_host() -> Host | None:
    """Return the default host, or None when none is marked."""
    return Host.objects.filter(is_default=True).first()


# -- lookups by natural key ----------------------------------------------------------------------
#
# Every interface (pages, API, CLI, governance operations) finds a host, an instance or an
# application through these: one message per thing, NotFound for the pages' 404, the API's
# ``not_found`` and the CLI's one line.


def host_by_name(name: str, *, field: str = "host") -> Host:
    """Given a host's name (surrounding spaces ignored), return it. Raise NotFound."""
    key = lookup_text(name)
    host = Host.objects.filter(name=key).first() if key else None
    if host is None:
        raise NotFound(_("No host is named “%(name)s”.") % {"name": name.strip()[:64]},
                       field=field)
    return host


def host_or_default(name: str | None, *, field: str = "host") -> Host:
    """Given a host's name, or None (or nothing) for the default host, return the host.

    Raise NotFound for an unknown name, InvalidInput when no name is given and
    no host is the default.
    """
    if name:
        return host_by_name(name, field=field)
    default = default_host()
    if default is None:
        raise InvalidInput(_("There is no default host: name one."), field=field)
    return default


def instance_by_slug(slug: str, *, field: str = "slug") -> Instance:
    """Given an instance's short name (surrounding spaces ignored), return it with its host,
    owner and group joined. Raise NotFound."""
    key = lookup_text(slug)
    instance = instances().filter(slug=key).first() if key else None
    if instance is None:
        raise NotFound(_("No instance has the short name “%(slug)s”.")
                       % {"slug": slug.strip()[:64]}, field=field)
    return instance


def manifest_by_name(name: str, *, field: str = "application") -> Manifest:
    """Given an application's name, return its manifest in the catalogue. Raise NotFound."""
    try:
        return catalog.get(name)
    except KeyError:
        raise NotFound(_("There is no application %(name)s in the catalogue.")
                       % {"name": name[:64]}, field=field) from None


def owner_by_key(organization: str | None, person: str | None, *,
                 field: str = "organization") -> Organization | Person | None:
    """Given an organization's short name or a person's email (or neither: the collective),
    return the owner of an instance.

    Raise InvalidInput when both are given, NotFound for an unknown one.
    """
    if organization and person:
        raise InvalidInput(_("An instance has one owner: an organization or a person."),
                           field=field)
    if organization:
        return organization_by_slug(organization)
    if person:
        return person_by_email(person)
    return None


def instances(*, host: Host | None = None) -> QuerySet[Instance]:
    """Return the instances (of one host), with what their pages show joined in."""
    queryset = Instance.objects.select_related("host", "person", "organization", "login_group")
    if host is not None:
        queryset = queryset.filter(host=host)
    return queryset.order_by("slug")


def instances_of(owner: Person | Organization) -> QuerySet[Instance]:
    """Return the instances an owner has."""
    if isinstance(owner, Person):
        return instances().filter(person=owner)
    return instances().filter(organization=owner)


def events(instance: Instance, *, limit: int = 50) -> QuerySet[Deployment]:
    """Return an instance's history (upgrades, repairs, settings changes), newest first."""
    return instance.deployments.select_related("actor").order_by("-created_at", "-id")[:limit]


def upgrade_under_way(instance: Instance) -> Deployment | None:
    return instance.deployments.filter(kind=DeploymentKind.UPGRADE,
                                       outcome=Outcome.PENDING).first()


@dataclass(frozen=True)
class LiveState:
    """What an instance's engine says about it now.

    ``state`` is one of: ``running``, ``starting`` (its health check has not
    passed yet), ``unhealthy``, ``stopped`` (not running although it should),
    ``missing`` (its application is not on the engine), ``upgrading``,
    ``drift`` (a workload changed by hand), ``off`` (stopped on purpose),
    ``removing``, ``unreachable`` (the engine does not answer). ``detail``
    says more, for people.
    """

    state: str
    health: str = "none"
    detail: str = ""
    workloads: tuple[Workload, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state in ("running", "off")


@dataclass(frozen=True)
class InstanceWithState:
    instance: Instance
    live: LiveState


def _live_state(instance: Instance, snapshot: Snapshot | None, error: str,
                upgrade: Deployment | None) -> LiveState:
    if snapshot is None:
        # The engine's own message is on the host's row, once, with what to do.
        return LiveState("unreachable", detail=_("the Docker engine of %(host)s does not "
                                                 "answer") % {"host": instance.host.name})
    workloads = tuple(workload for workload in snapshot.workloads
                      if workload.instance == instance.slug)
    if instance.state == DesiredState.REMOVED:
        return LiveState("removing", workloads=workloads)
    if instance.state == DesiredState.STOPPED:
        return LiveState("off", workloads=workloads)
    if upgrade is not None:
        return LiveState("upgrading", workloads=workloads,
                         detail=_("from %(from)s to %(to)s") % {"from": upgrade.from_image,
                                                                "to": upgrade.to_image})
    applied = instance.applied
    known = {applied.get(role) for role in applied}
    changed = [workload for workload in workloads if workload.spec_hash not in known]
    apps = [workload for workload in workloads
            if workload.role == APP and workload.spec_hash == applied.get(APP)]
    if not apps:
        return LiveState("drift" if changed else "missing", workloads=workloads,
                         detail=", ".join(workload.name for workload in changed))
    app = apps[0]
    if changed:
        return LiveState("drift", health=app.health, workloads=workloads,
                         detail=", ".join(workload.name for workload in changed))
    if not app.running:
        return LiveState("stopped", health=app.health, workloads=workloads,
                         detail=app.detail or app.state)
    if app.health == "starting":
        return LiveState("starting", health=app.health, workloads=workloads)
    if app.health == "unhealthy":
        return LiveState("unhealthy", health=app.health, workloads=workloads)
    return LiveState("running", health=app.health, workloads=workloads)


def instances_with_state(chosen: Iterable[Instance] | None = None) -> list[InstanceWithState]:
    """Return the instances (all, or ``chosen``) each with its live state.

    Each host's engine is read once; one that does not answer makes its
    instances "unreachable", never an exception.
    """
    rows = list(chosen) if chosen is not None else list(instances())
    snapshots: dict[int, tuple[Snapshot | None, str]] = {}
    for host in {instance.host_id: instance.host for instance in rows}.values():
        try:
            snapshots[host.pk] = (engine_for(host).snapshot(), "")
        except DockerError as error:
            snapshots[host.pk] = (None, str(error))
    upgrades = pending_upgrades(rows)
    return [InstanceWithState(instance, _live_state(instance, *snapshots[instance.host_id],
                                                    upgrades.get(instance.pk)))
            for instance in rows]


def instance_with_state(instance: Instance) -> InstanceWithState:
    """Return one instance with its live state."""
    return instances_with_state([instance])[0]


def logs(instance: Instance, *, tail: int = 100) -> str:
    """Return the last lines the instance's application wrote (secrets masked), or why not."""
    from chaton.core import runner

    engine = engine_for(instance.host)
    try:
        snapshot = engine.snapshot()
        apps = [workload for workload in snapshot.workloads
                if workload.instance == instance.slug and workload.role == APP]
        if not apps:
            return _("(no application container)")
        current = [workload for workload in apps
                   if workload.spec_hash == instance.applied.get(APP)]
        return runner.mask(engine.logs((current or apps)[0], tail=tail))
    except DockerError as error:
        return _("(the engine does not answer: %(error)s)") % {"error": error}


def preview() -> Plan:
    """Return what a reconcile would do now, without doing it."""
    plan, _engines, _instances = reconcile.plan()
    return plan


@dataclass(frozen=True)
class ProxyPreview:
    """What a reconcile would change in the proxy: one line per change (``~ proxy: …``), or
    why the proxy could not be read (``error``)."""

    lines: tuple[str, ...]
    error: str = ""

    @property
    def is_noop(self) -> bool:
        return not self.lines and not self.error


def proxy_preview() -> ProxyPreview:
    """Return what syncing every route would change in Caddy now: a route changed or removed
    by hand shows here before the worker puts it back. Never raises: an unreachable or
    refusing proxy is the preview's ``error``."""
    from chaton.core.errors import ChatonError
    from chaton.services import proxy

    try:
        changes = proxy.describe(proxy.plan_proxy(routes()))
    except ChatonError as error:
        return ProxyPreview((), str(error))
    return ProxyPreview(tuple(_("~ proxy: %(change)s") % {"change": change}
                              for change in changes))


def loaded_images(*, host: Host | None = None) -> QuerySet[HostImage]:
    """Return the images loaded onto hosts from archives (of one host), by host and name."""
    queryset = HostImage.objects.select_related("host")
    if host is not None:
        queryset = queryset.filter(host=host)
    return queryset.order_by("host__name", "reference", "-loaded_at")


@dataclass(frozen=True)
class Availability:
    """Whether one image is on one host: ``state`` is ``present`` (the pin itself),
    ``loaded`` (an image loaded from an archive under the pin's name: ``detail`` is its
    id, for ``--image``), ``missing`` (pulled at the first instance, where a registry is
    reachable) or ``unknown`` (the engine does not answer)."""

    host: Host
    image: str
    state: str
    detail: str = ""


def _repository_and_tag(image: str) -> str:
    return image.split("@", 1)[0]


def image_availability(images: Iterable[str]) -> dict[str, list[Availability]]:
    """Given images (the catalogue's pins), return for each where it is, host by host.

    Each host's engine is asked about each image once; an engine that does not
    answer is asked nothing more ("unknown"), never an exception.
    """
    wanted = list(dict.fromkeys(images))
    hosts_list = list(hosts())
    loaded: dict[tuple[int, str], str] = {}
    for record in HostImage.objects.exclude(reference="").order_by("loaded_at"):
        loaded[(record.host_id, record.reference)] = record.image_id
    found: dict[str, list[Availability]] = {image: [] for image in wanted}
    for host in hosts_list:
        engine = engine_for(host)
        reachable = True
        for image in wanted:
            name = _repository_and_tag(image)
            if (host.pk, name) in loaded:
                found[image].append(Availability(host, image, "loaded",
                                                 loaded[(host.pk, name)]))
                continue
            if not reachable:
                found[image].append(Availability(host, image, "unknown"))
                continue
            try:
                present = engine.has_image(image)
            except DockerError:
                reachable = False
                found[image].append(Availability(host, image, "unknown"))
                continue
            found[image].append(Availability(host, image, "present" if present else "missing"))
    return found
