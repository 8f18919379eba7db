"""The long work of the backups app: backups, retention, checks, restores and drills.

Configuration changes are in :mod:`chaton.backups.actions` (``do_*``: one
transaction, one audit row). The runs here — :func:`run_backup`,
:func:`apply_retention`, :func:`check_repository`, :func:`restore`,
:func:`run_drill` — last minutes and cannot hold a transaction that long:
each records its :class:`Run` (or :class:`Drill`) as *running* first, does the
work outside any transaction, then records the outcome and its audit row in
one transaction. Their failures (a database out of reach, a full disk, a
wrong password, damaged data) are recorded in those rows, visible on the
pages, and returned, not raised; what is raised is what stops them from
starting (Conflict: the plan already runs).

A run whose process died (killed, machine off) stays *running* in the
database; the next run of the same plan, which can only start once the dead
one's lock is gone, marks it failed ("interrupted"). restic's own stale lock
is removed with ``restic unlock`` then (and whenever a lock stops a run), and
what the dead run had written is either in a snapshot or unreferenced data
that the next prune removes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.adapters import restic as restic_adapter
from chaton.adapters.restic import BackupProgress, ForgetGroup
from chaton.backups import checks, engine, evidence, retention
from chaton.backups.actions import clean_subset
from chaton.backups.errors import BackupError, as_chaton_error, describe
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
from chaton.backups.sources import BackupContext, RestoreRefused
from chaton.core import audit, clock, runner
from chaton.core.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from chaton.directory.models import Account

logger = logging.getLogger("chaton.backups")


def _actor(acting_user: Account | None, triggered_by: str | None) -> str:
    if triggered_by:
        return triggered_by
    return acting_user.get_username() if acting_user is not None else "system"


def _mark_interrupted_checks(repository: Repository) -> None:
    """Mark failed the repository's checks still recorded as running (their process died)."""
    Run.objects.filter(repository=repository, plan=None, outcome=Outcome.RUNNING).update(
        outcome=Outcome.FAILED, finished_at=clock.now(),
        error=_("Interrupted: the process running it stopped before the end."))


def check_repository(repository: Repository, *, acting_user: Account | None,
                        read_data_subset: str | None = None, plan: Plan | None = None,
                        triggered_by: str | None = None) -> Run:
    """Run ``restic check`` and record it as a check run; return the run.

    Without ``read_data_subset`` the check reads the next part of the
    repository's rotation (:mod:`chaton.backups.checks`: ``n/t``, so that t
    checks read every pack) and moves on only when it passes; with it, that
    subset, and the rotation does not move. A check that read every pack and
    passed is the repository's last full read. Damaged data makes a failed
    run, with restic's findings in ``details``. Raise Conflict when the
    repository stays busy past ``lock_wait_seconds``.
    """
    fixed = clean_subset(read_data_subset) if read_data_subset is not None else None
    with engine.repository_lock(repository, exclusive=True):
        # Read under the lock: another check may have moved the rotation meanwhile.
        repository.refresh_from_db()
        part = (checks.Part(fixed) if fixed is not None else
                checks.next_part(repository.check_read_data_subset,
                                 repository.check_cycle_position))
        subset = part.subset
        if plan is None:
            _mark_interrupted_checks(repository)
        run = _start_run(repository, plan, RunKind.CHECK, acting_user, triggered_by)
        run.details = {"read_data_subset": subset}
        if part.rotating:
            run.details["cycle"] = {"part": part.number, "parts": part.parts}
        try:
            client = engine.restic_for(repository)
            result = _unlocking(client, lambda: client.check(read_data_subset=subset))
        except Exception as error:  # recorded, never lost: the page shows it
            logger.warning("backups: check of %s failed: %s", repository, error)
            _finish_run(run, error=describe(error))
            ok, message = False, describe(error)
        else:
            run.details["errors"] = list(result.errors)[:50]
            message = (_("No errors were found.") if result.ok
                       else _("restic check found errors: %(errors)s")
                       % {"errors": "; ".join(result.errors[:5])})
            _finish_run(run, error="" if result.ok else message)
            ok = result.ok
        with transaction.atomic():
            repository.checked_at = run.finished_at
            repository.check_ok = ok
            repository.check_message = message[:2000]
            fields = ["checked_at", "check_ok", "check_message"]
            if ok and part.rotating:
                if part.number == 1 or repository.check_cycle_started_at is None:
                    repository.check_cycle_started_at = run.started_at
                repository.check_cycle_position = part.number % part.parts
                fields += ["check_cycle_position", "check_cycle_started_at"]
            if ok and (part.last or checks.reads_everything(subset)):
                repository.last_full_read_at = run.finished_at
                fields.append("last_full_read_at")
            repository.save(update_fields=fields)
            audit.record("backups.repository.check", repository, acting_user=acting_user,
                         actor_label=_actor(acting_user, triggered_by),
                         after={"ok": ok, "read_data_subset": subset, "run": run.pk})
    return run


