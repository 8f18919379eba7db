"""The collective's own figures (subject ``chaton``) for a day, read from Chaton's tables.

Members on the day by person type (natural, legal) and kind (regular,
support); partner organizations; active accounts; groups; decisions taken and
dues received that day; instances; the size of the last successful backups and
the restore drills of the day; and the uptime of Chaton's own services
(``uptime.<service>``, subject ``chaton``). An instance's uptime is the figure
``uptime`` of its slug (:func:`uptime`, written by the collection).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, Sum
from django.utils.text import slugify

from chaton.backups.models import Drill, DrillOutcome, SourceResult
from chaton.backups.models import Outcome as BackupOutcome
from chaton.core import clock
from chaton.directory.models import Account, AccountState, Group
from chaton.governance.models import Decision, Status
from chaton.members.models import DuesPayment, Membership, Organization
from chaton.monitoring.models import Period, Rollup
from chaton.services.models import DesiredState, Instance


def own_figures(day: dt.date) -> dict[str, float]:
    """Return the collective's figures on ``day`` by figure name."""
    start, end = clock.start_of_day(day), clock.start_of_day(day + dt.timedelta(days=1))
    current = Membership.objects.current(day)
    found: dict[str, float] = {
        "chaton.members": current.count(),
        "chaton.members.natural": current.filter(person__isnull=False).count(),
        "chaton.members.legal": current.filter(organization__isnull=False).count(),
        "chaton.organizations": Organization.objects.filter(created_at__lt=end).count(),
        "chaton.accounts": Account.objects.filter(state=AccountState.ACTIVE).count(),
        "chaton.groups": Group.objects.count(),
        "chaton.decisions": Decision.objects.filter(
            decided_at__gte=start, decided_at__lt=end, status=Status.ADOPTED).count(),
        "chaton.dues": float(DuesPayment.objects.filter(paid_on=day)
                             .aggregate(total=Sum("amount"))["total"] or 0),
        "chaton.instances": Instance.objects.filter(created_at__lt=end).filter(
            ~Q(state=DesiredState.REMOVED)).count(),
    }
    for kind in ("regular", "support"):
        found[f"chaton.members.{kind}"] = current.filter(kind=kind).count()
    last = {}
    for name, size in (SourceResult.objects.filter(outcome=BackupOutcome.SUCCEEDED,
                                                   finished_at__lt=end)
                       .order_by("source_name", "finished_at")
                       .values_list("source_name", "bytes_processed")):
        last[name] = size
    if last:
        found["chaton.backups.bytes"] = float(sum(last.values()))
    drills = Drill.objects.filter(started_at__gte=start, started_at__lt=end)
    found["chaton.backups.restores_tested"] = drills.exclude(
        outcome=DrillOutcome.RUNNING).count()
    found["chaton.backups.restores_passed"] = drills.filter(outcome=DrillOutcome.PASSED).count()
    for service, percent in uptime(day).items():
        if not service.startswith(INSTANCE):
            found[f"uptime.{service}"] = percent
    return {name: float(value) for name, value in found.items()}


#: How :func:`uptime` names an instance's services (the rest are Chaton's own: directory …).
INSTANCE = "instance:"


def uptime(day: dt.date) -> dict[str, float]:
    """Return the percentage of the day's known seconds that were up, from monitoring's day
    roll-ups: ``instance:<slug>`` for an instance's probes together, a slug of the service
    (``directory``, ``chatons-web`` …) for the others. No roll-up, no figure."""
    start, end = clock.start_of_day(day), clock.start_of_day(day + dt.timedelta(days=1))
    totals: dict[str, list[float]] = {}
    for service, slug, up, down in (
            Rollup.objects.filter(period=Period.DAY, start__gte=start, start__lt=end)
            .values_list("probe__service", "probe__instance__slug", "up_seconds",
                         "down_seconds")):
        key = f"{INSTANCE}{slug}" if slug else slugify(service)
        pair = totals.setdefault(key, [0.0, 0.0])
        pair[0] += up
        pair[1] += down
    return {key: round(100 * up / (up + down), 3)
            for key, (up, down) in totals.items() if up + down > 0}
