"""The backups actions on a fake restic: input checks, secrets, runs, locks, stale flag, jobs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions, engine, jobs, queries, runs
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
from chaton.core import clock
from chaton.core.errors import Conflict, InvalidInput
from chaton.core.models import AuditLog
from chaton.core.worker import Schedule

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def repository(fake_restic: FakeRestic) -> Repository:
    return actions.do_create_repository("offsite", kind="local", location="/srv/backups/repo",
                                        password=PASSWORD, acting_user=None)


@pytest.fixture
def plan(repository: Repository, tmp_path: Path) -> Plan:
    files = tmp_path / "files"
    files.mkdir()
    (files / "notes.txt").write_text("minutes of the general assembly")
    plan = actions.do_create_plan("nightly", repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    return plan


@pytest.fixture(autouse=True)
def clock_back() -> object:
    yield
    clock.travel(dt.timedelta(0))


@pytest.mark.parametrize("values, field", [
    ({"name": "Bad Name"}, "name"),
    ({"kind": "tape"}, "kind"),
    ({"location": "relative/path"}, "location"),
    ({"kind": "sftp", "location": "/not/sftp"}, "location"),
    ({"kind": "s3", "location": "s3:nobucket"}, "location"),
    ({"password": "short"}, "password"),
    ({"environment": {"RESTIC_PASSWORD": "x"}}, "environment"),
    ({"environment": {"lower": "x"}}, "environment"),
    ({"check_read_data_subset": "lots"}, "check_read_data_subset"),
    ({"check_interval_days": -1}, "check_interval_days"),
])
def test_repository_input_is_checked(values: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"name": "repo", "kind": "local", "location": "/srv/r",
                                    "password": PASSWORD, **values}
    name = arguments.pop("name")
    with pytest.raises(InvalidInput) as refused:
        actions.do_create_repository(name, acting_user=None, **arguments)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert not Repository.objects.exists()


def test_secrets_are_stored_encrypted_and_never_audited(fake_restic: FakeRestic) -> None:
    repository = actions.do_create_repository(
        "s3", kind="s3", location="s3:https://objects.example.org/chaton",
        password=PASSWORD, environment={"AWS_SECRET_ACCESS_KEY": "aws-secret-value"},
        acting_user=None)
    plan = actions.do_create_plan("shop", repository, acting_user=None)
    source = actions.do_add_source(plan, "postgres", "shop",
                                   {"database": "shop", "password": "pg-secret-value"},
                                   acting_user=None)
    stored = json.dumps([list(Repository.objects.values().get().values()),
                         Source.objects.values().get()["params"]], default=str)
    audited = json.dumps(list(AuditLog.objects.values("before", "after")))
    for secret in (PASSWORD, "aws-secret-value", "pg-secret-value"):
        assert secret not in stored and secret not in audited
    assert repository.password() == PASSWORD
    assert repository.environment() == {"AWS_SECRET_ACCESS_KEY": "aws-secret-value"}
    assert engine.data_source(source).params["password"] == "pg-secret-value"
    assert "AWS_SECRET_ACCESS_KEY" in audited


def test_names_are_unique_and_plan_settings_checked(repository: Repository) -> None:
    actions.do_create_plan("weekly", repository, acting_user=None)
    with pytest.raises(Conflict):
        actions.do_create_plan("weekly", repository, acting_user=None)
    with pytest.raises(InvalidInput) as refused:
        actions.do_create_plan("fast", repository, acting_user=None, interval_minutes=1)
    assert refused.value.field == "interval_minutes"
    plan = Plan.objects.get(name="weekly")
    with pytest.raises(InvalidInput, match="Unknown plan setting"):
        actions.do_update_plan(plan, acting_user=None, name="renamed")
    actions.do_update_plan(plan, acting_user=None, keep_daily=14, enabled=False)
    plan.refresh_from_db()
    assert plan.keep_daily == 14 and not plan.enabled
    with pytest.raises(Conflict):
        actions.do_create_repository("other", kind="local", location="/srv/backups/repo",
                                     password=PASSWORD, acting_user=None)


def test_a_backup_records_each_source_and_reports_progress(plan: Plan,
                                                           fake_restic: FakeRestic) -> None:
    seen = []
    run = runs.run_backup(plan, progress=seen.append)
    assert run.outcome == Outcome.SUCCEEDED and run.kind == RunKind.BACKUP
    [result] = run.results.all()
    assert result.snapshot_id == fake_restic.listed[0].short_id
    assert result.fingerprint["files"] == 1
    assert run.bytes_processed == len("minutes of the general assembly")
    assert seen and seen[0].source == "files" and seen[0].count == 1
    assert fake_restic.listed[0].tags == ("chaton", "plan:nightly", "source:files")
    assert AuditLog.objects.filter(action="backups.run").count() == 1


def test_a_failing_source_fails_the_run_but_not_the_others(plan: Plan, tmp_path: Path) -> None:
    actions.do_add_source(plan, "paths", "gone", {"paths": [str(tmp_path / "missing")]},
                          acting_user=None)
    run = runs.run_backup(plan)
    assert run.outcome == Outcome.FAILED
    outcomes = {result.source_name: result.outcome for result in run.results.all()}
    assert outcomes == {"files": Outcome.SUCCEEDED, "gone": Outcome.FAILED}
    assert "gone:" in run.error and "No such directory" in run.error


def test_a_wrong_password_is_a_failed_run_with_the_reason(plan: Plan,
                                                          fake_restic: FakeRestic) -> None:
    fake_restic.repository_password = "another password"
    run = runs.run_backup(plan)
    assert run.outcome == Outcome.FAILED
    assert "Wrong repository password" in run.error


def test_a_plan_with_no_source_fails_visibly(repository: Repository) -> None:
    plan = actions.do_create_plan("empty", repository, acting_user=None)
    run = runs.run_backup(plan)
    assert run.outcome == Outcome.FAILED and "no data source" in run.error


def test_a_second_run_of_a_plan_is_refused_while_its_lock_is_held(plan: Plan) -> None:
    with engine.plan_lock(plan):
        assert queries.plan_is_running(plan)
        with pytest.raises(Conflict, match="already running"):
            runs.run_backup(plan)
        with pytest.raises(Conflict):
            actions.do_delete_plan(plan, acting_user=None)
    assert not queries.plan_is_running(plan)
    assert runs.run_backup(plan).outcome == Outcome.SUCCEEDED


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(plan: Plan) -> None:
    dead = Run.objects.create(repository=plan.repository, plan=plan, kind=RunKind.BACKUP,
                              started_at=clock.now(), pid=999_999)
    SourceResult.objects.create(run=dead, source_name="files", source_kind="paths",
                                started_at=clock.now())
    run = runs.run_backup(plan)
    dead.refresh_from_db()
    assert dead.outcome == Outcome.FAILED and "Interrupted" in dead.error
    assert run.outcome == Outcome.SUCCEEDED
    assert not SourceResult.objects.filter(outcome=Outcome.RUNNING).exists()


def test_the_stale_flag_follows_the_clock(plan: Plan) -> None:
    [status] = queries.plan_statuses()
    assert not status.stale  # a new plan has its threshold to run once
    clock.travel(dt.timedelta(hours=37))
    assert queries.plan_status(plan).stale
    assert [item.plan for item in queries.stale_plans()] == [plan]
    runs.run_backup(plan)
    status = queries.plan_status(plan)
    assert not status.stale and status.last_good_backup is not None
    clock.travel(dt.timedelta(hours=37 + 35))
    assert not queries.plan_status(plan).stale
    clock.travel(dt.timedelta(hours=37 + 37))
    assert queries.plan_status(plan).stale


def test_restore_and_drill_through_the_actions(plan: Plan, tmp_path: Path) -> None:
    source = plan.sources.get()
    with pytest.raises(InvalidInput, match="either"):
        runs.restore(source, acting_user=None)
    first = runs.run_backup(plan).results.get()
    report = runs.run_drill(plan)
    assert report.passed and report.check is not None
    [drill] = report.drills
    assert drill.result == first and drill.check_run == report.check
    run = runs.restore(source, acting_user=None, target=str(tmp_path / "out"))
    assert run.outcome == Outcome.SUCCEEDED and run.kind == RunKind.RESTORE
    with pytest.raises(InvalidInput):
        runs.restore(source, "zz", acting_user=None, target=str(tmp_path / "x"))
    summary = queries.drill_summary(since=clock.now() - dt.timedelta(days=1))
    assert (summary.tested, summary.passed, summary.failed) == (1, 1, 0)
    assert str(summary) == "restores tested: 1, passed"
    Drill.objects.create(plan=plan, source_name="files", source_kind="paths",
                         started_at=clock.now(), outcome=DrillOutcome.FAILED)
    assert str(queries.drill_summary()) == "restores tested: 2, 1 failed"


def test_a_source_without_backup_fails_its_drill(plan: Plan) -> None:
    report = runs.run_drill(plan, check=False)
    [drill] = report.drills
    assert drill.outcome == DrillOutcome.FAILED and "no successful backup" in drill.findings_text


def test_the_worker_starts_due_backups_as_children_and_records_a_failed_start(
        plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []

    class Child:
        pid = 4242

        def poll(self) -> int:
            return 0

    def starter(command: list[str], log_path: str) -> Child:
        started.append(command)
        return Child()

    monkeypatch.setattr(jobs, "starter", starter)
    due = jobs.due_jobs(Schedule())
    assert [name for name, _job in due] == ["backups.backup:nightly"]
    result = due[0][1]()
    assert result.ok and started[0][-3:] == ["chaton.backups", "backup", "nightly"]
    assert jobs.due_jobs(Schedule(last_run={"backups.scan": 10**12})) == []  # not yet

    def broken(command: list[str], log_path: str) -> Child:
        raise OSError("no such interpreter")

    monkeypatch.setattr(jobs, "starter", broken)
    [(_name, job)] = jobs.due_jobs(Schedule())
    assert not job().ok
    failed = Run.objects.get(plan=plan, outcome=Outcome.FAILED)
    assert "no such interpreter" in failed.error

    # A failed backup is retried after retry_minutes, a good one after the interval.
    now = clock.now()
    assert jobs.due_action(plan.pk, now) is None
    assert jobs.due_action(plan.pk, now + dt.timedelta(minutes=61)) == "backup"
    runs.run_backup(plan)
    assert jobs.due_action(plan.pk, now + dt.timedelta(minutes=61)) == "drill"
    runs.run_drill(plan, check=False)
    assert jobs.due_action(plan.pk, now + dt.timedelta(hours=23)) is None
    assert jobs.due_action(plan.pk, now + dt.timedelta(hours=25)) == "backup"


def test_the_default_plan_backs_up_chaton_its_directory_and_its_key(fake_restic: FakeRestic
                                                                    ) -> None:
    fake_restic.initialised = False
    plan = actions.do_create_default_plan(acting_user=None)
    assert plan.repository.initialised_at is not None and "init" in fake_restic.calls
    assert plan.repository.location.endswith("backups/repository")
    assert sorted(plan.sources.values_list("kind", flat=True)) == ["chaton", "ldap",
                                                                   "secrets_key"]
    assert actions.do_create_default_plan(acting_user=None) == plan


def test_the_demo_creates_the_default_plan_once(fake_restic: FakeRestic) -> None:
    from chaton.backups.demo import load_demo

    fake_restic.initialised = False
    first = load_demo(back_up=False)
    assert first.changed and first.run is None
    assert Plan.objects.filter(name="chaton").exists()
    assert not load_demo().changed
