"""``/api/v1/backups``: repositories, plans and their sources, runs, retention, drills, restores.

Administrators only (the API's default authentication). Writes go through
:mod:`chaton.backups.actions`, reads through :mod:`chaton.backups.queries`.
No answer ever carries a password or a secret parameter: a repository shows
the *names* of its extra variables, a source its secret parameters as ``***``.

Initialising a repository, backups, retention passes, drills and restores are
long: their endpoints check the request (404, 400), then answer ``202
Accepted`` with a job to poll at ``GET /api/v1/jobs/{id}`` (see
:mod:`chaton.core.jobs`). The job's ``result`` is what the work answers (the
repository, the run, the drill report); a run that failed is still a job that
succeeded, whose result's ``outcome`` says ``failed`` and whose ``error`` says
why. An error of the work (the codes below) is the job's ``error``. Checks run
inside the request and answer their run. Besides the shared errors (see
``/api/v1``):

- 409 ``conflict``: the plan is already running (one run per plan at a time),
  the repository stays busy, or is not initialised yet;
- 502 ``backup_error``: restic or the repository failed outside the person's
  reach (unreachable location, full disk, an undecryptable stored password).
"""


import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from pydantic import StrictBool, StrictInt

from chaton.backups import actions, checks, engine, queries, runs, sources
from chaton.backups.errors import BackupError
from chaton.backups.models import (
    Drill,
    Plan,
    Repository,
    Run,
    RunKind,
    Source,
    SourceResult,
)
from chaton.backups.queries import PlanStatus
from chaton.backups.texts import SUMMARY_DAYS
from chaton.core import clock, jobs
from chaton.core.api import (
    ERRORS,
    DateTimeIn,
    ErrorOut,
    InputSchema,
    JobOut,
    Page,
    acting_account,
    as_json,
)
from chaton.core.errors import InvalidInput
from chaton.core.models import Job
from chaton.core.secrets import SecretError

router = Router(tags=["backups"])

#: Every error a backups operation may answer: the shared ones, and 502 ``backup_error``.
BACKUP_ERRORS: dict[int, Any] = {**ERRORS, 502: ErrorOut}


@contextlib.contextmanager
def readable_secrets() -> Iterator[None]:
    """Turn a stored password that no longer decrypts (the secrets key was changed) into a
    coded 502 instead of a server error."""
    try:
        yield
    except SecretError:
        raise BackupError(_("A stored password cannot be decrypted with this installation's "
                            "secrets key; set it again.")) from None


# --- schemas --------------------------------------------------------------------------------


class RepositoryOut(Schema):
    name: str
    kind: str = Field(..., description="local, sftp or s3")
    location: str
    environment: list[str] = Field(..., description="The names of the extra variables "
                                                    "(their values stay secret).")
    check_interval_days: int
    check_read_data_subset: str
    initialised_at: dt.datetime | None
    checked_at: dt.datetime | None
    check_ok: bool | None
    check_message: str
    check_cycle: str | None = Field(..., description="What the next rotating check reads "
                                    "(n/t: t checks read every pack); null when it cannot "
                                    "rotate (a size).")
    last_full_read_at: dt.datetime | None = Field(..., description="When a check last "
                                                  "finished having read every pack.")
    last_drill_outcome: str | None
    healthy: bool = Field(..., description="False while the last check or the last drill of "
                          "its plans failed, and before the first check.")
    plan_count: int
    created_at: dt.datetime

    @staticmethod
    def resolve_check_cycle(repository: Repository) -> str | None:
        part = checks.next_part(repository.check_read_data_subset,
                                repository.check_cycle_position)
        return part.subset if part.rotating else None

    @staticmethod
    def resolve_last_drill_outcome(repository: Repository) -> str | None:
        return getattr(repository, "last_drill_outcome", None)

    @staticmethod
    def resolve_healthy(repository: Repository) -> bool:
        return queries.repository_health(repository).ok

    @staticmethod
    def resolve_environment(repository: Repository) -> list[str]:
        try:
            return repository.environment_names
        except SecretError:
            return []

    @staticmethod
    def resolve_plan_count(repository: Repository) -> int:
        count = getattr(repository, "plan_count", None)
        return count if count is not None else repository.plans.count()