# -- runs --------------------------------------------------------------------------------------


def _unlocking(client: Any, operation: Callable[[], Any]) -> Any:
    """Run ``operation``; if a lock stops it, remove the stale locks and run it once more.

    ``restic unlock`` only removes locks whose process is gone (a killed
    restic's): a live one stays, and the second try fails as it should.
    Unlocking costs a key derivation (half a second): only when needed.
    """
    try:
        return operation()
    except restic_adapter.RepositoryLocked:
        client.unlock()
        return operation()


def _start_run(repository: Repository, plan: Plan | None, kind: str,
               acting_user: Account | None, triggered_by: str | None) -> Run:
    """Record a run as running, committed at once so that every page sees it."""
    with transaction.atomic():
        return Run.objects.create(repository=repository, plan=plan, kind=kind,
                                  started_at=clock.now(), pid=os.getpid(),
                                  triggered_by=_actor(acting_user, triggered_by)[:150])


def _finish_run(run: Run, *, error: str = "") -> Run:
    """Record the run's end: succeeded without ``error``, failed with it."""
    run.finished_at = clock.now()
    run.outcome = Outcome.FAILED if error else Outcome.SUCCEEDED
    run.error = error[:4000]
    run.save(update_fields=["finished_at", "outcome", "error", "details", "files_new",
                            "files_changed", "bytes_added", "bytes_processed"])
    return run


def mark_interrupted(plan: Plan) -> int:
    """Mark failed the plan's runs, results and drills recorded as running; return how many.

    Called with the plan's lock held: nothing else runs for the plan, so
    whatever says "running" belongs to a process that died.
    """
    now = clock.now()
    message = _("Interrupted: the process running it stopped before the end.")
    with transaction.atomic():
        count = Run.objects.filter(plan=plan, outcome=Outcome.RUNNING).update(
            outcome=Outcome.FAILED, finished_at=now, error=message)
        SourceResult.objects.filter(run__plan=plan, outcome=Outcome.RUNNING).update(
            outcome=Outcome.FAILED, finished_at=now, error=message)
        count += Drill.objects.filter(plan=plan, outcome=DrillOutcome.RUNNING).update(
            outcome=DrillOutcome.FAILED, findings=[evidence.item("interrupted")])
    if count:
        logger.warning("backups: %d interrupted run(s) of plan %s marked failed", count, plan)
    return count


@dataclass(frozen=True)
class RunProgress:
    """Where a backup is: which source of how many, and how far into it."""

    source: str
    #: 1-based position of the source in the plan.
    position: int
    count: int
    bytes_done: int
    #: Zero when unknown (a streamed dump).
    total_bytes: int
    files_done: int
    total_files: int
    #: 0 to 1 within the source; zero when unknown.
    fraction: float


