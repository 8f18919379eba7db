"""Reads of the backups app: plans and their health, run and drill history, the drill summary.

Every function here reads the database only, except :func:`retention_preview`,
which lists the repository's snapshots (``restic snapshots --no-lock``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chaton.backups import engine
from chaton.backups.models import (
    Drill,
    DrillOutcome,
    Outcome,
    Plan,
    Repository,
    Run,
    RunKind,
    Source,
    SourceResult,
)
from chaton.backups.runs import RetentionOutcome, preview_retention
from chaton.core import clock
from chaton.core.errors import NotFound


@dataclass(frozen=True)
class PlanStatus:
    """A plan and its health: its last run, its last good backup, its last drill."""

    plan: Plan
    last_backup: Run | None
    last_good_backup: Run | None
    last_drill: Drill | None
    #: True when the last good backup is older than the plan's threshold (or there is none).
    stale: bool
    #: When the worker starts the next backup (None: the plan is disabled).
    next_backup_at: dt.datetime | None

    @property
    def last_good_at(self) -> dt.datetime | None:
        backup = self.last_good_backup
        return backup.finished_at if backup is not None else None


def is_stale(plan: Plan, last_good_at: dt.datetime | None, now: dt.datetime | None = None
             ) -> bool:
    """Return whether a plan whose last good backup ended at ``last_good_at`` is stale now.

    A plan never backed up is stale once it is older than its threshold (a new
    plan gets the time to run once).
    """
    now = now or clock.now()
    reference = last_good_at or plan.created_at
    return now - reference > plan.stale_after


def _with_last_runs(plans: QuerySet[Plan]) -> QuerySet[Plan]:
    """Annotate each plan with the ids of its last backup, last good backup and last drill."""
    backups = Run.objects.filter(plan=OuterRef("pk"), kind=RunKind.BACKUP).order_by(
        "-started_at", "-id")
    drills = Drill.objects.filter(plan=OuterRef("pk")).order_by("-started_at", "-id")
    return plans.annotate(
        last_backup_id=Subquery(backups.values("id")[:1]),
        last_good_backup_id=Subquery(backups.filter(outcome=Outcome.SUCCEEDED).values("id")[:1]),
        last_drill_id=Subquery(drills.values("id")[:1]),
    )


def plan_statuses(plans: QuerySet[Plan] | None = None) -> list[PlanStatus]:
    """Return every plan (or those of ``plans``) with its health, in three queries."""
    chosen = _with_last_runs((plans if plans is not None else Plan.objects.all())
                             .select_related("repository"))
    rows = list(chosen)
    run_ids = {getattr(plan, name) for plan in rows
               for name in ("last_backup_id", "last_good_backup_id")} - {None}
    runs = Run.objects.in_bulk(run_ids)
    drills = Drill.objects.in_bulk({plan.last_drill_id for plan in rows} - {None})  # type: ignore[attr-defined]
    now = clock.now()
    statuses = []
    for plan in rows:
        last_backup = runs.get(plan.last_backup_id)  # type: ignore[attr-defined]
        good = runs.get(plan.last_good_backup_id)  # type: ignore[attr-defined]
        good_at = good.finished_at if good is not None else None
        next_at = None
        if plan.enabled:
            next_at = (last_backup.started_at + plan.interval) if last_backup else now
        statuses.append(PlanStatus(
            plan=plan, last_backup=last_backup, last_good_backup=good,
            last_drill=drills.get(plan.last_drill_id),  # type: ignore[attr-defined]
            stale=is_stale(plan, good_at, now), next_backup_at=next_at))
    return statuses


def plan_status(plan: Plan) -> PlanStatus:
    """Return one plan's health."""
    return plan_statuses(Plan.objects.filter(pk=plan.pk))[0]


def stale_plans() -> list[PlanStatus]:
    """Return the enabled plans whose last good backup is older than their threshold."""
    return [status for status in plan_statuses(Plan.objects.filter(enabled=True))
            if status.stale]


# -- lookups by natural key ----------------------------------------------------------------
#
# Every interface (pages, API, CLI) finds a plan, a repository or a source through these: one
# message per thing, NotFound for the pages' 404, the API's ``not_found`` and the CLI's line.
# A text that cannot be a name (see actions.clean_name) is not found without a query
# (PostgreSQL refuses a NUL outright).

#: What a plan, repository or source name can be.
NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")


def _name(text: str) -> str | None:
    text = text.strip()
    return text if NAME.fullmatch(text) else None


def plan_by_name(name: str) -> Plan:
    """Given a plan's name (surrounding spaces ignored), return it, its repository joined.

    Raise NotFound.
    """
    key = _name(name)
    plan = Plan.objects.select_related("repository").filter(name=key).first() if key else None
    if plan is None:
        raise NotFound(_("No backup plan is named %(name)s.") % {"name": name.strip()[:64]},
                       field="plan")
    return plan


def repository_by_name(name: str) -> Repository:
    """Given a repository's name (surrounding spaces ignored), return it. Raise NotFound."""
    key = _name(name)
    repository = Repository.objects.filter(name=key).first() if key else None
    if repository is None:
        raise NotFound(_("No repository is named %(name)s.") % {"name": name.strip()[:64]},
                       field="repository")
    return repository


