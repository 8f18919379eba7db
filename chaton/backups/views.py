"""The backups pages, for administrators: plans and their health, repositories, runs, drills.

``/backups/`` lists the plans (last good backup, its age, the stale flag, the
next run, the last drill) with the drill summary of the last six months, and
the repositories with their last check. A plan's page shows its sources,
schedule, retention policy and what that policy keeps now, its runs and its
drills, and the buttons that back it up, drill it or apply its retention
there and then (the embedded default is small: the work runs inside the
request). A plan that is already running refuses a second run: the page says
so. Writes go through :mod:`chaton.backups.actions`; an error is shown next to
the field it names, and a password typed in a form is never shown again.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from chaton.backups import actions, checks, engine, queries, recovery, runs
from chaton.backups.forms import (
    PlanForm,
    PlanSettingsForm,
    RepositoryEditForm,
    RepositoryForm,
    SourceForm,
)
from chaton.backups.models import Plan, Repository, Run, RunKind, Source, SourceResult
from chaton.backups.texts import (
    SUMMARY_DAYS,
    duration_text,
    interval_text,
    params_text,
    reason_labels,
    retention_text,
)
from chaton.core import clock
from chaton.core.charts import Series, stacked_bars
from chaton.core.errors import ChatonError
from chaton.core.secrets import SecretError
from chaton.core.views import admin_required, paginate, posted, show_error, signed_in

#: Runs per page of a plan's history, and drills per page of its drill history.
HISTORY_PAGE_SIZE = 20
#: How many of the last backups the chart of bytes added shows.
CHART_RUNS = 30
#: Checks listed on a repository's page.
CHECKS_SHOWN = 20


# -- helpers -----------------------------------------------------------------


def _seconds(delta: dt.timedelta | None) -> float | None:
    return delta.total_seconds() if delta is not None else None


def _summary_since() -> dt.datetime:
    return clock.now() - dt.timedelta(days=SUMMARY_DAYS)


def bytes_chart(runs: Sequence[Run]) -> SafeString | None:
    """Given backup runs, oldest first, return an SVG chart of the bytes each added (None
    for fewer than two runs: a single bar says nothing a table does not)."""
    if len(runs) < 2:
        return None
    highest = max(run.bytes_added for run in runs)
    unit, divisor = "B", 1
    for name, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if highest >= 10 * size:
            unit, divisor = name, size
            break
    labels = [formats.date_format(timezone.localtime(run.started_at), "d/m H:i")
              for run in runs]
    values = [round(run.bytes_added / divisor) for run in runs]
    label = _("Bytes added (%(unit)s)") % {"unit": unit}
    return stacked_bars(labels, [Series(label, values, "#2f6f5e")],
                        title=_("Data added to the repository by each backup"))


def variable_names(repository: Repository) -> list[str]:
    """Return the names of a repository's extra variables; none when they no longer decrypt
    (the secrets key changed: the page must still show, and say what else it can)."""
    try:
        return repository.environment_names
    except SecretError:
        return []


def _decorate_runs(runs: Any) -> None:
    """Give each run of a page its duration as text and its snapshot ids (no query: the
    results are prefetched)."""
    for run in runs:
        run.duration_text = duration_text(_seconds(run.duration))
        run.snapshots = [result for result in run.results.all() if result.snapshot_id]


def _decorate_drills(drills: Any) -> None:
    for drill in drills:
        drill.duration_text = duration_text(drill.duration_seconds)


# -- the overview ------------------------------------------------------------


@admin_required
def overview(request: HttpRequest) -> HttpResponse:
    """List the plans with their health and the repositories with their last check.

    A constant number of queries, whatever the number of plans.
    """
    statuses = queries.plan_statuses()
    good_ids = [status.last_good_backup.pk for status in statuses
                if status.last_good_backup is not None]
    snapshots: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in (SourceResult.objects.filter(run_id__in=good_ids).exclude(snapshot_id="")
                .order_by("id").values("run_id", "source_name", "snapshot_id")):
        snapshots[row["run_id"]].append(dict(row))
    source_counts = dict(Source.objects.values("plan").annotate(count=Count("id"))
                         .values_list("plan", "count"))
    now = clock.now()
    rows = [{
        "status": status,
        "snapshots": snapshots.get(status.last_good_backup.pk, [])
        if status.last_good_backup is not None else [],
        "source_count": source_counts.get(status.plan.pk, 0),
        "running": engine.plan_is_running(status.plan),
        "due": status.next_backup_at is not None and status.next_backup_at <= now,
    } for status in statuses]
    return render(request, "backups/overview.html", {
        "rows": rows,
        "stale_count": sum(1 for status in statuses if status.stale and status.plan.enabled),
        "summary": queries.drill_summary(since=_summary_since()),
        "repositories": with_health(queries.repositories()),
        "now": now,
        "recovery_kit_pending": recovery.needs_confirmation(),
    })


# -- repositories ------------------------------------------------------------


@admin_required
def repository_create(request: HttpRequest) -> HttpResponse:
    """Record a repository and, if asked, initialise it at once."""
    form = RepositoryForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            repository = actions.do_create_repository(
                data["name"], kind=data["kind"], location=data["location"],
                password=data["password"], environment=form.variables(),
                check_interval_days=data["check_interval_days"],
                check_read_data_subset=data["check_read_data_subset"],
                acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The repository %(name)s was recorded.")
                             % {"name": repository.name})
            if data["initialise"]:
                _initialise(request, repository)
            return redirect("backup-repository", repository.name)
    return render(request, "backups/repository_form.html", {"form": form, "repository": None})


def _initialise(request: HttpRequest, repository: Repository) -> None:
    """Initialise the repository and say how it went (an error is a message, not a crash)."""
    try:
        actions.do_init_repository(repository, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, _("The repository could not be initialised: %(error)s")
                       % {"error": error})
    else:
        messages.success(request, _("The repository %(name)s is initialised.")
                         % {"name": repository.name})


def with_health(repositories: Iterable[Repository]) -> list[Repository]:
    """Given repositories from queries.repositories(), return them with ``health`` set (what
    ``backups/_check.html`` shows) and, when it rotates, ``cycle`` (the next part, of how many)."""
    chosen = list(repositories)
    for repository in chosen:
        repository.health = queries.repository_health(repository)  # type: ignore[attr-defined]
        part = checks.next_part(repository.check_read_data_subset,
                                repository.check_cycle_position)
        repository.cycle = part if part.rotating else None  # type: ignore[attr-defined]
    return chosen


@admin_required
def repository_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Show a repository: where it is, the plans using it, its health, its checks."""
    found = queries.repository_by_name(name)
    (repository,) = with_health(queries.repositories().filter(pk=found.pk))
    checks = list(queries.run_history(repository=repository, kind=RunKind.CHECK)[:CHECKS_SHOWN])
    _decorate_runs(checks)
    return render(request, "backups/repository_detail.html", {
        "repository": repository,
        "variable_names": variable_names(repository),
        "plans": repository.plans.order_by("name"),
        "checks": checks,
    })


