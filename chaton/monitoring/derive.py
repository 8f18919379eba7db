"""The probes Chaton derives from its desired state, and the reconcile that keeps them in step.

:func:`desired_probes` reads what should run — open instances (their
manifest's health path and ``[[probes]]``), the directory, Chaton's own web,
each host's Docker engine, each backup plan, the data directory's disk — and
returns one :class:`Desired` per probe. :func:`plan` compares them with the
derived rows; :func:`reconcile` applies the difference: adds what is
missing, updates what changed, removes probes whose source disappeared.
Custom probes are never touched. A probe's state, history and incidents
survive an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from chaton.backups.models import Plan
from chaton.core import audit
from chaton.monitoring.models import Kind, Probe, Source
from chaton.services.models import DesiredState, Host, Instance

#: The service labels people see for Chaton's own parts (translated when shown).
DIRECTORY = "Directory"
BACKUPS = "Backups"
CHATON = "Chaton"

#: Fields of a probe the reconcile sets (the others are its state and history).
DERIVED_FIELDS = ("name", "kind", "target", "conditions", "options", "service", "instance",
                  "public", "interval_seconds", "timeout_seconds")


@dataclass(frozen=True)
class Desired:
    """A probe as the desired state asks for it."""

    key: str
    name: str
    kind: str
    target: str
    service: str
    conditions: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    instance: Instance | None = None
    public: bool = False
    interval_seconds: int = 60
    timeout_seconds: int = 10

    def values(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "target": self.target,
                "conditions": list(self.conditions), "options": self.options,
                "service": self.service, "instance": self.instance, "public": self.public,
                "interval_seconds": self.interval_seconds,
                "timeout_seconds": self.timeout_seconds}


def instance_service(instance: Instance) -> str:
    """Return the label people see for an instance: its application's label and its domain."""
    try:
        label = instance.manifest.label
    except KeyError:
        label = instance.application
    return f"{label} ({instance.domain})"


def _https_options() -> dict[str, Any]:
    """Options of an HTTPS probe of one of Chaton's domains: where the proxy listens, the CA."""
    proxy = settings.CHATON.proxy
    options: dict[str, Any] = {
        "connect_to": f"{proxy.listen_host or '127.0.0.1'}:{proxy.https_port}"}
    ca_file = settings.CHATON.monitoring.ca_file
    if ca_file:
        options["ca_file"] = ca_file
    return options


def instance_probes(instance: Instance) -> list[Desired]:
    """Return the probes of one open instance: its health path, its manifest's probes."""
    service = instance_service(instance)
    try:
        manifest = instance.manifest
    except KeyError:
        return []
    options = _https_options()
    probes = [Desired(
        key=f"instance:{instance.slug}:https", name=_("%(service)s over HTTPS")
        % {"service": service}, kind=Kind.HTTP,
        target=f"https://{instance.domain}{manifest.health.path}", service=service,
        conditions=(f"[STATUS] == {manifest.health.status}",), options=options,
        instance=instance, public=True)]
    for index, probe in enumerate(manifest.probes, start=1):
        conditions = [f"[STATUS] == {probe.status}"]
        if probe.contains:
            conditions.append(f"[BODY] contains {probe.contains}")
        probes.append(Desired(
            key=f"instance:{instance.slug}:probe-{index}",
            name=_("%(service)s: %(path)s") % {"service": service, "path": probe.path},
            kind=Kind.HTTP, target=f"https://{instance.domain}{probe.path}", service=service,
            conditions=tuple(conditions), options=options, instance=instance, public=True))
    return probes


def directory_probe() -> Desired:
    """The directory: a bind with Chaton's account (its password read at run time), a base
    search."""
    ldap = settings.CHATON.ldap
    return Desired(key="directory:ldap", name=_("Directory: bind and search"), kind=Kind.LDAP,
                   target=ldap.url, service=DIRECTORY, conditions=("[CONNECTED] == true",),
                   options={"bind_dn": ldap.bind_dn, "base": ldap.base_dn}, public=True)


def web_probe() -> Desired:
    """Chaton's own web: its public URL answers."""
    return Desired(key="chaton:web", name=_("Chaton's web"), kind=Kind.WEB,
                   target=settings.CHATON.resolved_public_url + "/", service=CHATON,
                   public=True)


def host_probes(host: Host) -> list[Desired]:
    """A host's Docker engine answers a ping."""
    return [Desired(key=f"host:{host.name}:docker", name=_("Docker engine of %(host)s")
                    % {"host": host.name}, kind=Kind.DOCKER, target=host.docker_url,
                    service=host.name)]