def _progress_for(progress: Callable[[RunProgress], None] | None, source: str, position: int,
                  count: int) -> Callable[[BackupProgress], None] | None:
    if progress is None:
        return None

    def report(step: BackupProgress) -> None:
        progress(RunProgress(source=source, position=position, count=count,
                             bytes_done=step.bytes_done, total_bytes=step.total_bytes,
                             files_done=step.files_done, total_files=step.total_files,
                             fraction=step.fraction))

    return report


def _back_up_source(run: Run, source: Source, context: BackupContext, *,
                    safety: bool = False) -> SourceResult:
    """Back up one source into the run; the failure, if any, is recorded in the result."""
    result = SourceResult.objects.create(run=run, source=source, source_name=source.name,
                                         source_kind=source.kind, started_at=clock.now(),
                                         safety=safety)
    data_source = engine.data_source(source)
    try:
        outcome = _unlocking(context.restic, lambda: data_source.backup(context))
    except Exception as error:  # one source failing never stops the others
        logger.warning("backups: %s failed: %s", source, error, exc_info=True)
        result.outcome = Outcome.FAILED
        result.error = runner.mask(describe(error))[:4000]
    else:
        result.outcome = Outcome.SUCCEEDED
        result.snapshot_id = outcome.snapshot_id
        result.files_new = outcome.files_new
        result.files_changed = outcome.files_changed
        result.bytes_added = outcome.bytes_added
        result.bytes_processed = outcome.bytes_processed
        result.fingerprint = outcome.fingerprint
    result.finished_at = clock.now()
    result.save()
    return result


def run_backup(plan: Plan, *, acting_user: Account | None = None,
               progress: Callable[[RunProgress], None] | None = None,
               time: dt.datetime | None = None, triggered_by: str | None = None) -> Run:
    """Back up every source of ``plan`` into its repository; return the recorded run.

    ``progress`` is called as restic reports (a CLI progress bar). ``time``
    sets the snapshots' time (a made-up calendar in tests; now when None).
    The run fails when a source fails (the others are still backed up), when
    the plan has no source, or when the repository cannot be used; the
    reasons are in the run and its results. Raise Conflict when the plan is
    already running, or its repository stays busy past ``lock_wait_seconds``.
    """
    with engine.plan_lock(plan):
        interrupted = mark_interrupted(plan)
        repository = plan.repository
        run = _start_run(repository, plan, RunKind.BACKUP, acting_user, triggered_by)
        sources = list(plan.sources.all())
        error = ""
        try:
            if not sources:
                raise BackupError(_("The plan has no data source."))
            with engine.repository_lock(repository, exclusive=False):
                client = engine.restic_for(repository)
                if interrupted:
                    # The dead run's restic left its lock: remove it (only stale ones go).
                    client.unlock()
                for position, source in enumerate(sources, start=1):
                    context = BackupContext(
                        restic=client, tags=source.tags, host=engine.host_name(), time=time,
                        progress=_progress_for(progress, source.name, position, len(sources)))
                    result = _back_up_source(run, source, context)
                    run.files_new += result.files_new
                    run.files_changed += result.files_changed
                    run.bytes_added += result.bytes_added
                    run.bytes_processed += result.bytes_processed
        except Conflict:
            _finish_run(run, error=_("The repository stayed busy; the backup did not start."))
            raise
        except Exception as failure:  # recorded in the run: nothing lost, nothing hidden
            logger.warning("backups: backup of %s failed: %s", plan, failure)
            error = runner.mask(describe(failure))
        failed = [result for result in run.results.all() if result.outcome != Outcome.SUCCEEDED]
        if failed and not error:
            error = "; ".join(f"{result.source_name}: {result.error}" for result in failed)
        with transaction.atomic():
            _finish_run(run, error=error)
            audit.record("backups.run", plan, acting_user=acting_user,
                         actor_label=_actor(acting_user, triggered_by),
                         after={"run": run.pk, "outcome": run.outcome,
                                "snapshots": {result.source_name: result.snapshot_id
                                              for result in run.results.all()},
                                "bytes_added": run.bytes_added})
    return run


