"""The collective's own figures (subject ``chaton``) for a day, read from Chaton's tables.

Members on the day by person type (natural, legal) and kind (regular,
support); partner organizations; active accounts; groups; decisions taken and
dues received that day; instances; the size of the last successful backups and
the restore drills of the day; and each service's uptime (``uptime.<service>``
subject ``chaton``: the percentage of known seconds that were up, from
monitoring's day roll-ups; no roll-up, no sample).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, Sum

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
    totals: dict[str, list[float]] = {}
    for service, up, down in (Rollup.objects.filter(period=Period.DAY, start__gte=start,
                                                    start__lt=end)
                              .values_list("probe__service", "up_seconds", "down_seconds")):
        pair = totals.setdefault(service, [0.0, 0.0])
        pair[0] += up
        pair[1] += down
    for service, (up, down) in totals.items():
        if up + down > 0:
            found[f"uptime.{service}"] = round(100 * up / (up + down), 3)
    return {name: float(value) for name, value in found.items()}
