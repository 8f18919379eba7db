"""The administrators' overview: what needs attention now, each item linking to where it is fixed.

It is where an administrator lands after login (members keep landing on their
account). Each section is one query of another app's models, read only:
open incidents, stale backups and failed drills, failed operations of
decisions, accounts and accesses expiring within :data:`EXPIRY_DAYS`,
decisions awaiting my vote, a pending directory sync, unreachable hosts.
An empty section says all is well.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth.views import redirect_to_login
from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from chaton.core import clock, queries
from chaton.core.views import admin_required, signed_in
from chaton.monitoring.models import Incident, Kind, Probe, State

#: Accounts and accesses that end within this many days are listed.
EXPIRY_DAYS = 14
#: At most this many rows per section (a link leads to the full list).
ROWS = 20


@dataclass(frozen=True)
class Item:
    """One thing to look at: what it is, a detail, and where it is fixed."""

    text: str
    detail: str
    url: str


@dataclass
class Section:
    """A part of the overview: its title, its items, what it says when all is well."""

    key: str
    title: str | Promise
    all_well: str | Promise
    items: list[Item] = field(default_factory=list)


def _url(name: str, *args: object, fallback: str = "home") -> str:
    """Reverse ``name`` (a page of another app); its ``fallback`` when that app is absent."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return reverse(fallback)


def _when(moment: dt.datetime | None) -> str:
    return clock.local_day(moment).isoformat() if moment else ""


def incidents_section() -> Section:
    section = Section("incidents", _("Open incidents"), _("No incident: every probe is fine."))
    for incident in (Incident.objects.filter(resolved_at__isnull=True)
                     .select_related("probe").order_by("-opened_at")[:ROWS]):
        section.items.append(Item(
            f"{incident.probe.service} — {incident.probe.name}",
            str(_("since %(day)s: %(error)s") % {"day": _when(incident.opened_at),
                                                 "error": incident.last_error
                                                 or incident.first_error}),
            _url("monitoring-incident", incident.pk, fallback="monitoring-probes")))
    return section


def hosts_section() -> Section:
    section = Section("hosts", _("Hosts"), _("Every host's Docker engine answers."))
    for probe in (Probe.objects.filter(enabled=True, kind=Kind.DOCKER, state=State.DOWN)
                  .order_by("service")[:ROWS]):
        section.items.append(Item(str(_("%(host)s is unreachable") % {"host": probe.service}),
                                  probe.last_error, _url("service-overview")))
    return section


def backups_section() -> Section:
    from chaton.backups.models import Drill, Outcome, Plan, Run, RunKind

    section = Section("backups", _("Backups"),
                      _("Every plan has a recent backup and its last drill passed."))
    now = clock.now()
    last_backup = (Run.objects.filter(plan=OuterRef("pk"), kind=RunKind.BACKUP,
                                      outcome=Outcome.SUCCEEDED).order_by("-finished_at")
                   .values("finished_at")[:1])
    last_drill = (Drill.objects.filter(plan=OuterRef("pk")).exclude(outcome="running")
                  .order_by("-started_at").values("outcome")[:1])
    plans = Plan.objects.filter(enabled=True).annotate(
        backup_at=Subquery(last_backup), drill=Subquery(last_drill)).order_by("name")
    for plan in plans:
        url = _url("backup-plan", plan.name, fallback="backup-overview")
        backup_at = getattr(plan, "backup_at", None)
        if backup_at is None or backup_at < now - dt.timedelta(hours=plan.stale_after_hours):
            detail = (str(_("last good backup on %(day)s") % {"day": _when(backup_at)})
                      if backup_at else str(_("no good backup yet")))
            section.items.append(Item(str(_("Plan %(plan)s is stale") % {"plan": plan.name}),
                                      detail, url))
        if getattr(plan, "drill", None) == "failed":
            section.items.append(Item(
                str(_("The last drill of plan %(plan)s failed") % {"plan": plan.name}),
                str(_("a restore could not be verified")), url))
    return section