# -- retention --------------------------------------------------------------------------------


@dataclass
class RetentionGroup:
    """One source's snapshots under the plan's policy."""

    #: The source's name, or the tags when the group is not one source (safety snapshots).
    label: str
    kept: list[retention.Decision] = field(default_factory=list)
    removed: list[retention.Decision] = field(default_factory=list)


@dataclass
class RetentionOutcome:
    """What a retention pass kept and removed (``dry_run``: would keep and remove)."""

    dry_run: bool
    groups: list[RetentionGroup] = field(default_factory=list)
    #: The run recorded for a real pass; None for a dry run.
    run: Run | None = None

    @property
    def kept_count(self) -> int:
        return sum(len(group.kept) for group in self.groups)

    @property
    def removed_count(self) -> int:
        return sum(len(group.removed) for group in self.groups)


def _group_label(tags: Sequence[str]) -> str:
    names = [tag.removeprefix("source:") for tag in tags if tag.startswith("source:")]
    label = names[0] if names else ",".join(tags)
    return label + (" (" + _("safety") + ")" if "safety" in tags else "")


def _decisions(groups: Iterable[ForgetGroup]) -> list[RetentionGroup]:
    """Turn restic's forget groups into groups of decisions (restic gives no reasons)."""
    result = []
    for group in groups:
        result.append(RetentionGroup(
            label=_group_label(group.tags),
            kept=[retention.Decision(snapshot, ("kept",)) for snapshot in group.keep],
            removed=[retention.Decision(snapshot, ()) for snapshot in group.remove]))
    return result


def preview_retention(plan: Plan) -> RetentionOutcome:
    """Return what the plan's policy keeps and removes now, without touching the repository.

    Read with ``restic snapshots --no-lock`` and restic's algorithm applied
    here, so it never waits for a running backup. Raise BackupError (or
    InvalidInput for a wrong password) when the repository cannot be read.
    """
    client = engine.restic_for(plan.repository)
    try:
        snapshots = client.snapshots(tags=plan.tags)
    except restic_adapter.ResticError as error:
        raise as_chaton_error(error, repository=plan.repository.name) from None
    outcome = RetentionOutcome(dry_run=True)
    policy = plan.keep_policy()
    for (_host, tags), members in sorted(retention.group_by_host_and_tags(snapshots).items()):
        decisions = retention.apply_policy(members, policy)
        outcome.groups.append(RetentionGroup(
            label=_group_label(tags), kept=[item for item in decisions if item.kept],
            removed=[item for item in decisions if not item.kept]))
    return outcome


def apply_retention(plan: Plan, *, dry_run: bool = False, acting_user: Account | None = None,
                    triggered_by: str | None = None) -> RetentionOutcome:
    """Apply the plan's retention with ``restic forget --prune``; return what was kept and removed.

    With ``dry_run`` nothing changes (see :func:`preview_retention`). A real
    pass is recorded as a run; the results whose snapshot was removed get
    ``forgotten_at``. A policy with every count at 0 keeps everything.
    Failures are recorded in the run. Raise Conflict when the plan is already
    running or the repository stays busy.
    """
    if dry_run:
        return preview_retention(plan)
    with engine.plan_lock(plan):
        mark_interrupted(plan)
        repository = plan.repository
        run = _start_run(repository, plan, RunKind.FORGET, acting_user, triggered_by)
        outcome = RetentionOutcome(dry_run=False, run=run)
        error = ""
        try:
            with engine.repository_lock(repository, exclusive=True):
                client = engine.restic_for(repository)
                groups = _unlocking(client, lambda: client.forget(
                    plan.keep_policy(), tags=plan.tags, prune=True))
        except Conflict:
            _finish_run(run, error=_("The repository stayed busy; retention did not run."))
            raise
        except Exception as failure:
            logger.warning("backups: retention of %s failed: %s", plan, failure)
            error = runner.mask(describe(failure))
        else:
            outcome.groups = _decisions(groups)
            removed = [decision.snapshot for group in outcome.groups
                       for decision in group.removed]
            run.details = {"policy": plan.keep_policy().arguments(),
                           "kept": [decision.snapshot.short_id for group in outcome.groups
                                    for decision in group.kept],
                           "removed": [snapshot.short_id for snapshot in removed]}
            _mark_forgotten(plan, removed)
        with transaction.atomic():
            _finish_run(run, error=error)
            audit.record("backups.retention", plan, acting_user=acting_user,
                         actor_label=_actor(acting_user, triggered_by),
                         after={"run": run.pk, "outcome": run.outcome,
                                "kept": outcome.kept_count, "removed": outcome.removed_count})
    return outcome


