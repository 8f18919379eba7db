"""Reconcile the services: read each host's engine, diff with the instances, apply the plan.

:func:`reconcile` runs the steps, each a module of its own:

1. the services' directory accounts (:mod:`chaton.services.accounts`), so an
   application never starts without its own;
2. for each host, what its engine holds (:meth:`Engine.snapshot`: a few list
   calls, no inspect), then the secrets of its running instances, generated
   and saved when missing (:func:`chaton.services.instance_secrets.ensure_all`:
   the only write before the plan);
3. :mod:`chaton.services.render`: each instance's desired state from its
   catalogue entry (pure);
4. :mod:`chaton.services.plan`: the :class:`Plan` — a value to print, test, or
   apply (pure);
5. :mod:`chaton.services.apply`: the plan through the engines, then every
   route to the proxy (:func:`chaton.services.proxy.sync_proxy`), with the
   history and audit rows; with ``dry_run`` the engines and the proxy are only
   shown the changes.

Applying a plan twice changes nothing: the second plan is empty.

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
  ``services.upgrade_stability_seconds`` (:func:`chaton.services.apply.wait_healthy`).
  Only then does the route switch and the old one go. Otherwise the new one is
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

import logging
import time
from collections.abc import Iterable

from chaton.adapters.docker import DockerError, Engine
from chaton.adapters.ldap import LdapError
from chaton.core import secrets
from chaton.services import accounts, instance_secrets
from chaton.services.apply import Result, apply_plan
from chaton.services.engine import engine_for
from chaton.services.models import DesiredState, Host, Instance
from chaton.services.plan import Plan, pending_upgrades, phase, plan_host

logger = logging.getLogger("chaton.services")




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
    only those (on their hosts). The secrets a running instance lacks are made
    and saved first, even for a dry run (as at its creation). An engine that
    does not answer, or secrets that do not decrypt, are errors of the plan,
    never exceptions.
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
        # The one write before the plan: secrets a running instance lacks are made now.
        secret_values = instance_secrets.ensure_all(
            instance for instance in by_host[host.pk] if instance.state == DesiredState.RUNNING)
        plan_host(host, snapshot, by_host[host.pk], secret_values=secret_values,
                  upgrades=upgrades, whole_host=whole,
                  delete_orphan_volumes=delete_orphan_volumes, plan=result)
    result.steps.sort(key=phase)
    planned = [instance for group in by_host.values() for instance in group]
    return result, engines, planned


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
    result = apply_plan(the_plan, engines, planned, dry_run=dry_run)
    result.account_changes, result.directory_error = account_changes, directory_error
    logger.info("services: reconcile%s: %d step(s), %d applied, %d failed, %.2f s",
                " (dry run)" if dry_run else "", len(the_plan.steps), result.applied,
                len(result.failures), time.monotonic() - started)
    return the_plan, result