def operations_section() -> Section:
    from chaton.governance.models import Operation, OperationStatus

    section = Section("operations", _("Failed operations"),
                      _("Every decided operation was carried out."))
    for operation in (Operation.objects.filter(status__in=[OperationStatus.FAILED,
                                                           OperationStatus.NOT_REVERTED])
                      .select_related("decision").order_by("-executed_at", "-pk")[:ROWS]):
        section.items.append(Item(
            f"#{operation.decision_id} {operation.decision.title}",
            f"{operation.summary}: {operation.message}".strip(": "),
            _url("decision-detail", operation.decision_id, fallback="decision-list")))
    return section


def expiring_accounts_section() -> Section:
    from chaton.directory.models import Account

    now = clock.now()
    section = Section("accounts", _("Accounts expiring within 14 days"),
                      _("No account expires within 14 days."))
    for account in (Account.objects.filter(expires_at__gt=now,
                                           expires_at__lte=now + dt.timedelta(days=EXPIRY_DAYS))
                    .order_by("expires_at")[:ROWS]):
        section.items.append(Item(
            account.uid, str(_("expires on %(day)s") % {"day": _when(account.expires_at)}),
            _url("account-detail", account.uid, fallback="account-list")))
    return section


def expiring_accesses_section() -> Section:
    from chaton.directory.models import GroupMembership

    now = clock.now()
    section = Section("accesses", _("Accesses expiring within 14 days"),
                      _("No access to a group expires within 14 days."))
    for membership in (GroupMembership.objects
                       .filter(expires_at__gt=now,
                               expires_at__lte=now + dt.timedelta(days=EXPIRY_DAYS))
                       .select_related("account", "group").order_by("expires_at")[:ROWS]):
        section.items.append(Item(
            f"{membership.account.uid} → {membership.group.name}",
            str(_("ends on %(day)s") % {"day": _when(membership.expires_at)}),
            _url("group-detail", membership.group.name, fallback="group-list")))
    return section


def votes_section(person_id: int | None) -> Section:
    from chaton.governance.models import Ballot, Elector, Vote

    section = Section("votes", _("Decisions awaiting my vote"), _("No vote waits for you."))
    if person_id is None:
        return section
    ballots = (Ballot.objects.filter(closed_at__isnull=True)
               .filter(Exists(Elector.objects.filter(ballot=OuterRef("pk"), person_id=person_id)))
               .exclude(Exists(Vote.objects.filter(ballot=OuterRef("pk"), person_id=person_id)))
               .select_related("decision").order_by("closes_at")[:ROWS])
    for ballot in ballots:
        section.items.append(Item(
            f"#{ballot.decision_id} {ballot.decision.title}",
            str(_("vote closes on %(day)s") % {"day": _when(ballot.closes_at)}),
            _url("decision-detail", ballot.decision_id, fallback="decision-list")))
    return section


def directory_section() -> Section:
    from chaton.directory.models import SyncState

    section = Section("directory", _("Directory"), _("The directory is up to date."))
    state = SyncState.objects.filter(
        Q(pending_since__isnull=False)).order_by("pk").first()
    if state is not None and state.pending_since is not None:
        section.items.append(Item(
            str(_("Changes wait to reach the directory since %(day)s")
                % {"day": _when(state.pending_since)}),
            state.last_error, _url("account-list")))
    return section


def sections(person_id: int | None) -> list[Section]:
    """Return the overview's sections for an administrator (``person_id``: their person)."""
    return [incidents_section(), hosts_section(), backups_section(), operations_section(),
            votes_section(person_id), expiring_accounts_section(), expiring_accesses_section(),
            directory_section()]


def overview(request: HttpRequest) -> HttpResponse:
    """/overview/: administrators see what needs attention; anyone else goes to their account."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not queries.is_administrator(request.user):
        return redirect("profile")
    return _admin_overview(request)


@admin_required
def _admin_overview(request: HttpRequest) -> HttpResponse:
    account = signed_in(request)
    parts = sections(account.person_id)
    return render(request, "monitoring/overview.html", {
        "sections": parts, "all_well": not any(part.items for part in parts)})
