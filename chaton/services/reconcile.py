"""Reconcile the services: read each host's engine, diff with the instances, apply the plan.

:func:`reconcile` reads every host once (:meth:`Engine.snapshot`: a few list
calls, no inspect), builds a :class:`Plan` — a value to print, test, or apply
— and unless ``dry_run`` applies it, then hands every route to the proxy
(:func:`chaton.services.proxy.sync_proxy`). Applying a plan twice changes
nothing: the second plan is empty.

Per instance, in this order: its network, its volumes, its companion database
(when the manifest has one) and its application, each a container — or a
Swarm service published in host mode on a Swarm host — named after the hash
of its spec (``chaton-<slug>-<role>-<hash>``) and labelled with it.

- **Drift.** A workload stopped, removed or changed by hand (its spec label is
  neither the desired one nor the last one Chaton applied, or its image or
  environment differ from its label's) is reported in the plan and repaired
  by apply; the instance's history records the repair.
- **Upgrades, blue/green, on containers and Swarm services alike.** The new
  version starts next to the old one, on its own name and port. It must
  become healthy within the manifest's timeout — Docker says ``healthy`` when
  its image declares a health check (a Swarm task is *running* only then),
  and the manifest's HTTP check answers — and stay so at every look for
  ``services.upgrade_stability_seconds`` (:func:`wait_healthy`). Only then
  does the route switch and the old one go. Otherwise the new one is
  removed, the old one keeps serving, the instance's pin goes back, and the
  history and the audit log say "rolled back".
- **Crash safety.** Every step is idempotent and found again by the next
  plan: a run killed half way is completed by the next one, and an upgrade
  left under way is taken up where it stopped.
- **Ownership.** Only objects carrying ``org.chaton.owned=1`` are considered.
  Workloads and networks of an instance that no longer exists are removed;
  its volumes (data) are kept and reported, removed only with
  ``delete_orphan_volumes``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from chaton.adapters.docker import (
    DockerError,
    Engine,
    EngineError,
    EngineUnreachable,
    NetworkSpec,
    Port,
    Snapshot,
    VolumeSpec,
    Workload,
    WorkloadSpec,
)
from chaton.adapters.ldap import LdapError, escape_dn_value, escape_filter_value
from chaton.core import audit, clock, runner, secrets
from chaton.services import accounts, catalog, proxy
from chaton.services.catalog import Health, Manifest
from chaton.services.engine import engine_for as engine_for  # where the services' engines come from
from chaton.services.models import (
    Deployment,
    DeploymentKind,
    DesiredState,
    Host,
    Instance,
    Outcome,
)

logger = logging.getLogger("chaton.services")

APP = "app"
DATABASE = "database"
#: The port each kind of companion database listens on, inside the instance's network.
DATABASE_PORTS = {"postgres": 5432, "mariadb": 3306}
#: The key of ``Instance.applied`` that holds the hash of the setup commands last run.
SETUP_KEY = "setup"
#: Seconds between two looks at a new version during its health check.
HEALTH_POLL_SECONDS = 0.25
#: Seconds the old version of an upgrade keeps running once the proxy dials the new one:
#: the requests the proxy had already sent it finish.
DRAIN_SECONDS = 2.0


class RenderError(ValueError):
    """A manifest names a placeholder that does not exist."""


# -- the desired state of one instance ----------------------------------------------------------


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z][a-z_]*(?:\.[A-Za-z0-9_]+)?)\}")


def render(template: str, context: Mapping[str, str]) -> str:
    """Given a value with ``{placeholders}`` and their values, return it filled in.

    ``{{`` and ``}}`` stand for literal braces. Raise RenderError for an unknown
    placeholder.
    """
    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name not in context:
            raise RenderError(f"unknown placeholder {{{name}}}")
        return context[name]

    return _PLACEHOLDER.sub(substitute, template)


def secret_lengths(manifest: Manifest) -> dict[str, int]:
    """Given a manifest, return the secrets an instance of it holds: the manifest's, and the
    companion database's passwords."""
    lengths = {secret.name: secret.length for secret in manifest.secrets}
    if manifest.ldap.supported:
        lengths.setdefault(accounts.PASSWORD_SECRET, accounts.PASSWORD_LENGTH)
    if manifest.database is not None:
        lengths.setdefault("database_password", 32)
        if manifest.database.kind == "mariadb":
            lengths.setdefault("database_root_password", 32)
    return lengths