@admin_required
def repository_edit(request: HttpRequest, name: str) -> HttpResponse:
    """Change a repository's location, password, extra variables or checks."""
    repository = queries.repository_by_name(name)
    form = RepositoryEditForm(posted(request), initial={
        "location": repository.location,
        "check_interval_days": repository.check_interval_days,
        "check_read_data_subset": repository.check_read_data_subset})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_update_repository(
                repository, acting_user=signed_in(request), location=data["location"],
                password=data["password"] or None, environment=form.variables(),
                check_interval_days=data["check_interval_days"],
                check_read_data_subset=data["check_read_data_subset"])
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The changes were saved."))
            return redirect("backup-repository", repository.name)
    return render(request, "backups/repository_form.html",
                  {"form": form, "repository": repository,
                   "variable_names": variable_names(repository)})


@admin_required
@require_POST
def repository_init(request: HttpRequest, name: str) -> HttpResponse:
    _initialise(request, queries.repository_by_name(name))
    return redirect("backup-repository", name)


@admin_required
def repository_delete(request: HttpRequest, name: str) -> HttpResponse:
    """Ask for confirmation (GET), then forget the repository (POST): refused while a plan
    uses it; the restic repository itself stays where it is."""
    repository = queries.repository_by_name(name)
    if request.method == "POST":
        try:
            actions.do_delete_repository(repository, acting_user=signed_in(request))
        except ChatonError as error:
            messages.error(request, str(error))
            return redirect("backup-repository", repository.name)
        messages.success(request, _("The repository %(name)s was deleted from Chaton; its data "
                                    "stays at %(location)s.")
                         % {"name": name, "location": repository.location})
        return redirect("backup-overview")
    return render(request, "backups/repository_confirm_delete.html", {
        "repository": repository, "plans": repository.plans.order_by("name"),
        "run_count": repository.runs.count()})


