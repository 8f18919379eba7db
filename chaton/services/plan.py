"""Plan the services: compare what must run with what a host's engine holds (the second step
of a reconcile).

:func:`plan_host` takes a host, what its engine holds (a :class:`Snapshot`,
read once by the caller), its instances with their secrets already read
(:mod:`chaton.services.instance_secrets`) and their upgrades under way, and
returns a :class:`Plan`: steps to print, test or apply, the data kept, and
what could not be planned. It writes nothing and talks to no engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from django.utils.translation import gettext as _

from chaton.adapters.docker import NetworkSpec, Snapshot, VolumeSpec, Workload, WorkloadSpec
from chaton.core import secrets
from chaton.services.instance_secrets import SecretValues
from chaton.services.models import Deployment, DeploymentKind, DesiredState, Host, Instance, Outcome
from chaton.services.render import (
    APP,
    DATABASE,
    SETUP_KEY,
    RenderError,
    Setup,
    desired_for,
    network_name,
)


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


def phase(step: Step) -> tuple[int, int]:
    """Return where a step comes in the order of application (a sort key)."""
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


def matches(workload: Workload, spec: WorkloadSpec) -> bool:
    """Whether a workload runs ``spec``: its label, its image, and (a service's listed spec)
    its environment agree."""
    if workload.spec_hash != spec.spec_hash or workload.name != spec.name:
        return False
    if workload.image != spec.image:
        return False
    return workload.environment is None or workload.environment == spec.environment


def stopped(workload: Workload) -> bool:
    """Whether a workload with the right spec needs starting: stopped, or scaled to zero."""
    if workload.kind == "service":
        return workload.replicas == 0
    return workload.state in ("exited", "created", "dead")


def _plan_workload(plan: Plan, host: Host, instance: Instance, spec: WorkloadSpec,
                   observed: list[Workload]) -> None:
    """Add the steps that make one role of a running instance run ``spec``."""
    applied = instance.applied.get(spec.role)
    role_label = _role_label(spec.role)
    matching = [workload for workload in observed if matches(workload, spec)]
    others = [workload for workload in observed if workload not in matching]
    base: _RoleBase = {"host": host.name, "instance": instance.slug, "role": spec.role}
    if matching:
        current = matching[0]
        if stopped(current):
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
                  observed: list[Workload], upgrade: Deployment | None,
                  secret_values: SecretValues) -> None:
    """Add the steps for an instance that must run. Raise KeyError when its application
    left the catalogue, RenderError, SecretError."""
    instance.manifest  # noqa: B018 - raises KeyError first, for an application that left
    desired = desired_for(instance, secret_values.of(instance.slug), upgrade=upgrade)
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
            candidate = [workload for workload in of_role if matches(workload, spec)]
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
              secret_values: SecretValues, upgrades: Mapping[int, Deployment],
              whole_host: bool = True, delete_orphan_volumes: bool = False,
              plan: Plan | None = None) -> Plan:
    """Given a host, what its engine holds, its instances, the secrets of those that run
    and their upgrades under way, return the plan (added to ``plan`` when given).

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
                              upgrades.get(instance.pk), secret_values)
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
    plan.steps.sort(key=phase)
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