def _mark_forgotten(plan: Plan, removed: Iterable[restic_adapter.Snapshot]) -> None:
    """Record that the results holding these snapshots lost them to retention."""
    now = clock.now()
    results = SourceResult.objects.filter(run__plan=plan, forgotten_at=None).exclude(
        snapshot_id="")
    removed = list(removed)
    forgotten = [result.pk for result in results
                 if any(snapshot.matches(result.snapshot_id) for snapshot in removed)]
    SourceResult.objects.filter(pk__in=forgotten).update(forgotten_at=now)


# -- restore ----------------------------------------------------------------------------------


def good_result(source: Source, snapshot_id: str | None = None) -> SourceResult:
    """Return the successful backup of ``source`` holding ``snapshot_id`` (when None, its
    newest one that is not a safety snapshot) whose snapshot still exists.

    Raise InvalidInput for a malformed id, NotFound when there is none.
    """
    results = SourceResult.objects.filter(source=source, outcome=Outcome.SUCCEEDED,
                                          forgotten_at=None).exclude(snapshot_id="")
    if snapshot_id:
        snapshot_id = snapshot_id.strip()
        if len(snapshot_id) < 8 or not re.match(r"^[0-9a-f]+$", snapshot_id):
            raise InvalidInput(_("A snapshot id is at least 8 hexadecimal digits."),
                               field="snapshot")
        found = [result for result in results
                 if result.snapshot_id.startswith(snapshot_id)
                 or snapshot_id.startswith(result.snapshot_id)]
        if not found:
            raise NotFound(_("Source %(source)s has no snapshot %(snapshot)s.")
                           % {"source": source, "snapshot": snapshot_id}, field="snapshot")
        return found[0]
    # Not a safety snapshot: "the newest backup" is the newest the plan made.
    result = results.filter(safety=False).order_by("-started_at", "-id").first()
    if result is None:
        raise NotFound(_("Source %(source)s has no successful backup yet.") % {"source": source})
    return result


def _check_target(target: str) -> Path | str:
    """Return the restore target: a database URL as is, or an empty (or new) directory."""
    value = (target or "").strip()
    if value.startswith(("postgres://", "postgresql://")):
        return value
    if not value.startswith("/"):
        raise InvalidInput(_("The target is an absolute directory path."), field="target")
    path = Path(os.path.normpath(value))
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInput(_("The target %(path)s must be a new or empty directory.")
                           % {"path": path}, field="target")
    return path


