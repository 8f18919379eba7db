"""What an activity report says, gathered from every app below this one.

:func:`gather` reads the period's facts once (members, the team, services,
decisions, usage figures, backups, uptime, the infrastructure) into a
:class:`Content`; :mod:`chaton.reports.render` writes it as HTML, Markdown or
PDF. Nothing here fails for a lack of data: a section with nothing to show
says "no data", a figure with missing days keeps them as gaps and adds a
warning.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.reports.models import Report

#: Longer periods are charted by week, longer still by month.
WEEKLY_AFTER_DAYS = 62
MONTHLY_AFTER_DAYS = 400


@dataclass(frozen=True)
class Team:
    name: str
    description: str
    members: list[str]


@dataclass(frozen=True)
class MemberCounts:
    """Memberships running on the end date, by person type and kind; the period's dues."""

    natural_regular: int
    natural_support: int
    legal_regular: int
    legal_support: int
    joined: int
    left: int
    dues_count: int
    dues_total: Decimal

    @property
    def natural(self) -> int:
        return self.natural_regular + self.natural_support

    @property
    def legal(self) -> int:
        return self.legal_regular + self.legal_support

    @property
    def total(self) -> int:
        return self.natural + self.legal


@dataclass(frozen=True)
class ServiceLine:
    name: str
    application: str
    domain: str
    holder: str
    day: dt.date


@dataclass(frozen=True)
class FigureLine:
    """One figure of one subject over the period: its value, its busiest day, its chart."""

    subject: str
    figure: str
    label: str
    unit: str
    value: float | None
    busiest: tuple[dt.date, float] | None
    series: list[tuple[dt.date, float | None]]
    chart: str
    missing_days: int


@dataclass(frozen=True)
class BackupSummary:
    backups: int
    backups_failed: int
    drills: int
    drills_failed: int


@dataclass(frozen=True)
class IncidentLine:
    opened: dt.date
    duration: str


@dataclass(frozen=True)
class UptimeLine:
    service: str
    #: Percentage of the known time the service was up; None: no data.
    uptime: float | None
    incidents: list[IncidentLine]


@dataclass
class Content:
    report: Report
    collective: str
    generated_on: dt.date
    teams: list[Team] = field(default_factory=list)
    members: MemberCounts | None = None
    opened: list[ServiceLine] = field(default_factory=list)
    closed: list[ServiceLine] = field(default_factory=list)
    running: int = 0
    ordinary: list[object] = field(default_factory=list)
    extraordinary: list[object] = field(default_factory=list)
    figures: list[FigureLine] = field(default_factory=list)
    backups: BackupSummary | None = None
    uptime: list[UptimeLine] = field(default_factory=list)
    diagram: str = ""
    #: What could not be read, for people: a gap in a figure, a section left empty.
    warnings: list[str] = field(default_factory=list)


def _bounds(report: Report) -> tuple[dt.datetime, dt.datetime]:
    """The period as [start, end) instants in the collective's time zone."""
    return (clock.start_of_day(report.starts_on),
            clock.start_of_day(report.ends_on + dt.timedelta(days=1)))


def teams(end: dt.date) -> list[Team]:
    """The directory's team groups (the tech team, the board …) and their members on ``end``."""
    from chaton.directory.models import Group, GroupKind, GroupMembership

    at = clock.start_of_day(end + dt.timedelta(days=1))
    result = []
    for group in Group.objects.filter(kind=GroupKind.TEAM).order_by("name"):
        names = [membership.account.display_name or membership.account.uid
                 for membership in GroupMembership.objects.filter(group=group).valid(at)
                 .select_related("account").order_by("account__display_name", "account__uid")]
        if names:
            result.append(Team(group.name, group.description, names))
    return result