def setting_text(value: Any) -> str:
    """Return a setting's value as an environment variable holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def database_name(manifest: Manifest) -> str:
    """The companion database's name and user: the application's name, as SQL likes it."""
    return manifest.name.replace("-", "_")


def ldap_context(instance: Instance, secret_values: Mapping[str, str]) -> dict[str, str]:
    """Given an instance and its secrets in clear, return its ``{ldap.*}`` placeholders.

    ``bind_dn`` and ``bind_password`` are the instance's own read-only service
    account (:mod:`chaton.services.accounts`); empty for an application without
    LDAP login. ``user_filter`` selects the people who may log in: with a login
    group, only its members (``memberOf``, kept by slapd's memberof overlay).
    """
    from chaton.directory.backend import base_dn

    base = base_dn()
    group = instance.login_group
    group_dn = f"cn={escape_dn_value(group.name)},ou=groups,{base}" if group else ""
    user_filter = "(objectClass=inetOrgPerson)"
    if group_dn:
        user_filter = f"(&{user_filter}(memberOf={escape_filter_value(group_dn)}))"
    url = instance.host.ldap_url or settings.CHATON.ldap.url
    bind_dn = bind_password = ""
    if accounts.has_account(instance):
        bind_dn = accounts.account_dn(instance.slug, base)
        bind_password = secret_values.get(accounts.PASSWORD_SECRET, "")
    return {
        "ldap.url": url, "ldap.base_dn": base, "ldap.people_dn": f"ou=people,{base}",
        "ldap.groups_dn": f"ou=groups,{base}", "ldap.group": group.name if group else "",
        "ldap.group_dn": group_dn, "ldap.user_filter": user_filter,
        "ldap.bind_dn": bind_dn, "ldap.bind_password": bind_password,
    }


def placeholder_context(instance: Instance, manifest: Manifest,
                        secret_values: Mapping[str, str]) -> dict[str, str]:
    """Return every placeholder a manifest may name, for one instance."""
    context = {"domain": instance.domain, "slug": instance.slug,
               "url": f"https://{instance.domain}"}
    context.update({f"secret.{name}": value for name, value in secret_values.items()})
    values = {setting.name: setting.default for setting in manifest.settings}
    values.update(instance.settings)
    context.update({f"setting.{name}": setting_text(value) for name, value in values.items()})
    context.update(ldap_context(instance, secret_values))
    if manifest.database is not None:
        context.update({
            "database.kind": manifest.database.kind, "database.host": DATABASE,
            "database.port": str(DATABASE_PORTS[manifest.database.kind]),
            "database.name": database_name(manifest), "database.user": database_name(manifest),
            "database.password": secret_values.get("database_password", ""),
        })
    return context


_LDAP_PLACEHOLDERS = ("url", "base_dn", "people_dn", "groups_dn", "group", "group_dn",
                      "user_filter", "bind_dn", "bind_password")
_DATABASE_PLACEHOLDERS = ("kind", "host", "port", "name", "user", "password")


def known_placeholders(manifest: Manifest) -> set[str]:
    """Return every placeholder an instance of ``manifest`` can fill (for checking manifests
    without any instance)."""
    names = {"domain", "slug", "url"}
    names |= {f"secret.{name}" for name in secret_lengths(manifest)}
    names |= {f"setting.{setting.name}" for setting in manifest.settings}
    names |= {f"ldap.{name}" for name in _LDAP_PLACEHOLDERS}
    if manifest.database is not None:
        names |= {f"database.{name}" for name in _DATABASE_PLACEHOLDERS}
    return names


def placeholders_in(template: str) -> set[str]:
    """Return the placeholder names a value uses."""
    return {match.group(1) for match in _PLACEHOLDER.finditer(template) if match.group(1)}


def instance_secrets(instance: Instance) -> dict[str, str]:
    """Return an instance's secrets in clear, generating (and saving) any that is missing.

    A secret is generated once, at creation; one appears later only when a new
    version of the manifest asks for a new one. Raise SecretError when the
    stored ones do not decrypt with this installation's key.
    """
    import secrets as random

    lengths = secret_lengths(instance.manifest)
    missing = [name for name in lengths if name not in instance.secrets]
    if missing:
        for name in missing:
            instance.secrets[name] = secrets.encrypt(random.token_urlsafe(lengths[name])
                                                     [:lengths[name]])
        instance.save(update_fields=["secrets"])
        logger.info("services: generated the secrets %s of %s", ", ".join(missing),
                    instance.slug)
    return {name: secrets.decrypt(ciphertext) for name, ciphertext in instance.secrets.items()}


def network_name(slug: str) -> str:
    return f"chaton-{slug}"


def volume_name(slug: str, volume: str) -> str:
    return f"chaton-{slug}-{volume}"


def bind_ip(host: Host) -> str:
    """Where a host's published ports are bound: its address when it is an IP, else everywhere."""
    try:
        return str(ipaddress.ip_address(host.address))
    except ValueError:
        return ""


def upstream(host: Host, port: int) -> str:
    """The ``host:port`` the proxy dials for a port published on ``host``."""
    address = host.address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class Setup:
    """The commands an application's ``app.py`` wants run in its container once healthy."""

    commands: tuple[tuple[str, ...], ...]
    user: str
    workdir: str

    @property
    def setup_hash(self) -> str:
        encoded = json.dumps([[list(command) for command in self.commands], self.user,
                              self.workdir]).encode()
        return hashlib.sha256(encoded).hexdigest()[:20]


@dataclass(frozen=True)
class Desired:
    """What must run for one instance: its network, volumes and workloads by role, and the
    setup commands of its application (if its ``app.py`` has some)."""

    network: NetworkSpec
    volumes: tuple[VolumeSpec, ...]
    workloads: dict[str, WorkloadSpec]
    setup: Setup | None = None


def _hook(manifest: Manifest, name: str) -> Callable[..., Any] | None:
    """Return one of the application's ``app.py`` hooks (see catalog.app_module), or None."""
    hook = getattr(catalog.app_module(manifest.name), name, None)
    return hook if callable(hook) else None


def _setup(manifest: Manifest, values: Mapping[str, Any],
           context: Mapping[str, str]) -> Setup | None:
    hook = _hook(manifest, "setup_commands")
    if hook is None:
        return None
    module = catalog.app_module(manifest.name)
    commands = tuple(tuple(str(part) for part in command) for command in hook(values, context))
    if not commands:
        return None
    return Setup(commands, str(getattr(module, "SETUP_USER", "")),
                 str(getattr(module, "SETUP_DIRECTORY", "")))


def desired_for(instance: Instance, *, upgrade: Deployment | None = None) -> Desired:
    """Given a running instance (and its upgrade under way), return what must run for it.

    During an upgrade the application's spec is the new version's, on the
    upgrade's own port. Raise KeyError when the application left the
    catalogue, RenderError for an unknown placeholder, SecretError.
    """
    manifest = instance.manifest
    slug = instance.slug
    host = instance.host
    secret_values = instance_secrets(instance)
    context = placeholder_context(instance, manifest, secret_values)
    network = network_name(slug)
    volumes = [VolumeSpec(volume_name(slug, volume.name), slug) for volume in manifest.volumes]
    workloads: dict[str, WorkloadSpec] = {}
    if manifest.database is not None:
        database = manifest.database
        name = database_name(manifest)
        password = secret_values["database_password"]
        if database.kind == "postgres":
            environment = {"POSTGRES_DB": name, "POSTGRES_USER": name,
                           "POSTGRES_PASSWORD": password}
            if database.path != "/var/lib/postgresql/data":
                environment["PGDATA"] = database.path
        else:
            environment = {"MARIADB_DATABASE": name, "MARIADB_USER": name,
                           "MARIADB_PASSWORD": password,
                           "MARIADB_ROOT_PASSWORD": secret_values["database_root_password"]}
        database_volume = VolumeSpec(volume_name(slug, DATABASE), slug)
        volumes.append(database_volume)
        workloads[DATABASE] = WorkloadSpec(
            instance=slug, role=DATABASE, image=database.image, network=network, alias=DATABASE,
            environment=tuple(sorted(environment.items())),
            mounts=((database_volume.name, database.path),))
    environment = {name: render(value, context) for name, value in manifest.environment.items()}
    values = {setting.name: setting.default for setting in manifest.settings}
    values.update(instance.settings)
    for setting in manifest.settings:
        if setting.env:
            environment[setting.env] = setting_text(values[setting.name])
    port = upgrade.to_port if upgrade is not None and upgrade.to_port else instance.port
    files_hook = _hook(manifest, "files")
    files = files_hook(values, context) if files_hook is not None else {}
    workloads[APP] = WorkloadSpec(
        instance=slug, role=APP, image=instance.image, network=network, alias=APP,
        environment=tuple(sorted(environment.items())),
        command=tuple(render(part, context) for part in manifest.command),
        mounts=tuple((volume_name(slug, volume.name), volume.path)
                     for volume in manifest.volumes),
        port=Port(manifest.port, port, bind_ip(host)),
        files=tuple(sorted((str(path), str(text)) for path, text in files.items())))
    return Desired(NetworkSpec(network, slug), tuple(volumes), workloads,
                   _setup(manifest, values, context))


# -- the plan ------------------------------------------------------------------------------------


class Action:
    """What a step does (the order they are applied in is ``_PHASES``)."""

    CREATE_NETWORK = "create-network"
    CREATE_VOLUME = "create-volume"
    RUN = "run"
    START = "start"
    REPLACE = "replace"
    UPGRADE = "upgrade"
    SETUP = "setup"
    REMOVE = "remove"
    REMOVE_NETWORK = "remove-network"
    REMOVE_VOLUME = "remove-volume"
    FORGET = "forget"


_SIGNS = {Action.CREATE_NETWORK: "+", Action.CREATE_VOLUME: "+", Action.RUN: "+",
          Action.START: "~", Action.REPLACE: "~", Action.UPGRADE: "^", Action.SETUP: "*",
          Action.REMOVE: "-",
          Action.REMOVE_NETWORK: "-", Action.REMOVE_VOLUME: "-", Action.FORGET: "-"}


@dataclass(frozen=True)
class Step:
    """One change on one host, for one instance (or for what an unknown instance left)."""

    action: str
    host: str
    instance: str
    #: The engine object's name (container, service, network, volume).
    target: str
    reason: str
    spec: WorkloadSpec | NetworkSpec | VolumeSpec | None = None
    #: What the step acts on: the workloads a REPLACE or REMOVE removes, the one a START
    #: starts, an upgrade's new version when it already runs.
    existing: tuple[Workload, ...] = ()
    #: An upgrade's old versions, removed once the new one took the traffic.
    stale: tuple[Workload, ...] = ()
    #: Repairs a change made by hand.
    drift: bool = False
    role: str = ""
    #: The step removes an upgrade's old version: only once the proxy routes elsewhere.
    after_switch: bool = False
    #: A SETUP step's commands (they may hold secrets: never printed).
    setup: Setup | None = None

    def line(self) -> str:
        """Return the step as a line a person reads."""
        return f"{_SIGNS[self.action]} {self.host}: {self.target} ({self.reason})"


class _Base(TypedDict):
    """What every step of one instance shares."""

    host: str
    instance: str


class _RoleBase(_Base):
    """What every step of one role of one instance shares."""

    role: str


#: The order of application: what others need first, removals last.
_PHASES = {Action.CREATE_NETWORK: 0, Action.CREATE_VOLUME: 1, Action.RUN: 2, Action.START: 2,
           Action.REPLACE: 2, Action.UPGRADE: 3, Action.SETUP: 4, Action.REMOVE: 5,
           Action.REMOVE_NETWORK: 6, Action.REMOVE_VOLUME: 7, Action.FORGET: 8}


def _phase(step: Step) -> tuple[int, int]:
    phase = _PHASES[step.action]
    if step.action in (Action.RUN, Action.START, Action.REPLACE):
        # The database before the application that connects to it …
        return phase, 0 if step.role == DATABASE else 1
    if step.action == Action.REMOVE:
        # … and removed after it.
        return phase, 1 if step.role == DATABASE else 0
    return phase, 0


@dataclass
class Plan:
    """The changes that bring every host to the desired state, and what was noticed."""

    steps: list[Step] = field(default_factory=list)
    #: What is reported and left alone (the data of an instance that no longer exists).
    kept: list[str] = field(default_factory=list)
    #: Hosts that could not be read, and instances that could not be planned: why.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def is_noop(self) -> bool:
        return not self.steps

    @property
    def drift(self) -> list[Step]:
        """The steps that repair a change made by hand."""
        return [step for step in self.steps if step.drift]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for step in self.steps:
            counts[step.action] = counts.get(step.action, 0) + 1
        return counts

    def lines(self) -> list[str]:
        """Return the plan as lines: ``+`` create, ``~`` change, ``^`` upgrade, ``*`` setup
        commands, ``-`` remove, ``!`` drift (a change made by hand, repaired), ``?`` kept,
        ``x`` not planned (a host that does not answer …)."""
        lines = []
        for step in self.steps:
            lines.append(("! " + step.line()[2:]) if step.drift else step.line())
        lines += ["? " + line for line in self.kept]
        lines += [f"x {name}: {error}" for name, error in sorted(self.errors.items())]
        return lines

    def for_instance(self, slug: str) -> list[Step]:
        return [step for step in self.steps if step.instance == slug]


def _matches(workload: Workload, spec: WorkloadSpec) -> bool:
    """Whether a workload runs ``spec``: its label, its image, and (a service's listed spec)
    its environment agree."""
    if workload.spec_hash != spec.spec_hash or workload.name != spec.name:
        return False
    if workload.image != spec.image:
        return False
    return workload.environment is None or workload.environment == spec.environment


def _stopped(workload: Workload) -> bool:
    """Whether a workload with the right spec needs starting: stopped, or scaled to zero."""
    if workload.kind == "service":
        return workload.replicas == 0
    return workload.state in ("exited", "created", "dead")


def _plan_workload(plan: Plan, host: Host, instance: Instance, spec: WorkloadSpec,
                   observed: list[Workload]) -> None:
    """Add the steps that make one role of a running instance run ``spec``."""
    applied = instance.applied.get(spec.role)
    role_label = _role_label(spec.role)
    matching = [workload for workload in observed if _matches(workload, spec)]
    others = [workload for workload in observed if workload not in matching]
    base: _RoleBase = {"host": host.name, "instance": instance.slug, "role": spec.role}
    if matching:
        current = matching[0]
        if _stopped(current):
            plan.steps.append(Step(Action.START, target=current.name, spec=spec,
                                   existing=(current,), drift=True,
                                   reason=_("%(role)s stopped by hand: started again")
                                   % {"role": role_label}, **base))
        for workload in others:
            plan.steps.append(Step(
                Action.REMOVE, target=workload.name, existing=(workload,),
                after_switch=spec.role == APP,
                reason=_("replaced by %(name)s") % {"name": current.name}, **base))
        return
    if others:
        # Chaton's own earlier spec is a planned change (settings, manifest); anything else —
        # the desired label on another image or environment included — was made by hand.
        by_hand = any(workload.spec_hash == spec.spec_hash or workload.spec_hash != applied
                      for workload in others)
        reason = (_("%(role)s changed by hand: replaced") if by_hand
                  else _("%(role)s spec changed: replaced")) % {"role": role_label}
        plan.steps.append(Step(Action.REPLACE, target=spec.name, spec=spec,
                               existing=tuple(others), drift=by_hand, reason=reason, **base))
        return
    if applied:
        plan.steps.append(Step(Action.RUN, target=spec.name, spec=spec, drift=True,
                               reason=_("%(role)s removed by hand: created again")
                               % {"role": role_label}, **base))
    else:
        plan.steps.append(Step(Action.RUN, target=spec.name, spec=spec,
                               reason=_("%(role)s missing") % {"role": role_label}, **base))


def _role_label(role: str) -> str:
    return {APP: _("application"), DATABASE: _("database")}.get(role, role)


def _plan_running(plan: Plan, host: Host, instance: Instance, snapshot: Snapshot,
                  observed: list[Workload], upgrade: Deployment | None) -> None:
    """Add the steps for an instance that must run."""
    desired = desired_for(instance, upgrade=upgrade)
    base: _Base = {"host": host.name, "instance": instance.slug}
    applied = bool(instance.applied)
    if desired.network.name not in snapshot.networks:
        plan.steps.append(Step(Action.CREATE_NETWORK, target=desired.network.name,
                               spec=desired.network, reason=_("network missing"), **base))
    for volume in desired.volumes:
        if volume.name not in snapshot.volumes:
            plan.steps.append(Step(
                Action.CREATE_VOLUME, target=volume.name, spec=volume, drift=applied,
                reason=_("volume removed by hand: created again, empty") if applied
                else _("volume missing"), **base))
    for role, spec in desired.workloads.items():
        of_role = [workload for workload in observed if workload.role == role]
        if role == APP and upgrade is not None:
            candidate = [workload for workload in of_role if _matches(workload, spec)]
            plan.steps.append(Step(
                Action.UPGRADE, target=spec.name, spec=spec, role=role,
                existing=tuple(candidate),
                stale=tuple(workload for workload in of_role if workload not in candidate),
                reason=_("upgrade from %(from)s to %(to)s, checked on port %(port)d")
                % {"from": upgrade.from_image, "to": upgrade.to_image,
                   "port": upgrade.to_port or 0}, **base))
            continue
        _plan_workload(plan, host, instance, spec, of_role)
    if (desired.setup is not None and upgrade is None
            and instance.applied.get(SETUP_KEY) != desired.setup.setup_hash):
        app = desired.workloads[APP]
        plan.steps.append(Step(Action.SETUP, target=app.name, spec=app, role=APP,
                               setup=desired.setup,
                               reason=_("%(count)d setup command(s) to run once healthy")
                               % {"count": len(desired.setup.commands)}, **base))
    known_roles = set(desired.workloads)
    for workload in observed:
        if workload.role not in known_roles:
            plan.steps.append(Step(Action.REMOVE, target=workload.name, existing=(workload,),
                                   role=workload.role, reason=_("no longer wanted"), **base))
    wanted_volumes = {volume.name for volume in desired.volumes}
    for name, slug in sorted(snapshot.volumes.items()):
        if slug == instance.slug and name not in wanted_volumes:
            plan.kept.append(_("%(host)s: volume %(name)s of %(slug)s is no longer used: kept")
                             % {"host": host.name, "name": name, "slug": slug})


def _plan_not_running(plan: Plan, host: Host, instance: Instance, snapshot: Snapshot,
                      observed: list[Workload]) -> None:
    """Add the steps for a stopped instance (nothing runs) or one being removed."""
    base: _Base = {"host": host.name, "instance": instance.slug}
    removing = instance.state == DesiredState.REMOVED
    reason = _("instance removed") if removing else _("instance stopped")
    for workload in observed:
        plan.steps.append(Step(Action.REMOVE, target=workload.name, existing=(workload,),
                               role=workload.role, reason=reason, **base))
    if not removing:
        return
    network = network_name(instance.slug)
    if network in snapshot.networks:
        plan.steps.append(Step(Action.REMOVE_NETWORK, target=network, reason=reason, **base))
    for name, slug in sorted(snapshot.volumes.items()):
        if slug != instance.slug:
            continue
        if instance.remove_data:
            plan.steps.append(Step(Action.REMOVE_VOLUME, target=name,
                                   reason=_("instance removed with its data"), **base))
        else:
            plan.kept.append(_("%(host)s: volume %(name)s of the removed instance %(slug)s: "
                               "kept") % {"host": host.name, "name": name, "slug": slug})
    plan.steps.append(Step(Action.FORGET, target=instance.slug, reason=reason, **base))


def plan_host(host: Host, snapshot: Snapshot, instances: Sequence[Instance], *,
              upgrades: Mapping[int, Deployment], whole_host: bool = True,
              delete_orphan_volumes: bool = False, plan: Plan | None = None) -> Plan:
    """Given a host, what its engine holds, its instances and their upgrades under way,
    return the plan (added to ``plan`` when given).

    With ``whole_host``, what belongs to no instance of the host is planned too
    (removed, or for volumes kept unless ``delete_orphan_volumes``).
    """
    plan = plan if plan is not None else Plan()
    by_instance: dict[str, list[Workload]] = {}
    for workload in snapshot.workloads:
        by_instance.setdefault(workload.instance, []).append(workload)
    for instance in instances:
        observed = by_instance.get(instance.slug, [])
        try:
            if instance.state == DesiredState.RUNNING:
                _plan_running(plan, host, instance, snapshot, observed,
                              upgrades.get(instance.pk))
            else:
                _plan_not_running(plan, host, instance, snapshot, observed)
        except (KeyError, RenderError, secrets.SecretError) as error:
            # Nothing is touched for an instance that cannot be planned: it keeps running.
            plan.errors[f"{host.name}/{instance.slug}"] = (
                _("the application %(name)s is not in the catalogue") % {
                    "name": instance.application} if isinstance(error, KeyError)
                else str(error))
    if whole_host:
        _plan_orphans(plan, host, snapshot, {instance.slug for instance in instances},
                      delete_orphan_volumes)
    plan.steps.sort(key=_phase)
    return plan


def _plan_orphans(plan: Plan, host: Host, snapshot: Snapshot, known: set[str],
                  delete_orphan_volumes: bool) -> None:
    """Add the steps for what Chaton made for instances this host no longer has."""
    reason = _("no such instance")
    for workload in snapshot.workloads:
        if workload.instance not in known:
            plan.steps.append(Step(Action.REMOVE, host=host.name, instance=workload.instance,
                                   target=workload.name, existing=(workload,),
                                   role=workload.role, reason=reason))
    for name, slug in sorted(snapshot.networks.items()):
        if slug not in known:
            plan.steps.append(Step(Action.REMOVE_NETWORK, host=host.name, instance=slug,
                                   target=name, reason=reason))
    for name, slug in sorted(snapshot.volumes.items()):
        if slug in known:
            continue
        if delete_orphan_volumes:
            plan.steps.append(Step(Action.REMOVE_VOLUME, host=host.name, instance=slug,
                                   target=name, reason=reason))
        else:
            plan.kept.append(_("%(host)s: volume %(name)s of no instance (%(slug)s): kept") % {
                "host": host.name, "name": name, "slug": slug or "?"})


def pending_upgrades(instances: Iterable[Instance]) -> dict[int, Deployment]:
    """Return the upgrades under way of ``instances``, by instance id."""
    return {deployment.instance_id: deployment for deployment in Deployment.objects.filter(
        instance__in=list(instances), kind=DeploymentKind.UPGRADE, outcome=Outcome.PENDING)}


# -- health --------------------------------------------------------------------------------------


def _look(engine: Engine, name: str, address: str, port: int, health: Health,
          timeout: float) -> tuple[bool | None, str]:
    """Look once at a new version: return (True, what answered) when it is healthy now,
    (False, why not) when it is not yet, (None, why) when it never will be (gone, stopped,
    called unhealthy by Docker). Raise EngineUnreachable."""
    workload = engine.workload(name)
    if workload is None:
        return None, _("the new version is gone")
    if workload.kind == "container" and workload.state in ("exited", "dead"):
        return None, _("the new version stopped (%(state)s)") % {"state": workload.state}
    if workload.health == "unhealthy":
        return None, _("Docker's health check calls it unhealthy")
    if not workload.running:
        return False, _("the new version is %(state)s") % {"state": workload.state}
    # An image that declares a health check is healthy only once Docker says so.
    if workload.health == "starting":
        return False, _("Docker's health check still says starting")
    try:
        status = engine.probe(address, port, health.path, timeout=timeout)
    except OSError as error:
        return False, f"{health.path}: {error}"
    if status != health.status:
        return False, _("%(path)s answered %(status)d instead of %(expected)d") % {
            "path": health.path, "status": status, "expected": health.status}
    if workload.health == "healthy":
        return True, _("Docker says healthy and %(path)s answered %(status)d") % {
            "path": health.path, "status": status}
    return True, _("%(path)s answered %(status)d") % {"path": health.path, "status": status}


def wait_healthy(engine: Engine, name: str, address: str, port: int, health: Health, *,
                 stability: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[bool, str]:
    """Given a new workload's name and where it is published, wait until it is healthy and
    has stayed so for ``stability`` seconds.

    Healthy means: it runs, the manifest's HTTP check answers, and when its
    image declares a Docker health check, Docker says ``healthy`` (not
    ``starting``). It must become so within ``health.timeout`` seconds, then
    pass every look (one each HEALTH_POLL_SECONDS) for ``stability`` seconds.
    Return (True, what answered), or (False, why not) as soon as one look
    fails after it was healthy, it is gone or has exited, Docker calls it
    unhealthy, or the time is out. Raise EngineUnreachable.
    """
    deadline = monotonic() + health.timeout
    healthy_since: float | None = None
    while True:
        timeout = 2.0 if healthy_since is not None else max(0.5, min(2.0,
                                                                     deadline - monotonic()))
        healthy, detail = _look(engine, name, address, port, health, timeout)
        now = monotonic()
        if not healthy and healthy_since is not None:
            return False, _("healthy at first, then after %(seconds).1f s: %(detail)s") % {
                "seconds": now - healthy_since, "detail": detail}
        if healthy is None:
            return False, detail
        if healthy:
            if healthy_since is None:
                healthy_since = now
            if now - healthy_since >= stability:
                if stability <= 0:
                    return True, detail
                return True, _("%(detail)s, steadily for %(seconds)g s") % {
                    "detail": detail, "seconds": stability}
        elif now >= deadline:
            return False, _("no healthy answer within %(seconds)d s: %(last)s") % {
                "seconds": health.timeout, "last": detail}
        sleep(HEALTH_POLL_SECONDS)


# -- applying ------------------------------------------------------------------------------------


@dataclass
class Failure:
    step: Step
    error: Exception

    def __str__(self) -> str:
        return f"{self.step.target}: {self.error}"


@dataclass
class Result:
    """What applying a plan did."""

    applied: int = 0
    failures: list[Failure] = field(default_factory=list)
    #: Upgrades decided in this run: (instance slug, outcome).
    upgrades: list[tuple[str, str]] = field(default_factory=list)
    #: What the proxy changed (lines for people), and why it could not, if it could not.
    proxy_changes: list[str] = field(default_factory=list)
    proxy_error: str = ""
    #: What the services' accounts in the directory changed, and why they could not (the
    #: applications run all the same; people cannot log in to a new one until the next run
    #: writes its account).
    account_changes: list[str] = field(default_factory=list)
    directory_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures and not self.proxy_error


_instance_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def _instance_lock(slug: str) -> threading.Lock:
    """One lock per instance in this process: an action's reconcile and the worker's never
    work on the same instance at once."""
    with _locks_lock:
        return _instance_locks.setdefault(slug, threading.Lock())


def routes() -> list[proxy.Route]:
    """Return the route of every instance that must run: its domain → its host's address and
    the port that serves (the old one while an upgrade is checked)."""
    serving = {deployment.instance_id: deployment.from_port for deployment in
               Deployment.objects.filter(kind=DeploymentKind.UPGRADE, outcome=Outcome.PENDING)}
    return [proxy.Route(instance.domain,
                        upstream(instance.host, serving.get(instance.pk) or instance.port))
            for instance in Instance.objects.filter(state=DesiredState.RUNNING)
            .select_related("host").order_by("domain")]


class _Run:
    """The state of one application of a plan: engines, results, and the proxy's state."""

    def __init__(self, hosts: Mapping[str, Host], engines: Mapping[str, Engine],
                 instances: Mapping[str, Instance], dry_run: bool) -> None:
        self.hosts = hosts
        self.engines = engines
        self.instances = instances
        self.dry_run = dry_run
        self.result = Result()
        #: Whether the proxy serves the routes of the database as it is now.
        self.proxy_current = False

    def sync_proxy(self) -> bool:
        """Hand every route to the proxy; return whether it took them (errors are recorded)."""
        try:
            changes = proxy.sync_proxy(routes(), dry_run=self.dry_run)
        except Exception as error:  # the proxy's failure must not stop the reconcile
            logger.warning("services: the proxy did not take the routes: %s", error)
            self.result.proxy_error = str(error)
            self.proxy_current = False
            return False
        self.result.proxy_changes += changes
        self.result.proxy_error = ""
        self.proxy_current = True
        return True


def _record_applied(instance: Instance, role: str, spec_hash: str) -> None:
    if instance.applied.get(role) != spec_hash:
        instance.applied[role] = spec_hash
        instance.save(update_fields=["applied"])


def _apply_step(run: _Run, step: Step, engine: Engine) -> None:
    """Apply one step (not an upgrade). Raise DockerError."""
    dry_run = run.dry_run
    instance = run.instances.get(step.instance)
    if step.action == Action.CREATE_NETWORK:
        assert isinstance(step.spec, NetworkSpec)
        engine.create_network(step.spec, dry_run=dry_run)
    elif step.action == Action.CREATE_VOLUME:
        assert isinstance(step.spec, VolumeSpec)
        engine.create_volume(step.spec, dry_run=dry_run)
    elif step.action in (Action.RUN, Action.REPLACE, Action.START):
        assert isinstance(step.spec, WorkloadSpec)
        if step.action == Action.START:
            engine.start(step.existing[0], dry_run=dry_run)
        else:
            for workload in step.existing:
                engine.remove(workload, dry_run=dry_run)
            engine.run(step.spec, dry_run=dry_run)
        if not dry_run and instance is not None:
            _record_applied(instance, step.role, step.spec.spec_hash)
    elif step.action == Action.REMOVE:
        for workload in step.existing:
            engine.remove(workload, dry_run=dry_run)
    elif step.action == Action.REMOVE_NETWORK:
        engine.remove_network(step.target, dry_run=dry_run)
    elif step.action == Action.REMOVE_VOLUME:
        engine.remove_volume(step.target, dry_run=dry_run)
    elif step.action == Action.FORGET and not dry_run and instance is not None:
        with transaction.atomic():
            audit.record("instance.removed", instance, acting_user=None,
                         actor_label="reconciler",
                         before={"domain": instance.domain, "host": instance.host.name,
                                 "data_removed": instance.remove_data})
            instance.delete()


def _finish_upgrade(instance: Instance, deployment: Deployment, outcome: str, message: str,
                    spec: WorkloadSpec | None = None) -> bool:
    """Record an upgrade's outcome, unless another process already did; return whether this
    call did. A healthy upgrade moves the instance to the new port; any other outcome
    puts its pin back."""
    with transaction.atomic():
        finished = Deployment.objects.filter(pk=deployment.pk, outcome=Outcome.PENDING).update(
            outcome=outcome, message=message[:4000], finished_at=clock.now())
        if not finished:
            return False
        instance.refresh_from_db()
        before = {"image": deployment.from_image, "port": deployment.from_port}
        if outcome == Outcome.HEALTHY:
            assert spec is not None and deployment.to_port is not None
            instance.port = deployment.to_port
            instance.applied[APP] = spec.spec_hash
            instance.save(update_fields=["port", "applied"])
            action = "instance.upgrade_healthy"
            after = {"image": deployment.to_image, "port": deployment.to_port}
        else:
            manifest_image = instance.manifest.image if _in_catalog(instance) else ""
            instance.image_override = ("" if deployment.from_image == manifest_image
                                       else deployment.from_image)
            instance.save(update_fields=["image_override"])
            action = ("instance.upgrade_rolled_back" if outcome == Outcome.ROLLED_BACK
                      else "instance.upgrade_failed")
            after = {"image": deployment.from_image, "port": deployment.from_port,
                     "attempted": deployment.to_image}
        audit.record(action, instance, acting_user=None, actor_label="reconciler",
                     before=before, after={**after, "message": message[:500]})
    deployment.refresh_from_db()
    return True


def _in_catalog(instance: Instance) -> bool:
    try:
        instance.manifest  # noqa: B018 - looking it up is the check
    except KeyError:
        return False
    return True


def _apply_upgrade(run: _Run, step: Step, engine: Engine, host: Host) -> None:
    """Start the new version next to the old one, check its health, then switch or roll back.

    Raise EngineUnreachable: the upgrade stays under way and the next run takes it up.
    """
    assert isinstance(step.spec, WorkloadSpec) and step.spec.port is not None
    spec = step.spec
    port = step.spec.port.host_port
    if run.dry_run:
        engine.run(spec, dry_run=True)
        return
    instance = run.instances[step.instance]
    deployment = Deployment.objects.filter(instance=instance, kind=DeploymentKind.UPGRADE,
                                           outcome=Outcome.PENDING).first()
    if deployment is None:  # another process finished it meanwhile
        return
    try:
        if not step.existing:
            engine.run(spec)
        elif _stopped(step.existing[0]):
            engine.start(step.existing[0])
        healthy, detail = wait_healthy(
            engine, spec.name, host.address, port, instance.manifest.health,
            stability=float(settings.CHATON.services.upgrade_stability_seconds))
    except EngineUnreachable:
        raise
    except DockerError as error:
        _remove_quietly(engine, spec.name)
        message = _("The new version %(image)s could not start: %(error)s. The instance "
                    "keeps %(previous)s.") % {"image": deployment.to_image, "error": error,
                                             "previous": deployment.from_image}
        if _finish_upgrade(instance, deployment, Outcome.FAILED, message):
            run.result.upgrades.append((instance.slug, Outcome.FAILED))
        return
    if not healthy:
        logger.warning("services: %s: %s did not become healthy (%s); rolling back",
                       instance.slug, deployment.to_image, detail)
        _remove_quietly(engine, spec.name)
        message = _("The new version %(image)s did not pass its health check (%(detail)s): "
                    "rolled back, %(previous)s keeps serving.") % {
            "image": deployment.to_image, "detail": detail, "previous": deployment.from_image}
        if _finish_upgrade(instance, deployment, Outcome.ROLLED_BACK, message):
            run.result.upgrades.append((instance.slug, Outcome.ROLLED_BACK))
        return
    message = _("%(image)s is healthy (%(detail)s) and serves on port %(port)d.") % {
        "image": deployment.to_image, "detail": detail, "port": port}
    if not _finish_upgrade(instance, deployment, Outcome.HEALTHY, message, spec):
        return
    run.result.upgrades.append((instance.slug, Outcome.HEALTHY))
    # The route switches first; the old version goes only once the proxy dials the new one,
    # and has finished what it was sent before.
    if run.sync_proxy() and step.stale:
        time.sleep(DRAIN_SECONDS)
        for workload in step.stale:
            engine.remove(workload)


def _apply_setup(run: _Run, step: Step, engine: Engine, host: Host) -> bool:
    """Run an application's setup commands in its container if it answers its health check
    now; return whether they ran. Raise EngineError naming the command that failed (its
    output masked), DockerError."""
    assert step.setup is not None and isinstance(step.spec, WorkloadSpec)
    instance = run.instances[step.instance]
    if run.dry_run:
        return True
    workload = engine.workload(step.target)
    if workload is None or not workload.running or step.spec.port is None:
        return False
    health = instance.manifest.health
    try:
        if engine.probe(host.address, step.spec.port.host_port, health.path) != health.status:
            return False
    except OSError:
        return False
    for command in step.setup.commands:
        code, output = engine.execute(workload, command, user=step.setup.user,
                                      workdir=step.setup.workdir)
        if code != 0:
            tail = runner.mask(" | ".join(output.strip().splitlines()[-3:]))
            raise EngineError(_("the setup command %(command)s exited with %(code)d: "
                                "%(output)s") % {"command": runner.mask(command[0]),
                                                 "code": code, "output": tail})
    _record_applied(instance, SETUP_KEY, step.setup.setup_hash)
    return True


def _remove_quietly(engine: Engine, name: str) -> None:
    """Remove the workload called ``name`` if there is one; a failure is only logged (the
    next reconcile removes it)."""
    try:
        workload = engine.workload(name)
        if workload is not None:
            engine.remove(workload)
    except DockerError as error:
        logger.warning("services: cannot remove %s: %s", name, error)


def _record_repairs(instance: Instance, steps: Sequence[Step]) -> None:
    """Write the history and audit rows of the changes made by hand that this run repaired."""
    reasons = [step.reason for step in steps]
    with transaction.atomic():
        Deployment.objects.create(instance=instance, kind=DeploymentKind.REPAIR,
                                  outcome=Outcome.DONE, message="; ".join(reasons)[:4000],
                                  to_image=instance.image if _in_catalog(instance) else "",
                                  actor_label="reconciler", created_at=clock.now(),
                                  finished_at=clock.now())
        audit.record("instance.repair", instance, acting_user=None, actor_label="reconciler",
                     after={"repaired": reasons})


def _build_images(host: Host, engine: Engine, instances: Sequence[Instance]) -> None:
    """Build and load the images Chaton builds itself (catalogue ``[build]``) that these
    instances run and the engine lacks: an instance recorded while the engine did not
    answer is deployed once it does. A failure is logged; the step that needs the image
    then fails with it, and the next run tries again."""
    from chaton.services.images import do_build_image

    for instance in instances:
        if not _in_catalog(instance):
            continue
        manifest = instance.manifest
        if manifest.build is None or instance.image != manifest.image:
            continue
        try:
            do_build_image(host, engine, manifest, acting_user=None)
        except (DockerError, OSError, ValueError, ImportError) as error:
            logger.warning("services: the image of %s could not be built on %s: %s",
                           manifest.name, host.name, error)


def _apply_host(run: _Run, host: Host, steps: Sequence[Step]) -> None:
    """Apply one host's steps, instance by instance. An instance whose step fails keeps its
    remaining steps for the next run; an engine that goes away stops the host's run."""
    engine = run.engines[host.name]
    by_instance: dict[str, list[Step]] = {}
    for step in steps:
        by_instance.setdefault(step.instance, []).append(step)
    if not run.dry_run:
        _build_images(host, engine, [run.instances[slug] for slug in by_instance
                                     if slug in run.instances])
    groups = list(by_instance.items())
    for index, (slug, instance_steps) in enumerate(groups):
        known = slug in run.instances
        with _instance_lock(slug) if known else _no_lock():
            repaired: list[Step] = []
            for position, step in enumerate(instance_steps):
                if step.after_switch and not run.proxy_current:
                    changes = len(run.result.proxy_changes)
                    if not run.sync_proxy():
                        continue  # the old version keeps serving until the proxy switches
                    if len(run.result.proxy_changes) > changes:
                        time.sleep(DRAIN_SECONDS)  # it switched just now
                try:
                    if step.action == Action.UPGRADE:
                        _apply_upgrade(run, step, engine, host)
                    elif step.action == Action.SETUP:
                        if not _apply_setup(run, step, engine, host):
                            continue  # not healthy yet: the next run tries again
                    else:
                        _apply_step(run, step, engine)
                except EngineUnreachable as error:
                    logger.warning("services: %s: %s", host.name, error)
                    left = instance_steps[position:] + [
                        later for _slug, group in groups[index + 1:] for later in group]
                    run.result.failures += [Failure(pending, error) for pending in left]
                    if repaired and not run.dry_run and known:
                        _record_repairs(run.instances[slug], repaired)
                    return
                except DockerError as error:
                    logger.warning("services: %s: %s failed: %s", host.name, step.target, error)
                    run.result.failures.append(Failure(step, error))
                    break  # the instance's next steps need this one
                run.result.applied += 1
                if step.drift:
                    repaired.append(step)
            if repaired and not run.dry_run and known:
                _record_repairs(run.instances[slug], repaired)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


def _hosts_and_instances(hosts: Iterable[Host] | None, instances: Iterable[Instance] | None
                         ) -> tuple[list[Host], dict[int, list[Instance]], bool]:
    """Return the hosts to read, each one's instances to plan, and whether whole hosts are
    planned (not when only some instances are)."""
    if instances is not None:
        chosen = list(Instance.objects.filter(pk__in=[instance.pk for instance in instances])
                      .select_related("host", "login_group"))
        host_ids = {instance.host_id for instance in chosen}
        host_list = list(Host.objects.filter(pk__in=host_ids))
        whole = False
    else:
        host_list = list(hosts) if hosts is not None else list(Host.objects.all())
        chosen = list(Instance.objects.filter(host__in=host_list)
                      .select_related("host", "login_group"))
        whole = True
    by_host: dict[int, list[Instance]] = {host.pk: [] for host in host_list}
    for instance in chosen:
        by_host[instance.host_id].append(instance)
    return host_list, by_host, whole


def plan(*, hosts: Iterable[Host] | None = None, instances: Iterable[Instance] | None = None,
         delete_orphan_volumes: bool = False) -> tuple[Plan, dict[str, Engine], list[Instance]]:
    """Read the hosts' engines and return (the plan, the engines read, the instances planned).

    Without arguments, every host and everything on it; with ``instances``,
    only those (on their hosts). An engine that does not answer is an error
    of the plan, never an exception.
    """
    host_list, by_host, whole = _hosts_and_instances(hosts, instances)
    upgrades = pending_upgrades([instance for group in by_host.values() for instance in group])
    result = Plan()
    engines: dict[str, Engine] = {}
    for host in host_list:
        engine = engine_for(host)
        try:
            snapshot = engine.snapshot()
        except DockerError as error:
            result.errors[host.name] = str(error)
            continue
        engines[host.name] = engine
        plan_host(host, snapshot, by_host[host.pk], upgrades=upgrades, whole_host=whole,
                  delete_orphan_volumes=delete_orphan_volumes, plan=result)
    result.steps.sort(key=_phase)
    planned = [instance for group in by_host.values() for instance in group]
    return result, engines, planned


def apply(plan_: Plan, engines: Mapping[str, Engine], instances: Iterable[Instance], *,
          dry_run: bool = False) -> Result:
    """Apply a plan with the engines it was read from, then hand every route to the proxy.

    ``dry_run`` reaches every engine and proxy call: nothing changes. Failures
    are in the result, never raised: the next run completes what this one could not.
    """
    hosts = {host.name: host for host in Host.objects.filter(name__in=list(engines))}
    run = _Run(hosts, engines, {instance.slug: instance for instance in instances}, dry_run)
    by_host: dict[str, list[Step]] = {}
    for step in plan_.steps:
        by_host.setdefault(step.host, []).append(step)
    for name, steps in by_host.items():
        if name in hosts:
            _apply_host(run, hosts[name], steps)
    run.sync_proxy()
    return run.result


def sync_accounts(*, dry_run: bool = False) -> tuple[list[str], str]:
    """Bring the instances' service accounts in the directory up to date (see
    :mod:`chaton.services.accounts`). Return (one line per change, the error that stopped it
    or ""); never raise for the directory: the next run completes what this one could not."""
    try:
        return accounts.sync(dry_run=dry_run), ""
    except (LdapError, secrets.SecretError) as error:
        message = str(error) or type(error).__name__
        logger.warning("services: the services' directory accounts could not be written: %s",
                       message)
        return [], message


def reconcile(*, dry_run: bool = False, hosts: Iterable[Host] | None = None,
              instances: Iterable[Instance] | None = None,
              delete_orphan_volumes: bool = False) -> tuple[Plan, Result]:
    """Plan every host (or only ``hosts``, or only ``instances``) and apply the plan.

    With ``dry_run`` the plan is only shown to the engines and the proxy:
    nothing changes. Return (the plan, what applying it did). Never raise for
    an engine or the proxy: their errors are in the plan and the result.
    """
    started = time.monotonic()
    # First the services' directory accounts: an application never starts without its own.
    account_changes, directory_error = sync_accounts(dry_run=dry_run)
    the_plan, engines, planned = plan(hosts=hosts, instances=instances,
                                      delete_orphan_volumes=delete_orphan_volumes)
    result = apply(the_plan, engines, planned, dry_run=dry_run)
    result.account_changes, result.directory_error = account_changes, directory_error
    logger.info("services: reconcile%s: %d step(s), %d applied, %d failed, %.2f s",
                " (dry run)" if dry_run else "", len(the_plan.steps), result.applied,
                len(result.failures), time.monotonic() - started)
    return the_plan, result