def restore(source: Source, snapshot_id: str | None = None, *,
               acting_user: Account | None, target: str | None = None,
               in_place: bool = False, triggered_by: str | None = None) -> Run:
    """Restore one source's snapshot (its newest good one when ``snapshot_id`` is None).

    Either to ``target`` — an empty directory, or for a PostgreSQL source a
    ``postgresql://`` URL of an existing database — or ``in_place``: first a
    safety snapshot of the source as it is now (recorded in the run, so the
    restore can itself be undone), then the snapshot put back where it came
    from. The interfaces ask for confirmation before ``in_place``. Return the
    run; a failed restore is a failed run (the safety snapshot failing stops
    it before anything is overwritten). Raise InvalidInput for a bad target,
    or a source that refuses in-place restores (the reason is the message),
    NotFound for an unknown snapshot, Conflict when the plan is running.
    """
    if in_place == (target is not None):
        raise InvalidInput(_("Restore either to a target or in place."), field="target")
    checked_target = _check_target(target) if target is not None else None
    engine_source = engine.data_source(source)
    if in_place:
        refusal = engine_source.in_place_refusal()
        if refusal:
            raise InvalidInput(refusal, field="in_place")
    plan = source.plan
    with engine.plan_lock(plan):
        mark_interrupted(plan)
        result = good_result(source, snapshot_id)
        run = _start_run(plan.repository, plan, RunKind.RESTORE, acting_user, triggered_by)
        run.details = {"source": source.name, "snapshot": result.snapshot_id,
                       "target": str(checked_target) if checked_target else "in place"}
        error = ""
        try:
            with engine.repository_lock(plan.repository, exclusive=False):
                client = engine.restic_for(plan.repository)
                if in_place:
                    context = BackupContext(restic=client, tags=[*source.tags, "safety"],
                                            host=engine.host_name())
                    safety = _back_up_source(run, source, context, safety=True)
                    run.details["safety_snapshot"] = safety.snapshot_id
                    if safety.outcome != Outcome.SUCCEEDED:
                        raise BackupError(_("The safety snapshot failed, nothing was restored: "
                                            "%(error)s") % {"error": safety.error})
                    where = engine_source.restore_in_place(client, result.snapshot_id)
                else:
                    assert checked_target is not None
                    if isinstance(checked_target, Path):
                        checked_target.mkdir(parents=True, exist_ok=True, mode=0o700)
                    where = engine_source.restore_to(client, result.snapshot_id,
                                                     checked_target)  # type: ignore[arg-type]
                run.details["restored"] = where
        except Conflict:
            _finish_run(run, error=_("The repository stayed busy; nothing was restored."))
            raise
        except RestoreRefused as refusal:
            error = str(refusal)
        except Exception as failure:
            logger.warning("backups: restore of %s failed: %s", source, failure)
            error = runner.mask(describe(failure))
        with transaction.atomic():
            _finish_run(run, error=error)
            audit.record("backups.restore", source, acting_user=acting_user,
                         actor_label=_actor(acting_user, triggered_by),
                         after={"run": run.pk, "outcome": run.outcome, **run.details})
    return run


# -- drills -----------------------------------------------------------------------------------


@dataclass
class DrillReport:
    """A drill of a plan (or one source): one Drill per source, and the check run with them."""

    drills: list[Drill] = field(default_factory=list)
    check: Run | None = None

    @property
    def passed(self) -> bool:
        """Whether every source's restore matched and the repository check (when it ran,
        part of each drill's verdict) passed."""
        return bool(self.drills) and all(drill.passed for drill in self.drills) and (
            self.check is None or self.check.succeeded)