def member_counts(start: dt.date, end: dt.date) -> MemberCounts:
    from chaton.members.models import DuesPayment, Membership, MembershipKind

    current = Membership.objects.current(end)
    counts = {(person, kind): current.filter(person__isnull=not person, kind=kind).count()
              for person in (True, False) for kind in MembershipKind.values}
    dues = DuesPayment.objects.filter(paid_on__gte=start, paid_on__lte=end)
    total = dues.aggregate(total=Sum("amount"))["total"] or Decimal("0")
    return MemberCounts(
        natural_regular=counts[True, MembershipKind.REGULAR],
        natural_support=counts[True, MembershipKind.SUPPORT],
        legal_regular=counts[False, MembershipKind.REGULAR],
        legal_support=counts[False, MembershipKind.SUPPORT],
        joined=Membership.objects.filter(starts_on__gte=start, starts_on__lte=end).count(),
        left=Membership.objects.filter(ends_on__gte=start, ends_on__lte=end).count(),
        dues_count=dues.count(), dues_total=total)


def _holder(person: object, organization: object) -> str:
    if organization is not None:
        return str(organization)
    if person is not None:
        return str(person)
    return _("the collective")


def services(report: Report) -> tuple[list[ServiceLine], list[ServiceLine], int]:
    """The instances opened and closed in the period (and for whom), and those running at
    its end."""
    from chaton.members.models import Organization, Person
    from chaton.services.models import DesiredState, Instance

    start, end = _bounds(report)
    opened = [ServiceLine(instance.slug, instance.application, instance.domain,
                          _holder(instance.person, instance.organization),
                          clock.local_day(instance.created_at))
              for instance in Instance.objects.filter(created_at__gte=start, created_at__lt=end)
              .select_related("person", "organization").order_by("created_at", "slug")]
    closed = []
    for row in AuditLog.objects.filter(action="instance.remove", created_at__gte=start,
                                       created_at__lt=end).order_by("created_at", "id"):
        before = row.before or {}
        after = row.after or {}
        person = Person.objects.filter(pk=before.get("person") or after.get("person")).first()
        organization = Organization.objects.filter(
            pk=before.get("organization") or after.get("organization")).first()
        closed.append(ServiceLine(str(after.get("slug") or row.target_label),
                                  str(after.get("application", "")),
                                  str(after.get("domain", "")), _holder(person, organization),
                                  clock.local_day(row.created_at)))
    running = Instance.objects.filter(created_at__lt=end).exclude(
        state=DesiredState.REMOVED).count()
    return opened, closed, running


