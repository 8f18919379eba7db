"""Apply a services plan through the engines and the proxy, and record what happened (the last
step of a reconcile).

:func:`apply_plan` takes a :class:`~chaton.services.plan.Plan` and the engines it
was read from, applies its steps host by host and instance by instance (under
one lock per instance), then hands every route to the proxy. It writes the
instances' applied spec hashes, their history (:class:`Deployment` rows: repairs,
upgrades healthy or rolled back) and the audit rows. Upgrades are blue/green,
gated by :func:`wait_healthy`. Failures are in the :class:`Result`, never raised:
the next reconcile completes what this one could not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from chaton.adapters.docker import (
    DockerError,
    Engine,
    EngineError,
    EngineUnreachable,
    NetworkSpec,
    VolumeSpec,
    WorkloadSpec,
)
from chaton.core import audit, clock, runner
from chaton.services import proxy
from chaton.services.catalog import Health
from chaton.services.models import (
    Deployment,
    DeploymentKind,
    DesiredState,
    Host,
    Instance,
    Outcome,
)
from chaton.services.plan import Action, Plan, Step, stopped
from chaton.services.render import APP, SETUP_KEY, upstream

logger = logging.getLogger("chaton.services")

#: Seconds between two looks at a new version during its health check.
HEALTH_POLL_SECONDS = 0.25
#: Seconds the old version of an upgrade keeps running once the proxy dials the new one:
#: the requests the proxy had already sent it finish.
DRAIN_SECONDS = 2.0


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
        elif stopped(step.existing[0]):
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


def apply_plan(plan_: Plan, engines: Mapping[str, Engine], instances: Iterable[Instance], *,
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