def plan_probes(plan: Plan) -> list[Desired]:
    """A backup plan: the last good backup's age, the last drill, the repository's last check."""
    return [
        Desired(key=f"backup:{plan.name}:age", name=_("Backup plan %(plan)s: last good backup")
                % {"plan": plan.name}, kind=Kind.BACKUP, target=f"{plan.name}:age",
                service=BACKUPS, public=True, interval_seconds=300),
        Desired(key=f"backup:{plan.name}:drill", name=_("Backup plan %(plan)s: last drill")
                % {"plan": plan.name}, kind=Kind.BACKUP, target=f"{plan.name}:drill",
                service=BACKUPS, interval_seconds=300),
        Desired(key=f"backup:{plan.name}:check",
                name=_("Backup plan %(plan)s: last repository check") % {"plan": plan.name},
                kind=Kind.BACKUP, target=f"{plan.name}:check", service=BACKUPS,
                interval_seconds=300),
    ]


def disk_probes() -> list[Desired]:
    """Free space of the data directory and of the default host's Docker root, when local."""
    probes = [Desired(key="disk:data", name=_("Disk space of the data directory"),
                      kind=Kind.DISK, target=str(settings.DATA_DIR), service=CHATON,
                      interval_seconds=300)]
    services = settings.CHATON.services
    if services.docker_managed != "no":
        root = services.docker_data_root or str(settings.DATA_DIR / "docker" / "data")
        for host in Host.objects.filter(is_default=True):
            probes.append(Desired(key=f"disk:{host.name}:docker",
                                  name=_("Disk space of the Docker root of %(host)s")
                                  % {"host": host.name}, kind=Kind.DISK, target=root,
                                  service=host.name, interval_seconds=300))
    return probes


def desired_probes() -> list[Desired]:
    """Return every probe the desired state asks for."""
    desired = [directory_probe(), web_probe()]
    for instance in Instance.objects.filter(state=DesiredState.RUNNING).order_by("slug"):
        desired += instance_probes(instance)
    for host in Host.objects.order_by("name"):
        desired += host_probes(host)
    for plan in Plan.objects.filter(enabled=True).order_by("name"):
        desired += plan_probes(plan)
    desired += disk_probes()
    return desired


@dataclass
class ReconcilePlan:
    """What the reconcile would do: probes to add, to update, to remove (keys)."""

    add: list[Desired] = field(default_factory=list)
    update: list[Desired] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.update or self.remove)

    def lines(self) -> list[str]:
        return ([f"+ {item.key}" for item in self.add] + [f"~ {item.key}" for item in self.update]
                + [f"- {key}" for key in self.remove])


def _differs(probe: Probe, desired: Desired) -> bool:
    values = desired.values()
    for name in DERIVED_FIELDS:
        current = probe.instance_id if name == "instance" else getattr(probe, name)
        wanted = values[name].pk if name == "instance" and values[name] else values[name]
        if current != wanted:
            return True
    return False


def plan(desired: Sequence[Desired] | None = None) -> ReconcilePlan:
    """Compare the desired probes with the derived rows; return the difference."""
    wanted = {item.key: item for item in (desired if desired is not None else desired_probes())}
    existing = {probe.key: probe for probe in Probe.objects.filter(source=Source.DERIVED)}
    result = ReconcilePlan()
    for key, item in wanted.items():
        probe = existing.get(key)
        if probe is None:
            result.add.append(item)
        elif _differs(probe, item):
            result.update.append(item)
    result.remove = sorted(set(existing) - set(wanted))
    return result


def reconcile(*, dry_run: bool = False) -> list[str]:
    """Make the derived probes match the desired state; return one line per change.

    A key held by a custom probe is left alone (the custom one wins). Each change
    is written to the audit log as the system's.
    """
    difference = plan()
    if dry_run or not difference:
        return difference.lines()
    custom = set(Probe.objects.filter(source=Source.CUSTOM).values_list("key", flat=True))
    with transaction.atomic():
        for item in difference.add:
            if item.key in custom:
                continue
            probe = Probe.objects.create(key=item.key, source=Source.DERIVED, **item.values())
            audit.record("monitoring.probe_derived", probe, acting_user=None,
                         after={"key": probe.key, "target": probe.target},
                         actor_label="monitoring")
        for item in difference.update:
            probe = Probe.objects.get(key=item.key)
            before = {"target": probe.target, "conditions": probe.conditions}
            for name, value in item.values().items():
                setattr(probe, name, value)
            probe.save(update_fields=[*DERIVED_FIELDS, "updated_at"])
            audit.record("monitoring.probe_updated", probe, acting_user=None, before=before,
                         after={"target": probe.target, "conditions": probe.conditions},
                         actor_label="monitoring")
        for probe in Probe.objects.filter(source=Source.DERIVED, key__in=difference.remove):
            audit.record("monitoring.probe_removed", probe, acting_user=None,
                         before={"key": probe.key}, actor_label="monitoring")
            probe.delete()
    return difference.lines()