class RepositoryIn(InputSchema):
    name: str = Field(..., max_length=64)
    kind: str = Field(..., max_length=10, description="local, sftp or s3")
    location: str = Field(..., max_length=500,
                          description="An absolute path, sftp:user@host:/path or "
                                      "s3:https://host/bucket.")
    password: str = Field(..., max_length=1024, description="At least 8 characters.")
    environment: dict[str, str] = Field(default_factory=dict,
                                        description="Extra variables for restic (S3 keys …).")
    check_interval_days: StrictInt = 7
    check_read_data_subset: str = Field("5%", max_length=20)
    initialise: StrictBool = Field(False, description="Initialise it at once (an existing "
                                                      "repository the password opens is "
                                                      "adopted).")


class RepositoryPatch(InputSchema):
    """Only the fields sent change; ``environment`` replaces every extra variable."""

    location: str | None = Field(None, max_length=500)
    password: str | None = Field(None, max_length=1024)
    environment: dict[str, str] | None = None
    check_interval_days: StrictInt | None = None
    check_read_data_subset: str | None = Field(None, max_length=20)


class CheckIn(InputSchema):
    read_data_subset: str | None = Field(None, max_length=20,
                                         description="The repository's setting when left out.")


class SourceResultOut(Schema):
    source: str
    kind: str
    outcome: str
    snapshot_id: str
    safety: bool
    files_new: int
    files_changed: int
    bytes_added: int
    bytes_processed: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    error: str
    forgotten_at: dt.datetime | None

    @staticmethod
    def resolve_source(result: SourceResult) -> str:
        return result.source_name

    @staticmethod
    def resolve_kind(result: SourceResult) -> str:
        return result.source_kind


class RunOut(Schema):
    id: int
    plan: str | None
    repository: str
    kind: str = Field(..., description="backup, forget (retention), check or restore")
    outcome: str = Field(..., description="running, succeeded or failed")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_seconds: float | None
    error: str
    triggered_by: str
    files_new: int
    files_changed: int
    bytes_added: int
    bytes_processed: int
    details: dict[str, Any]
    results: list[SourceResultOut]

    @staticmethod
    def resolve_plan(run: Run) -> str | None:
        return run.plan.name if run.plan_id is not None and run.plan is not None else None

    @staticmethod
    def resolve_repository(run: Run) -> str:
        return run.repository.name

    @staticmethod
    def resolve_duration_seconds(run: Run) -> float | None:
        return run.duration.total_seconds() if run.duration is not None else None

    @staticmethod
    def resolve_results(run: Run) -> list[SourceResult]:
        return list(run.results.all())


class SourceOut(Schema):
    name: str
    kind: str
    params: dict[str, Any] = Field(..., description="Secret parameters show as ***.")
    created_at: dt.datetime

    @staticmethod
    def resolve_params(source: Source) -> dict[str, Any]:
        return engine.shown_params(source.kind, source.params)


def _kind_schema(schema: dict[str, Any]) -> None:
    """Name the kinds (those of chaton/backups/sources/, found when the schema is built)."""
    schema["description"] = "One of: " + ", ".join(sources.kinds()) + "."
    schema["examples"] = list(sources.kinds())


def _params_schema(schema: dict[str, Any]) -> None:
    """Describe each kind's parameters from its Params model: one ``anyOf`` item per kind."""
    schema["description"] = ("The kind's parameters: the item of anyOf whose title is the "
                             "kind. A refused parameter is a 400 whose field names it.")
    schema["anyOf"] = [sources.params_json_schema(kind) for kind in sources.kinds()]