def source_by_name(plan: Plan, name: str) -> Source:
    """Given a plan and a source's name, return the source (plan set). Raise NotFound."""
    key = _name(name)
    source = plan.sources.filter(name=key).first() if key else None
    if source is None:
        raise NotFound(_("Plan %(plan)s has no source named %(name)s.")
                       % {"plan": plan.name, "name": name.strip()[:64]}, field="source")
    source.plan = plan
    return source


def repositories() -> QuerySet[Repository]:
    """Return the repositories with the number of plans using each (``plan_count``) and the
    outcome and start of the last finished drill of any of them (``last_drill_outcome``,
    ``last_drill_at``; None when none was drilled)."""
    drills = Drill.objects.filter(plan__repository=OuterRef("pk")).exclude(
        outcome=DrillOutcome.RUNNING).order_by("-started_at", "-id")
    return Repository.objects.annotate(
        plan_count=Count("plans"),
        last_drill_outcome=Subquery(drills.values("outcome")[:1]),
        last_drill_at=Subquery(drills.values("started_at")[:1]))


@dataclass(frozen=True)
class RepositoryHealth:
    """Whether a repository shows green: never while its last check or its plans' last
    drill failed, nor before it was checked."""

    #: "ok", "check_failed", "drill_failed" or "unchecked".
    state: str
    #: Why, for people (empty when ok).
    reason: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def repository_health(repository: Repository) -> RepositoryHealth:
    """Given a repository from :func:`repositories` (annotated), return its health."""
    if repository.checked_at is not None and repository.check_ok is False:
        return RepositoryHealth("check_failed", _("The last check found errors: %(message)s")
                                % {"message": repository.check_message})
    if getattr(repository, "last_drill_outcome", None) == DrillOutcome.FAILED:
        return RepositoryHealth("drill_failed", _("The last restore drill failed."))
    if repository.checked_at is None:
        return RepositoryHealth("unchecked", _("Never checked yet."))
    return RepositoryHealth("ok", "")


def run_history(*, plan: Plan | None = None, repository: Repository | None = None,
                kind: str | None = None) -> QuerySet[Run]:
    """Return runs, newest first, with their per-source results prefetched."""
    runs = Run.objects.select_related("plan", "repository").prefetch_related(
        Prefetch("results", queryset=SourceResult.objects.order_by("id")))
    if plan is not None:
        runs = runs.filter(plan=plan)
    if repository is not None:
        runs = runs.filter(repository=repository)
    if kind is not None:
        runs = runs.filter(kind=kind)
    return runs.order_by("-started_at", "-id")


def snapshots_of(source: Source) -> QuerySet[SourceResult]:
    """Return the source's successful backups whose snapshot still exists, newest first."""
    return (SourceResult.objects.filter(source=source, outcome=Outcome.SUCCEEDED,
                                        forgotten_at=None)
            .exclude(snapshot_id="").select_related("run").order_by("-started_at", "-id"))


def drill_history(*, plan: Plan | None = None, since: dt.datetime | None = None,
                  until: dt.datetime | None = None) -> QuerySet[Drill]:
    """Return drills (of ``plan``, started in [since, until)), newest first."""
    drills = Drill.objects.select_related("plan", "check_run")
    if plan is not None:
        drills = drills.filter(plan=plan)
    if since is not None:
        drills = drills.filter(started_at__gte=since)
    if until is not None:
        drills = drills.filter(started_at__lt=until)
    return drills.order_by("-started_at", "-id")


@dataclass(frozen=True)
class DrillSummary:
    """How many restores were tested in a period, and how many passed."""

    since: dt.datetime | None
    until: dt.datetime | None
    tested: int
    passed: int
    failed: int

    @property
    def all_passed(self) -> bool:
        return self.tested > 0 and self.failed == 0

    def __str__(self) -> str:
        if not self.tested:
            return _("restores tested: none")
        if self.all_passed:
            return ngettext("restores tested: %(count)d, passed", "restores tested: %(count)d, "
                            "all passed", self.tested) % {"count": self.tested}
        return ngettext("restores tested: %(count)d, %(failed)d failed",
                        "restores tested: %(count)d, %(failed)d failed", self.tested) % {
            "count": self.tested, "failed": self.failed}


def drill_summary(since: dt.datetime | None = None, until: dt.datetime | None = None, *,
                  plans: Sequence[Plan] | None = None) -> DrillSummary:
    """Return the count of finished drills in [since, until) and how many passed (one query)."""
    drills = drill_history(since=since, until=until).exclude(outcome=DrillOutcome.RUNNING)
    if plans is not None:
        drills = drills.filter(plan__in=plans)
    counts = drills.aggregate(tested=Count("id"),
                              passed=Count("id", filter=Q(outcome=DrillOutcome.PASSED)))
    tested, passed = counts["tested"] or 0, counts["passed"] or 0
    return DrillSummary(since=since, until=until, tested=tested, passed=passed,
                        failed=tested - passed)


def retention_preview(plan: Plan) -> RetentionOutcome:
    """Return what the plan's retention keeps and removes now (reads the repository, no lock).

    Raise BackupError or InvalidInput when the repository cannot be read.
    """
    return preview_retention(plan)


def plan_is_running(plan: Plan) -> bool:
    """Return whether a run of the plan is in progress right now (its lock is held)."""
    return engine.plan_is_running(plan)