def backups(report: Report) -> BackupSummary:
    from chaton.backups.models import Drill, DrillOutcome, Outcome, Run, RunKind

    start, end = _bounds(report)
    runs = Run.objects.filter(kind=RunKind.BACKUP, started_at__gte=start, started_at__lt=end)
    drills = Drill.objects.filter(started_at__gte=start, started_at__lt=end).exclude(
        outcome=DrillOutcome.RUNNING)
    return BackupSummary(backups=runs.count(),
                         backups_failed=runs.filter(outcome=Outcome.FAILED).count(),
                         drills=drills.count(),
                         drills_failed=drills.filter(outcome=DrillOutcome.FAILED).count())


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return _("%(count)d min") % {"count": minutes}
    return _("%(hours)d h %(minutes)02d") % {"hours": minutes // 60, "minutes": minutes % 60}


def uptime(report: Report) -> list[UptimeLine]:
    """Per monitored service: its uptime over the period (the day roll-ups) and its
    incidents."""
    from chaton.monitoring.models import Incident, Period, Rollup

    start, end = _bounds(report)
    up: dict[str, float] = defaultdict(float)
    down: dict[str, float] = defaultdict(float)
    services: set[str] = set()
    for row in Rollup.objects.filter(period=Period.DAY, start__gte=start, start__lt=end).values(
            "probe__service").annotate(up=Sum("up_seconds"), down=Sum("down_seconds")):
        name = row["probe__service"]
        services.add(name)
        up[name] += row["up"] or 0.0
        down[name] += row["down"] or 0.0
    incidents: dict[str, list[IncidentLine]] = defaultdict(list)
    for incident in Incident.objects.filter(opened_at__lt=end).filter(
            Q(resolved_at__isnull=True) | Q(resolved_at__gte=start)).select_related(
            "probe").order_by("opened_at"):
        name = incident.probe.service
        services.add(name)
        finished = incident.resolved_at or min(clock.now(), end)
        incidents[name].append(IncidentLine(
            clock.local_day(incident.opened_at),
            _duration((finished - incident.opened_at).total_seconds())))
    lines = []
    for name in sorted(services):
        known = up[name] + down[name]
        lines.append(UptimeLine(name, 100 * up[name] / known if known else None,
                                incidents[name]))
    return lines


def diagram() -> str:
    """The infrastructure as Chaton wants it (hosts, instances), drawn without asking the
    engines: a report is the same whether they answer or not."""
    from chaton.services import diagram as drawing
    from chaton.services.models import DesiredState, Host, Instance
    from chaton.services.queries import InstanceWithState, LiveState

    hosts = [drawing.HostStatus(host, reachable=True) for host in Host.objects.order_by("name")]
    if not hosts:
        return ""
    states = {DesiredState.RUNNING: "running", DesiredState.STOPPED: "off"}
    instances = [InstanceWithState(instance, LiveState(states.get(instance.state, "removing")))
                 for instance in Instance.objects.exclude(state=DesiredState.REMOVED)
                 .select_related("host").order_by("slug")]
    return str(drawing.draw(drawing.landscape(hosts, instances)))


def _step(report: Report) -> str:
    days = (report.ends_on - report.starts_on).days + 1
    if days > MONTHLY_AFTER_DAYS:
        return "month"
    return "week" if days > WEEKLY_AFTER_DAYS else "day"


def usage(report: Report, warnings: list[str]) -> list[FigureLine]:
    """Every figure of every subject with samples in the period, charted; gaps kept as gaps,
    each named in ``warnings``."""
    from chaton.stats import charts, queries
    from chaton.stats.figures import figure as figure_of
    from chaton.stats.models import Sample

    start, end = report.starts_on, report.ends_on
    step = _step(report)
    pairs = sorted(set(Sample.objects.filter(day__gte=start, day__lte=end)
                       .values_list("subject", "figure").distinct()))
    lines = []
    for subject, name in pairs:
        figure = figure_of(name)
        daily = queries.series(name, subject, start, end, "day")
        present = [(day, value) for day, value in daily if value is not None]
        first_day = present[0][0] if present else end
        # Days before the first sample are a service not yet open, not a gap.
        missing = sum(1 for day, value in daily if value is None and day > first_day)
        if figure.kind == "count":
            value: float | None = sum(value for _day, value in present) if present else None
        else:
            value = present[-1][1] if present else None
        series = daily if step == "day" else queries.series(name, subject, start, end, step)
        label = str(figure.label)
        title = f"{subject} — {label}"
        lines.append(FigureLine(subject, name, label, figure.unit, value,
                                queries.busiest_day(name, subject, start, end), series,
                                charts.svg_chart(series, title=title, unit=figure.unit),
                                missing))
        if missing:
            warnings.append(_("%(subject)s, %(figure)s: no sample on %(count)d day(s) of the "
                              "period; the chart shows them as gaps.")
                            % {"subject": subject, "figure": label, "count": missing})
    failures: dict[tuple[str, str], int] = defaultdict(int)
    for gap in queries.gaps(start=start, end=end):
        failures[gap.subject, gap.collector] += 1
    for (subject, collector), count in sorted(failures.items()):
        warnings.append(_("%(subject)s: the collector %(collector)s could not read the "
                          "service on %(count)d day(s).")
                        % {"subject": subject, "collector": collector, "count": count})
    return lines


def decisions(report: Report) -> tuple[list[object], list[object]]:
    from chaton.governance import export

    inventory = export.inventory(report.starts_on, report.ends_on)
    return list(inventory.ordinary), list(inventory.extraordinary)


def gather(report: Report) -> Content:
    """Given a report, return what it says (in the active language)."""
    from django.conf import settings

    content = Content(report=report, collective=settings.CHATON.collective_name,
                      generated_on=clock.today())
    content.teams = teams(report.ends_on)
    content.members = member_counts(report.starts_on, report.ends_on)
    content.opened, content.closed, content.running = services(report)
    content.ordinary, content.extraordinary = decisions(report)
    content.figures = usage(report, content.warnings)
    content.backups = backups(report)
    content.uptime = uptime(report)
    content.diagram = diagram()
    return content