class SourceIn(InputSchema):
    kind: str = Field(..., max_length=20, json_schema_extra=_kind_schema)
    name: str = Field(..., max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_params_schema)


class DrillOut(Schema):
    id: int
    plan: str
    source: str
    kind: str
    snapshot_id: str
    started_at: dt.datetime
    duration_seconds: float | None
    outcome: str = Field(..., description="running, passed or failed")
    compared: list[str] = Field(..., description="What was compared, in the request's "
                                                 "language.")
    expected: dict[str, Any]
    found: dict[str, Any]
    details: str = Field(..., description="What it found, one line each, in the request's "
                                          "language.")
    evidence: dict[str, Any] = Field(..., description="The same, language-neutral: "
                                     "``compared`` and ``findings`` as items ``{code, params}``.")
    check_outcome: str | None = Field(..., description="The repository check run with it "
                                      "(its failure fails the drill).")

    @staticmethod
    def resolve_compared(drill: Drill) -> list[str]:
        return drill.compared_labels

    @staticmethod
    def resolve_details(drill: Drill) -> str:
        return drill.findings_text

    @staticmethod
    def resolve_evidence(drill: Drill) -> dict[str, Any]:
        return {"compared": drill.compared, "findings": drill.findings}

    @staticmethod
    def resolve_plan(drill: Drill) -> str:
        return drill.plan.name

    @staticmethod
    def resolve_source(drill: Drill) -> str:
        return drill.source_name

    @staticmethod
    def resolve_kind(drill: Drill) -> str:
        return drill.source_kind

    @staticmethod
    def resolve_check_outcome(drill: Drill) -> str | None:
        return drill.check_run.outcome if drill.check_run is not None else None


class LastDrillOut(Schema):
    source: str
    outcome: str
    started_at: dt.datetime


class PlanOut(Schema):
    name: str
    repository: str
    enabled: bool
    interval_minutes: int
    keep_last: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    keep_yearly: int
    stale_after_hours: int
    drill_interval_days: int
    created_at: dt.datetime
    sources: list[SourceOut]
    stale: bool = Field(..., description="The last good backup is older than "
                                         "stale_after_hours (or there is none yet).")
    running: bool = Field(..., description="A run of the plan is in progress now.")
    last_backup_outcome: str | None
    last_backup_at: dt.datetime | None
    last_good_backup_at: dt.datetime | None
    next_backup_at: dt.datetime | None
    last_drill: LastDrillOut | None


class PlanIn(InputSchema):
    name: str = Field(..., max_length=64, description="Fixed once created: the restic tag.")
    repository: str = Field(..., max_length=64, description="The repository's name.")
    enabled: StrictBool = True
    interval_minutes: StrictInt = 24 * 60
    keep_last: StrictInt = 0
    keep_daily: StrictInt = 7
    keep_weekly: StrictInt = 4
    keep_monthly: StrictInt = 6
    keep_yearly: StrictInt = 0
    stale_after_hours: StrictInt = 36
    drill_interval_days: StrictInt = 7


class PlanPatch(InputSchema):
    """Only the fields sent change."""

    repository: str | None = Field(None, max_length=64)
    enabled: StrictBool | None = None
    interval_minutes: StrictInt | None = None
    keep_last: StrictInt | None = None
    keep_daily: StrictInt | None = None
    keep_weekly: StrictInt | None = None
    keep_monthly: StrictInt | None = None
    keep_yearly: StrictInt | None = None
    stale_after_hours: StrictInt | None = None
    drill_interval_days: StrictInt | None = None


class SnapshotDecisionOut(Schema):
    id: str
    short_id: str
    time: dt.datetime
    reasons: list[str] = Field(..., description="The rules that keep it (daily, weekly …); "
                                                "empty for a snapshot removed.")


class RetentionGroupOut(Schema):
    label: str
    kept: list[SnapshotDecisionOut]
    removed: list[SnapshotDecisionOut]


