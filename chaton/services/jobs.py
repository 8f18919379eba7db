"""The services jobs of the worker (see :mod:`chaton.core.worker`).

- ``services.reconcile``: every ``services.reconcile_interval_seconds``, bring
  every host in line (drift repaired, routes handed to the proxy); and at the
  next tick whenever work is waiting: an upgrade under way (an action that did
  not wait for it, or a process that died during one), an instance being removed.
  A long job (an upgrade waits for health): it runs in the worker's long lane.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.core.worker import JobResult, Schedule

JOB = "services.reconcile"
#: Run in the worker's long lane (:class:`chaton.core.worker.LongLane`), never in the quick one.
LONG_JOBS = frozenset({JOB})


def work_waiting() -> bool:
    """Return whether an upgrade is under way or an instance is being removed."""
    from chaton.services.models import Deployment, DesiredState, Instance, Outcome

    return (Deployment.objects.filter(outcome=Outcome.PENDING).exists()
            or Instance.objects.filter(state=DesiredState.REMOVED).exists())


def reconcile_job(reason: str) -> JobResult | None:
    """Reconcile every host; return what it did in one line, or None when nothing changed."""
    from chaton.services import reconcile
    from chaton.services.models import Host

    if not Host.objects.exists():
        return None
    plan, result = reconcile.reconcile()
    if (plan.is_noop and not plan.errors and not result.proxy_changes
            and not result.proxy_error and not result.account_changes
            and not result.directory_error):
        return None
    parts = [_("%(reason)s: %(applied)d change(s) applied, %(failed)d failed") % {
        "reason": reason, "applied": result.applied, "failed": len(result.failures)}]
    if plan.drift:
        parts.append(_("%(count)d change(s) made by hand repaired") % {"count": len(plan.drift)})
    parts += [f"{slug}: {outcome}" for slug, outcome in result.upgrades]
    parts += [f"{name}: {error}" for name, error in sorted(plan.errors.items())]
    if result.proxy_error:
        parts.append(_("proxy: %(error)s") % {"error": result.proxy_error})
    parts += result.account_changes
    if result.directory_error:
        parts.append(_("directory: %(error)s") % {"error": result.directory_error})
    return JobResult(JOB, "; ".join(parts),
                     ok=result.ok and not plan.errors and not result.directory_error)


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    """Given the worker's schedule, return the services jobs due now."""
    interval = settings.CHATON.services.reconcile_interval_seconds
    if schedule.is_due(JOB, interval):
        schedule.mark(JOB)
        return [(JOB, lambda: reconcile_job(_("periodic reconcile")))]
    if work_waiting():
        return [(JOB, lambda: reconcile_job(_("waiting work")))]
    return []