@admin_required
@require_POST
def repository_check(request: HttpRequest, name: str) -> HttpResponse:
    """Run ``restic check`` on the repository now (reading its usual share of the data)."""
    repository = queries.repository_by_name(name)
    try:
        run = runs.check_repository(repository, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
    else:
        if run.succeeded:
            messages.success(request, _("Check of %(name)s: no errors were found.")
                             % {"name": repository.name})
        else:
            messages.error(request, _("Check of %(name)s failed: %(error)s")
                           % {"name": repository.name, "error": run.error})
    return redirect("backup-repository", repository.name)


# -- plans -------------------------------------------------------------------


@admin_required
def plan_create(request: HttpRequest) -> HttpResponse:
    form = PlanForm(posted(request), initial={"repository": Repository.objects.order_by(
        "name").values_list("name", flat=True).first()})
    if request.method == "POST" and form.is_valid():
        settings = form.settings()
        repository = settings.pop("repository")
        try:
            plan = actions.do_create_plan(form.cleaned_data["name"], repository,
                                          acting_user=signed_in(request), **settings)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The plan %(name)s was created: add its data sources.")
                             % {"name": plan.name})
            return redirect("backup-source-add", plan.name)
    return render(request, "backups/plan_form.html", {"form": form, "plan": None})


def retention_groups(outcome: runs.RetentionOutcome) -> list[dict[str, Any]]:
    """Given what retention keeps and removes, return per group its label, the kept
    snapshots with their reasons in words, and the snapshots removed."""
    labels = reason_labels()
    return [{"label": group.label,
             "kept": [{"snapshot": decision.snapshot,
                       "reasons": ", ".join(labels.get(reason, reason)
                                            for reason in decision.reasons)}
                      for decision in group.kept],
             "removed": [decision.snapshot for decision in group.removed]}
            for group in outcome.groups]


def _retention(plan: Plan) -> tuple[list[dict[str, Any]] | None, str]:
    """Return what the plan's retention keeps now, or None and why it cannot be read."""
    try:
        return retention_groups(queries.retention_preview(plan)), ""
    except (ChatonError, SecretError) as error:
        return None, str(error)