class RetentionOut(Schema):
    dry_run: bool
    kept_count: int
    removed_count: int
    groups: list[RetentionGroupOut]
    run: RunOut | None


class DrillIn(InputSchema):
    source: str | None = Field(None, max_length=64, description="Only this source.")
    check: StrictBool = Field(True, description="Then run restic check on the repository.")


class DrillReportOut(Schema):
    passed: bool
    drills: list[DrillOut]
    check: RunOut | None


class SummaryOut(Schema):
    since: dt.datetime | None
    until: dt.datetime | None
    tested: int
    passed: int
    failed: int
    all_passed: bool
    text: str = Field(..., examples=["restores tested: 12, all passed"])


class RestoreIn(InputSchema):
    snapshot: str | None = Field(None, max_length=64,
                                 description="A snapshot id (8 hex digits or more); the "
                                             "newest good one when left out.")
    target: str | None = Field(None, max_length=4096,
                               description="An empty directory, or for PostgreSQL a "
                                           "postgresql:// URL of an existing database.")
    in_place: StrictBool = Field(False, description="Put the data back where it came from, "
                                                    "after a safety snapshot.")
    confirm: StrictBool = Field(False, description="Required with in_place: it overwrites.")


class SnapshotOut(Schema):
    snapshot_id: str
    backed_up_at: dt.datetime
    safety: bool
    run: int
    bytes_processed: int

    @staticmethod
    def resolve_backed_up_at(result: SourceResult) -> dt.datetime:
        return result.started_at

    @staticmethod
    def resolve_run(result: SourceResult) -> int:
        return result.run_id


# --- shaping --------------------------------------------------------------------------------


def _plan_out(status: PlanStatus) -> dict[str, Any]:
    """Given a plan's status (its sources prefetched), return the plan as PlanOut."""
    plan = status.plan
    last, drill = status.last_backup, status.last_drill
    return {
        **{name: getattr(plan, name) for name in (
            "name", "enabled", "interval_minutes", "keep_last", "keep_daily", "keep_weekly",
            "keep_monthly", "keep_yearly", "stale_after_hours", "drill_interval_days",
            "created_at")},
        "repository": plan.repository.name,
        "sources": list(plan.sources.all()),
        "stale": status.stale,
        "running": queries.plan_is_running(plan),
        "last_backup_outcome": last.outcome if last is not None else None,
        "last_backup_at": last.started_at if last is not None else None,
        "last_good_backup_at": status.last_good_at,
        "next_backup_at": status.next_backup_at,
        "last_drill": {"source": drill.source_name, "outcome": drill.outcome,
                       "started_at": drill.started_at} if drill is not None else None,
    }


def _statuses(plans: QuerySet[Plan]) -> list[PlanStatus]:
    return queries.plan_statuses(plans.prefetch_related("sources"))


def _one_plan(plan: Plan) -> dict[str, Any]:
    return _plan_out(_statuses(Plan.objects.filter(pk=plan.pk))[0])


def _run(run: Run) -> Run:
    """Return the run again with what RunOut reads joined (one query, whatever it holds)."""
    return queries.run_history().get(pk=run.pk)


def _retention_out(outcome: runs.RetentionOutcome) -> dict[str, Any]:
    def decision(item: Any) -> dict[str, Any]:
        snapshot = item.snapshot
        return {"id": snapshot.id, "short_id": snapshot.short_id, "time": snapshot.time,
                "reasons": list(item.reasons)}

    return {"dry_run": outcome.dry_run, "kept_count": outcome.kept_count,
            "removed_count": outcome.removed_count,
            "groups": [{"label": group.label, "kept": [decision(item) for item in group.kept],
                        "removed": [decision(item) for item in group.removed]}
                       for group in outcome.groups],
            "run": _run(outcome.run) if outcome.run is not None else None}


# --- repositories ---------------------------------------------------------------------------