def _drill_source(plan: Plan, source: Source, client: restic_adapter.ResticClient | Any,
                  acting_user: Account | None, triggered_by: str | None) -> Drill:
    """Restore the source's newest good snapshot into scratch space and compare; record it."""
    started = clock.now()
    begun = time.monotonic()
    drill = Drill.objects.create(plan=plan, source=source, source_name=source.name,
                                 source_kind=source.kind, started_at=started, pid=os.getpid())
    try:
        result = good_result(source)
    except NotFound:
        drill.outcome = DrillOutcome.FAILED
        drill.findings = [evidence.item("no_backup", source=str(source))]
    else:
        drill.result = result
        drill.snapshot_id = result.snapshot_id
        try:
            with engine.scratch_directory() as scratch:
                verification = engine.data_source(source).drill(
                    client, result.snapshot_id, result.fingerprint, scratch)
        except Exception as error:  # the drill failed: that is its finding, in its row
            logger.info("backups: drill of %s failed: %s", source, runner.mask(str(error)))
            logger.debug("backups: drill of %s failed", source, exc_info=True)
            drill.outcome = DrillOutcome.FAILED
            drill.findings = [evidence.of_error(error)]
        else:
            drill.compared = verification.compared
            drill.expected = verification.expected
            drill.found = verification.found
            drill.outcome = (DrillOutcome.PASSED if verification.passed
                             else DrillOutcome.FAILED)
            drill.findings = (verification.differences[:200] if verification.differences
                              else [evidence.item("all_matched")])
    drill.duration_seconds = round(time.monotonic() - begun, 3)
    with transaction.atomic():
        drill.save()
        audit.record("backups.drill", source, acting_user=acting_user,
                     actor_label=_actor(acting_user, triggered_by),
                     after={"drill": drill.pk, "outcome": drill.outcome,
                            "snapshot": drill.snapshot_id})
    return drill


def run_drill(target: Plan | Source, *, acting_user: Account | None = None,
              check: bool = True, triggered_by: str | None = None) -> DrillReport:
    """Drill a restore of every source of a plan (or of one source), then check the repository.

    Each source's newest good snapshot is restored into a scratch place — a
    throwaway PostgreSQL or slapd, a directory — and compared with the
    fingerprint recorded at backup time; each gives a Drill row (the
    evidence), passed or failed. With ``check``, ``restic check`` reading the
    repository's ``check_read_data_subset`` runs after them and is recorded as
    a check run. Return the report. Raise Conflict when the plan is running.
    """
    plan = target if isinstance(target, Plan) else target.plan
    sources = list(plan.sources.all()) if isinstance(target, Plan) else [target]
    report = DrillReport()
    with engine.plan_lock(plan):
        mark_interrupted(plan)
        with engine.repository_lock(plan.repository, exclusive=False):
            client: Any = None
            try:
                client = engine.restic_for(plan.repository)
            except Exception as error:  # a password that no longer decrypts: every drill fails
                finding = evidence.of_error(error)
                for source in sources:
                    report.drills.append(Drill.objects.create(
                        plan=plan, source=source, source_name=source.name,
                        source_kind=source.kind, started_at=clock.now(), duration_seconds=0,
                        outcome=DrillOutcome.FAILED, findings=[finding]))
            else:
                for source in sources:
                    report.drills.append(_drill_source(plan, source, client, acting_user,
                                                       triggered_by))
        if check:
            report.check = check_repository(plan.repository, acting_user=acting_user,
                                            plan=plan, triggered_by=triggered_by)
            _one_verdict(report, acting_user, triggered_by)
    return report


def _one_verdict(report: DrillReport, acting_user: Account | None,
                 triggered_by: str | None) -> None:
    """Join the drill's repository check to each drill: a restore that matched from a
    repository whose check failed is a failed drill, the check's error its finding."""
    check = report.check
    assert check is not None
    with transaction.atomic():
        for drill in report.drills:
            drill.check_run = check
            fields = ["check_run"]
            if not check.succeeded:
                finding = evidence.item("check_failed", error=runner.mask(check.error)[:2000])
                drill.findings = [*(drill.findings if not drill.passed else []), finding]
                fields.append("findings")
                if drill.passed:
                    drill.outcome = DrillOutcome.FAILED
                    fields.append("outcome")
                    audit.record("backups.drill", drill.source or drill.plan,
                                 acting_user=acting_user,
                                 actor_label=_actor(acting_user, triggered_by),
                                 after={"drill": drill.pk, "outcome": drill.outcome,
                                        "snapshot": drill.snapshot_id, "check": check.pk})
            drill.save(update_fields=fields)