@admin_required
def plan_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Show a plan: sources, schedule, retention and its preview, runs, drills, chart."""
    plan = queries.plan_by_name(name)
    status = queries.plan_status(plan)
    sources = list(plan.sources.order_by("name"))
    for source in sources:
        source.shown_params = params_text(  # type: ignore[attr-defined]
            engine.shown_params(source.kind, source.params))
    runs = paginate(request, queries.run_history(plan=plan), size=HISTORY_PAGE_SIZE)
    _decorate_runs(runs)
    drills = Paginator(queries.drill_history(plan=plan), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("drills"))
    _decorate_drills(drills)
    backups = list(Run.objects.filter(plan=plan, kind=RunKind.BACKUP)
                   .exclude(finished_at=None).order_by("-started_at", "-id")[:CHART_RUNS])
    retention, retention_error = _retention(plan)
    return render(request, "backups/plan_detail.html", {
        "plan": plan,
        "status": status,
        "sources": sources,
        "running": queries.plan_is_running(plan),
        "interval": interval_text(plan.interval_minutes),
        "retention_rules": retention_text(plan),
        "retention": retention,
        "retention_error": retention_error,
        "runs": runs,
        "drills": drills,
        "summary": queries.drill_summary(since=_summary_since(), plans=[plan]),
        "chart": bytes_chart(backups[::-1]),
    })


@admin_required
def plan_edit(request: HttpRequest, name: str) -> HttpResponse:
    plan = queries.plan_by_name(name)
    initial = {field: getattr(plan, field) for field in PlanSettingsForm.base_fields}
    initial["repository"] = plan.repository.name
    form = PlanSettingsForm(posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        settings = form.settings()
        if settings["repository"] == plan.repository:
            del settings["repository"]  # unchanged: not a change to record
        try:
            actions.do_update_plan(plan, acting_user=signed_in(request), **settings)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The changes were saved."))
            return redirect("backup-plan", plan.name)
    return render(request, "backups/plan_form.html", {"form": form, "plan": plan})


@admin_required
def plan_delete(request: HttpRequest, name: str) -> HttpResponse:
    """Ask for confirmation (GET), then delete the plan and its history (POST)."""
    plan = queries.plan_by_name(name)
    if request.method == "POST":
        try:
            actions.do_delete_plan(plan, acting_user=signed_in(request))
        except ChatonError as error:
            messages.error(request, str(error))
            return redirect("backup-plan", plan.name)
        messages.success(request, _("The plan %(name)s was deleted; its snapshots stay in the "
                                    "repository.") % {"name": name})
        return redirect("backup-overview")
    return render(request, "backups/plan_confirm_delete.html", {
        "plan": plan, "run_count": plan.runs.count(), "drill_count": plan.drills.count()})


@admin_required
def source_add(request: HttpRequest, name: str) -> HttpResponse:
    plan = queries.plan_by_name(name)
    form = SourceForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            source = actions.do_add_source(plan, form.cleaned_data["kind"],
                                           form.cleaned_data["name"], form.params(),
                                           acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error, form.error_field(error.field))
        else:
            messages.success(request, _("The source %(name)s was added to %(plan)s.")
                             % {"name": source.name, "plan": plan.name})
            return redirect("backup-plan", plan.name)
    return render(request, "backups/source_form.html", {"form": form, "plan": plan})


@admin_required
@require_POST
def source_remove(request: HttpRequest, name: str, source: str) -> HttpResponse:
    plan = queries.plan_by_name(name)
    found = queries.source_by_name(plan, source)
    actions.do_remove_source(found, acting_user=signed_in(request))
    messages.success(request, _("The source %(name)s was removed; its snapshots and history "
                                "stay.") % {"name": found.name})
    return redirect("backup-plan", plan.name)


# -- runs --------------------------------------------------------------------


@admin_required
@require_POST
def plan_run(request: HttpRequest, name: str) -> HttpResponse:
    """Back the plan up now; refuse, with a message, while it is already running."""
    plan = queries.plan_by_name(name)
    try:
        run = runs.run_backup(plan, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
    else:
        if run.succeeded:
            messages.success(request, _("Backup done in %(duration)s: %(size)s added.") % {
                "duration": duration_text(_seconds(run.duration)),
                "size": filesizeformat(run.bytes_added)})
        else:
            messages.error(request, _("The backup failed: %(error)s") % {"error": run.error})
    return redirect("backup-plan", plan.name)


@admin_required
@require_POST
def plan_drill(request: HttpRequest, name: str) -> HttpResponse:
    """Drill a restore of every source now, then check the repository."""
    plan = queries.plan_by_name(name)
    try:
        report = runs.run_drill(plan, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
    else:
        failed = [drill for drill in report.drills if not drill.passed]
        if report.passed:
            messages.success(request, ngettext(
                "Drill passed: %(count)d source restored and verified.",
                "Drill passed: %(count)d sources restored and verified.",
                len(report.drills)) % {"count": len(report.drills)})
        elif not report.drills:
            messages.error(request, _("Nothing to drill: the plan has no data source."))
        elif failed:
            messages.error(request, _("Drill failed for %(sources)s: %(details)s") % {
                "sources": ", ".join(drill.source_name for drill in failed),
                "details": failed[0].findings_text})
        else:
            assert report.check is not None
            messages.error(request, _("The restores passed but the repository check failed: "
                                      "%(error)s") % {"error": report.check.error})
    return redirect("backup-plan", plan.name)


@admin_required
@require_POST
def plan_retention(request: HttpRequest, name: str) -> HttpResponse:
    """Apply the plan's retention now (``restic forget --prune``)."""
    plan = queries.plan_by_name(name)
    try:
        outcome = runs.apply_retention(plan, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
    else:
        assert outcome.run is not None
        if outcome.run.succeeded:
            messages.success(request, _("Retention applied: %(kept)d snapshots kept, "
                                        "%(removed)d removed.")
                             % {"kept": outcome.kept_count, "removed": outcome.removed_count})
        else:
            messages.error(request, _("Retention failed: %(error)s")
                           % {"error": outcome.run.error})
    return redirect("backup-plan", plan.name)