@router.get("/repositories", response={200: list[RepositoryOut], **ERRORS},
            summary="List the repositories")
def list_repositories(request: HttpRequest) -> Any:
    return list(queries.repositories())


@router.post("/repositories", response={201: RepositoryOut, 202: JobOut, **BACKUP_ERRORS},
             summary="Record a repository (and initialise it, with initialise: true: a job)")
def create_repository(request: HttpRequest,
                      payload: RepositoryIn) -> tuple[int, Repository | Job]:
    """The password is stored encrypted and never shown again. 201 with the repository;
    with ``initialise``, 202 with the job that initialises it (as ``POST
    /repositories/{name}/init``): when that fails, the repository stays recorded."""
    repository = actions.do_create_repository(
        payload.name, kind=payload.kind, location=payload.location, password=payload.password,
        environment=payload.environment, check_interval_days=payload.check_interval_days,
        check_read_data_subset=payload.check_read_data_subset,
        acting_user=acting_account(request))
    if payload.initialise:
        return _init_job(request, repository)
    return 201, queries.repositories().get(pk=repository.pk)


@router.get("/repositories/{name}", response={200: RepositoryOut, **ERRORS},
            summary="Get a repository")
def get_repository(request: HttpRequest, name: str) -> Repository:
    return queries.repositories().get(pk=queries.repository_by_name(name).pk)


@router.patch("/repositories/{name}", response={200: RepositoryOut, **ERRORS},
              summary="Change a repository's location, password, variables or checks")
def update_repository(request: HttpRequest, name: str, payload: RepositoryPatch) -> Repository:
    repository = queries.repository_by_name(name)
    actions.do_update_repository(
        repository, acting_user=acting_account(request), location=payload.location,
        password=payload.password, environment=payload.environment,
        check_interval_days=payload.check_interval_days,
        check_read_data_subset=payload.check_read_data_subset)
    return queries.repositories().get(pk=repository.pk)


@router.delete("/repositories/{name}", response={204: None, **ERRORS},
               summary="Delete a repository record (its restic data stays where it is)")
def delete_repository(request: HttpRequest, name: str) -> tuple[int, None]:
    """409 ``conflict`` while a plan uses it or a run of it is in progress."""
    actions.do_delete_repository(queries.repository_by_name(name),
                                 acting_user=acting_account(request))
    return 204, None


@router.post("/repositories/{name}/init", response={202: JobOut, **BACKUP_ERRORS},
             summary="Initialise the repository at its location (or adopt the one there): a job")
def init_repository(request: HttpRequest, name: str) -> tuple[int, Job]:
    """The job's result is the repository. Its error is ``invalid`` (field ``password``)
    when a repository is there that the password does not open, ``backup_error`` when
    restic cannot reach or write the location."""
    return _init_job(request, queries.repository_by_name(name))


def _init_job(request: HttpRequest, repository: Repository) -> tuple[int, Job]:
    return 202, jobs.do_start_job(
        "backups.init", params={"repository": repository.pk}, target=repository.name,
        lock_key=f"backups.repository:{repository.pk}", acting_user=acting_account(request))


def _init_work(job: Job) -> dict[str, Any]:
    repository = Repository.objects.get(pk=job.params["repository"])
    with readable_secrets():
        actions.do_init_repository(repository, acting_user=job.created_by)
    return as_json(RepositoryOut, queries.repositories().get(pk=repository.pk))


@router.post("/repositories/{name}/check", response={200: RunOut, **BACKUP_ERRORS},
             summary="Run restic check now, reading a share of the data")
def check_repository(request: HttpRequest, name: str, payload: CheckIn | None = None) -> Run:
    """Answers the check run: ``outcome`` failed, with restic's findings, for damaged data."""
    repository = queries.repository_by_name(name)
    run = runs.check_repository(
        repository, acting_user=acting_account(request),
        read_data_subset=payload.read_data_subset if payload is not None else None)
    return _run(run)


# --- plans ----------------------------------------------------------------------------------


@router.get("/plans", response={200: list[PlanOut], **ERRORS},
            summary="List the plans with their health (stale, last backup, last drill)")
def list_plans(request: HttpRequest, stale: bool | None = None) -> list[dict[str, Any]]:
    """``?stale=true`` keeps the stale plans, ``?stale=false`` the others."""
    rows = [_plan_out(status) for status in _statuses(Plan.objects.all())]
    if stale is not None:
        rows = [row for row in rows if row["stale"] == stale]
    return rows


@router.post("/plans", response={201: PlanOut, **ERRORS}, summary="Create a plan")
def create_plan(request: HttpRequest, payload: PlanIn) -> tuple[int, dict[str, Any]]:
    """Add its data sources with ``POST /plans/{name}/sources``."""
    values = payload.model_dump()
    name = values.pop("name")
    repository = queries.repository_by_name(values.pop("repository"))
    plan = actions.do_create_plan(name, repository, acting_user=acting_account(request),
                                  **values)
    return 201, _one_plan(plan)


@router.get("/plans/{name}", response={200: PlanOut, **ERRORS}, summary="Get a plan")
def get_plan(request: HttpRequest, name: str) -> dict[str, Any]:
    return _one_plan(queries.plan_by_name(name))


@router.patch("/plans/{name}", response={200: PlanOut, **ERRORS},
              summary="Change a plan's settings (its name stays)")
def update_plan(request: HttpRequest, name: str, payload: PlanPatch) -> dict[str, Any]:
    plan = queries.plan_by_name(name)
    changes = payload.model_dump(exclude_unset=True)
    if changes.get("repository") is not None:
        changes["repository"] = queries.repository_by_name(changes["repository"])
    actions.do_update_plan(plan, acting_user=acting_account(request), **changes)
    return _one_plan(plan)


@router.delete("/plans/{name}", response={204: None, **ERRORS},
               summary="Delete a plan and its history (its snapshots stay in the repository)")
def delete_plan(request: HttpRequest, name: str) -> tuple[int, None]:
    actions.do_delete_plan(queries.plan_by_name(name), acting_user=acting_account(request))
    return 204, None


@router.post("/plans/{name}/sources", response={201: SourceOut, **ERRORS},
             summary="Add a data source to a plan")
def add_source(request: HttpRequest, name: str, payload: SourceIn) -> tuple[int, Source]:
    """The kind checks its parameters: an unknown kind or a bad parameter is 400 with the
    faulty parameter in ``field``."""
    plan = queries.plan_by_name(name)
    return 201, actions.do_add_source(plan, payload.kind, payload.name, payload.params,
                                      acting_user=acting_account(request))


@router.delete("/plans/{name}/sources/{source}", response={204: None, **ERRORS},
               summary="Remove a data source (its snapshots and history stay)")
def remove_source(request: HttpRequest, name: str, source: str) -> tuple[int, None]:
    found = queries.source_by_name(queries.plan_by_name(name), source)
    actions.do_remove_source(found, acting_user=acting_account(request))
    return 204, None


@router.get("/plans/{name}/sources/{source}/snapshots",
            response={200: list[SnapshotOut], **ERRORS},
            summary="The source's snapshots that can be restored, newest first")
@paginate(Page)
def list_snapshots(request: HttpRequest, name: str, source: str) -> Any:
    return queries.snapshots_of(queries.source_by_name(queries.plan_by_name(name), source))


# --- runs -----------------------------------------------------------------------------------


@router.get("/plans/{name}/runs", response={200: list[RunOut], **ERRORS},
            summary="A plan's runs, newest first")
@paginate(Page)
def list_runs(request: HttpRequest, name: str, kind: str = "") -> Any:
    """``?kind=`` keeps one kind: backup, forget (retention), check or restore."""
    if kind and kind not in RunKind.values:
        raise InvalidInput(_("Unknown kind of run: choose among %(choices)s.")
                           % {"choices": ", ".join(RunKind.values)}, field="kind")
    return queries.run_history(plan=queries.plan_by_name(name), kind=kind or None)


def _plan_job(request: HttpRequest, kind: str, plan: Plan, **params: Any) -> tuple[int, Job]:
    """Start the job ``kind`` on ``plan``; answer 202 with it. One plan's jobs run in turn."""
    return 202, jobs.do_start_job(kind, params={"plan": plan.pk, **params}, target=plan.name,
                                  lock_key=f"backups.plan:{plan.pk}",
                                  acting_user=acting_account(request))


@router.post("/plans/{name}/run", response={202: JobOut, **BACKUP_ERRORS},
             summary="Back the plan up now: a job")
def run_plan(request: HttpRequest, name: str) -> tuple[int, Job]:
    """The job's result is the run: ``outcome`` failed (and ``error``) when a source or the
    repository failed. Its error is ``conflict`` when the plan is already running."""
    return _plan_job(request, "backups.run", queries.plan_by_name(name))


def _run_work(job: Job) -> dict[str, Any]:
    plan = Plan.objects.get(pk=job.params["plan"])
    report = jobs.progress_reporter(job)

    def progress(where: runs.RunProgress) -> None:
        report((where.position - 1 + where.fraction) / max(where.count, 1))

    return as_json(RunOut, _run(runs.run_backup(plan, acting_user=job.created_by,
                                                   progress=progress)))


@router.get("/plans/{name}/retention", response={200: RetentionOut, **BACKUP_ERRORS},
            summary="What the plan's retention keeps and removes now (changes nothing)")
def preview_retention(request: HttpRequest, name: str) -> dict[str, Any]:
    """Each kept snapshot comes with the rules that keep it (daily, weekly …)."""
    plan = queries.plan_by_name(name)
    with readable_secrets():
        return _retention_out(queries.retention_preview(plan))


@router.post("/plans/{name}/retention", response={202: JobOut, **BACKUP_ERRORS},
             summary="Apply the plan's retention now (restic forget --prune): a job")
def apply_retention(request: HttpRequest, name: str) -> tuple[int, Job]:
    """The job's result is what was kept and removed, as ``GET`` shows it beforehand."""
    return _plan_job(request, "backups.retention", queries.plan_by_name(name))


def _retention_work(job: Job) -> dict[str, Any]:
    plan = Plan.objects.get(pk=job.params["plan"])
    outcome = runs.apply_retention(plan, acting_user=job.created_by)
    return as_json(RetentionOut, _retention_out(outcome))


# --- drills ---------------------------------------------------------------------------------


@router.get("/drills", response={200: list[DrillOut], **ERRORS},
            summary="Restore drills, newest first")
@paginate(Page)
def list_drills(request: HttpRequest, plan: str = "", since: DateTimeIn | None = None,
                until: DateTimeIn | None = None) -> Any:
    """``?plan=`` keeps one plan's; ``?since=`` and ``?until=`` bound when they started."""
    return queries.drill_history(plan=queries.plan_by_name(plan) if plan else None, since=since,
                                 until=until)


@router.get("/drills/summary", response={200: SummaryOut, **ERRORS},
            summary="How many restores were tested, and how many passed")
def drill_summary(request: HttpRequest, plan: str = "", since: DateTimeIn | None = None,
                  until: DateTimeIn | None = None) -> dict[str, Any]:
    """Over the last six months unless ``since`` says otherwise; ``text`` reads like
    "restores tested: 12, all passed"."""
    start = since if since is not None else clock.now() - dt.timedelta(days=SUMMARY_DAYS)
    summary = queries.drill_summary(start, until,
                                    plans=[queries.plan_by_name(plan)] if plan else None)
    return {"since": summary.since, "until": summary.until, "tested": summary.tested,
            "passed": summary.passed, "failed": summary.failed,
            "all_passed": summary.all_passed, "text": str(summary)}


@router.get("/plans/{name}/drills", response={200: list[DrillOut], **ERRORS},
            summary="A plan's restore drills, newest first")
@paginate(Page)
def list_plan_drills(request: HttpRequest, name: str) -> Any:
    return queries.drill_history(plan=queries.plan_by_name(name))


@router.post("/plans/{name}/drill", response={202: JobOut, **BACKUP_ERRORS},
             summary="Drill a restore of the plan now (every source, or one): a job")
def drill_plan(request: HttpRequest, name: str, payload: DrillIn | None = None
               ) -> tuple[int, Job]:
    """Each source's newest good snapshot is restored into a scratch place and compared
    with what was backed up. The job's result is the drill report: ``passed`` is false
    when one failed (the evidence is in each drill's ``details``). Its error is
    ``conflict`` when the plan is already running."""
    options = payload or DrillIn(source=None, check=True)
    plan = queries.plan_by_name(name)
    source = queries.source_by_name(plan, options.source) if options.source else None
    return _plan_job(request, "backups.drill", plan,
                     source=source.name if source is not None else None, check=options.check)


def _drill_work(job: Job) -> dict[str, Any]:
    plan = Plan.objects.get(pk=job.params["plan"])
    target: Plan | Source = (queries.source_by_name(plan, job.params["source"])
                             if job.params.get("source") is not None else plan)
    report = runs.run_drill(target, acting_user=job.created_by,
                               check=bool(job.params.get("check", True)))
    drills = list(queries.drill_history(plan=plan).filter(
        pk__in=[drill.pk for drill in report.drills]))
    return as_json(DrillReportOut, {
        "passed": report.passed, "drills": drills,
        "check": _run(report.check) if report.check is not None else None})


# --- restore --------------------------------------------------------------------------------


@router.post("/plans/{name}/sources/{source}/restore", response={202: JobOut, **BACKUP_ERRORS},
             summary="Restore one source: to a target, or in place after a safety snapshot; "
                     "a job")
def restore_source(request: HttpRequest, name: str, source: str,
                   payload: RestoreIn) -> tuple[int, Job]:
    """Send either ``target`` or ``in_place: true`` with ``confirm: true``. In place, a
    safety snapshot of the data as it is now is taken first (its id is in the run's
    ``details.safety_snapshot``): if it fails, nothing is overwritten. A source that
    cannot be restored in place (Chaton's own database, a directory server) answers 400
    with the reason. The job's result is the restore's run."""
    found = queries.source_by_name(queries.plan_by_name(name), source)
    if payload.in_place and payload.target is not None:
        raise InvalidInput(_("Restore either to a target or in place."), field="target")
    if not payload.in_place and payload.target is None:
        raise InvalidInput(_("Give a target, or in_place: true."), field="target")
    if payload.in_place and not payload.confirm:
        raise InvalidInput(_("An in-place restore overwrites the data (after a safety "
                             "snapshot): send confirm: true."), field="confirm")
    return _plan_job(request, "backups.restore", found.plan, source=found.name,
                     snapshot=payload.snapshot or None, target=payload.target,
                     in_place=payload.in_place)


def _restore_work(job: Job) -> dict[str, Any]:
    found = queries.source_by_name(Plan.objects.get(pk=job.params["plan"]),
                                   job.params["source"])
    run = runs.restore(found, job.params.get("snapshot"), acting_user=job.created_by,
                             target=job.params.get("target"),
                             in_place=bool(job.params.get("in_place")))
    return as_json(RunOut, _run(run))


jobs.register("backups.init", _init_work)
jobs.register("backups.run", _run_work)
jobs.register("backups.retention", _retention_work)
jobs.register("backups.drill", _drill_work)
jobs.register("backups.restore", _restore_work)
