"""``chaton backup``: repositories, plans, sources, a run with its progress bar, restores,
drills, and how it fails; ``chaton init`` creating the default plan.

The commands run in-process (CliRunner). One test drives a real restic on a
repository initialised once for the module and copied (restic init costs
seconds); the others use the in-memory fake restic.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from chaton.adapters.restic import use_restic
from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions, engine, runs
from chaton.backups.__main__ import main as child_main
from chaton.backups.models import Drill, Outcome, Plan, Repository, Run, RunKind
from chaton.cli import runtime
from chaton.cli.app import app
from chaton.core import clock

PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english_and_clock_back(english: None):
    """Run every command in English; put the clock back after."""
    yield
    clock.travel(dt.timedelta(0))


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*arguments: str, input: str | None = None):
        return runner.invoke(app, list(arguments), input=input)

    return invoke


@pytest.fixture
def fake_restic() -> Iterator[FakeRestic]:
    """One in-memory repository behind every repository Chaton opens."""
    fake = FakeRestic(password=PASSWORD, repository_password=PASSWORD)

    def client(repository: Repository) -> FakeRestic:
        fake.password = repository.password()
        return fake

    with use_restic(client):
        yield fake


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    (folder / "minutes").mkdir(parents=True)
    (folder / "minutes" / "spring.txt").write_text("the assembly adopted the budget\n")
    (folder / "logo.bin").write_bytes(bytes(range(256)) * 64)
    return folder


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def plan(fake_restic, files) -> Plan:
    repository = actions.do_create_repository("offsite", kind="local",
                                              location="/srv/backups/repo", password=PASSWORD,
                                              acting_user=None)
    plan = actions.do_create_plan("nightly", repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    return plan


def one_error_line(result) -> str:
    """Assert the command failed the documented way and return its only stderr line."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chaton: error: ")
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def template_repository(tmp_path_factory) -> Path:
    """A real restic repository, initialised once for the module."""
    location = tmp_path_factory.mktemp("restic") / "template"
    subprocess.run(["restic", "init", "--repo", str(location)], check=True,
                   env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
                   capture_output=True, timeout=60)
    return location


# -- the whole loop on a real restic -------------------------------------------------------


def test_a_real_repository_plan_run_restore_and_drill(cli, directory, files, password_file,
                                                      template_repository, tmp_path):
    location = tmp_path / "repository"
    shutil.copytree(template_repository, location)
    added = cli("backup", "repo", "add", "offsite", "--kind", "local", "--location",
                str(location), "--password-file", str(password_file), "--init")
    assert added.exit_code == 0, added.output
    assert "initialised" in added.stdout  # the existing repository was adopted
    assert cli("backup", "plan", "add", "nightly", "--repository", "offsite",
               "--keep-daily", "3").exit_code == 0
    source = cli("backup", "source", "add", "nightly", "files", "--kind", "paths",
                 "--param", f"paths={files}")
    assert source.exit_code == 0, source.output

    result = cli("backup", "run", "nightly")
    assert result.exit_code == 0, result.output
    run = Run.objects.get(kind=RunKind.BACKUP)
    snapshot = run.results.get().snapshot_id
    assert run.outcome == Outcome.SUCCEEDED and run.triggered_by == "cli"
    assert snapshot[:8] in result.stdout and "Backup of nightly done" in result.stdout

    listed = cli("backup", "runs", "nightly")
    assert snapshot[:8] in listed.stdout

    target = tmp_path / "restored"
    restored = cli("backup", "restore", "nightly", "files", "--to", str(target))
    assert restored.exit_code == 0, restored.output
    copies = list(target.rglob("spring.txt"))
    assert copies and copies[0].read_text() == "the assembly adopted the budget\n"
    assert next(target.rglob("logo.bin")).read_bytes() == bytes(range(256)) * 64

    drilled = cli("backup", "drill", "nightly", "--no-check")
    assert drilled.exit_code == 0, drilled.output
    assert "The drill passed." in drilled.stdout
    summary = cli("backup", "drills")
    assert "restores tested: 1, passed" in summary.stdout


# -- runs, progress, restores, drills on the fake restic -----------------------------------


def test_run_shows_a_progress_bar_per_source(cli, plan, files, monkeypatch):
    actions.do_add_source(plan, "paths", "more", {"paths": [str(files / "minutes")]},
                          acting_user=None)
    # A terminal: Rich draws the bars (on a pipe it draws nothing).
    monkeypatch.setattr(runtime, "_console", Console(force_terminal=True, width=100,
                                                      highlight=False, soft_wrap=True))
    result = cli("backup", "run", "nightly")
    assert result.exit_code == 0, result.output
    assert "files (1/2)" in result.stdout and "more (2/2)" in result.stdout
    assert "━" in result.stdout  # the bar itself
    assert Run.objects.get().results.count() == 2


def test_a_failed_run_exits_1_and_says_why(cli, plan, fake_restic):
    fake_restic.repository_password = "another password entirely"
    result = cli("backup", "run", "nightly")
    assert result.exit_code == 1, result.output
    assert "Wrong repository password" in result.stdout
    assert Run.objects.get().outcome == Outcome.FAILED


def test_in_place_restore_asks_and_takes_a_safety_snapshot_first(cli, plan, files):
    runs.run_backup(plan)
    (files / "minutes" / "spring.txt").write_text("overwritten by mistake\n")

    refused = cli("backup", "restore", "nightly", "files", "--in-place", input="n\n")
    assert refused.exit_code == 1
    assert "safety snapshot" in refused.stdout and "Nothing was restored." in refused.stdout
    assert (files / "minutes" / "spring.txt").read_text() == "overwritten by mistake\n"
    assert not Run.objects.filter(kind=RunKind.RESTORE).exists()

    done = cli("backup", "restore", "nightly", "files", "--in-place", "--yes")
    assert done.exit_code == 0, done.output
    assert (files / "minutes" / "spring.txt").read_text() == \
        "the assembly adopted the budget\n"
    restore = Run.objects.get(kind=RunKind.RESTORE)
    safety = restore.details["safety_snapshot"]
    assert f"Safety snapshot: {safety[:8]}" in done.stdout
    assert restore.results.get(safety=True).snapshot_id == safety


def test_retention_shows_kept_with_reasons_then_applies(cli, plan):
    start = clock.now() - dt.timedelta(days=2)
    for hours in (0, 1, 24, 48):
        runs.run_backup(plan, time=start + dt.timedelta(hours=hours))
    preview = cli("backup", "retention", "nightly")
    assert preview.exit_code == 0, preview.output
    assert "kept: daily" in preview.stdout and "to remove" in preview.stdout
    assert "3 kept, 1 to remove" in preview.stdout
    assert not Run.objects.filter(kind=RunKind.FORGET).exists()
    applied = cli("backup", "retention", "nightly", "--apply")
    assert applied.exit_code == 0, applied.output
    assert "Retention applied" in applied.stdout
    assert Run.objects.get(kind=RunKind.FORGET).outcome == Outcome.SUCCEEDED


def test_drill_failure_is_one_line_on_stderr_exit_2_and_drills_sum_up(cli, plan, caplog,
                                                                     fake_restic):
    failed = cli("backup", "drill", "nightly")  # nothing backed up yet
    line = one_error_line(failed)
    assert "The drill of nightly failed: files: " in line and "no successful backup" in line
    # Nor a traceback in the log the command writes to stderr.
    assert not [record for record in caplog.records
                if record.exc_info and record.levelno >= logging.INFO]
    runs.run_backup(plan)
    assert cli("backup", "drill", "nightly").exit_code == 0
    # A restore that raises (the repository's key changed behind Chaton's back).
    fake_restic.repository_password = "another password entirely"
    caplog.clear()
    line = one_error_line(cli("backup", "drill", "nightly", "--no-check"))
    assert "files: Wrong repository password" in line
    assert not [record for record in caplog.records
                if record.exc_info and record.levelno >= logging.INFO]
    listed = cli("backup", "drills", "--since", "2000-01-01", "--plan", "nightly")
    assert "restores tested: 3, 2 failed" in listed.stdout
    assert Drill.objects.count() == 3


def test_lists_and_settings(cli, plan):
    runs.run_backup(plan)
    plans = cli("backup", "plan", "list")
    assert plans.exit_code == 0 and "nightly" in plans.stdout and "ok" in plans.stdout
    shown = cli("backup", "plan", "show", "nightly")
    assert shown.exit_code == 0 and "--keep-daily 7" in shown.stdout
    assert cli("backup", "plan", "set", "nightly", "--keep-daily", "9", "--disable"
               ).exit_code == 0
    plan.refresh_from_db()
    assert plan.keep_daily == 9 and not plan.enabled
    repositories = cli("backup", "repo", "list")
    assert "offsite" in repositories.stdout
    checked = cli("backup", "repo", "check", "offsite", "--read-data-subset", "1/10")
    assert checked.exit_code == 0 and "no errors" in checked.stdout
    source = cli("backup", "source", "add", "nightly", "shop", "--kind", "postgres",
                 "--param", "database=shop", "--param", "port=5433")
    assert source.exit_code == 0, source.output
    assert plan.sources.get(name="shop").params["port"] == 5433
    assert cli("backup", "source", "remove", "nightly", "shop").exit_code == 0
    refused = cli("backup", "plan", "delete", "nightly", input="n\n")
    assert refused.exit_code == 1 and Plan.objects.exists()
    assert cli("backup", "plan", "delete", "nightly", "--yes").exit_code == 0
    assert not Plan.objects.exists()


# -- errors: one line on stderr, exit 2 ----------------------------------------------------


@pytest.mark.parametrize("arguments, expected", [
    (["backup", "run", "nowhere"], "No backup plan is named nowhere"),
    (["backup", "source", "add", "nightly", "x", "--kind", "tape"], "Unknown kind"),
    (["backup", "source", "add", "nightly", "x", "--kind", "paths", "--param", "paths"],
     "KEY=VALUE"),
    (["backup", "source", "add", "nightly", "x", "--kind", "paths", "--param",
      "paths=relative"], "not an absolute path"),
    (["backup", "restore", "nightly", "files"], "--to DIR or --in-place"),
    (["backup", "restore", "nightly", "files", "--to", "/tmp/x", "--in-place"],
     "--to DIR or --in-place"),
    (["backup", "restore", "nightly", "files", "--to", "/tmp/never"], "no successful backup"),
    (["backup", "restore", "nightly", "files", "--to", "/tmp/x", "--snapshot", "xyz"],
     "hexadecimal"),
    (["backup", "plan", "add", "fast", "--repository", "offsite", "--every", "1"],
     "whole number"),
    (["backup", "plan", "add", "other", "--repository", "nowhere"], "No repository"),
    (["backup", "runs", "nightly", "--kind", "nap"], "Unknown kind of run"),
    (["backup", "drills", "--since", "last week"], "is not a date"),
])
def test_errors_are_one_stderr_line_and_exit_2(cli, plan, arguments, expected):
    line = one_error_line(cli(*arguments))
    assert expected in line, line


def test_an_in_place_restore_chaton_refuses_is_said_before_asking(cli, plan):
    source = actions.do_add_source(plan, "chaton", "itself", {}, acting_user=None)
    runs.run_backup(plan)
    line = one_error_line(cli("backup", "restore", "nightly", source.name, "--in-place"))
    assert "stop Chaton" in line
    assert not Run.objects.filter(kind=RunKind.RESTORE).exists()


def test_a_running_plan_refuses_a_second_run_with_exit_2(cli, plan):
    with engine.plan_lock(plan):
        line = one_error_line(cli("backup", "run", "nightly"))
    assert "already running" in line
    assert not Run.objects.exists()


def test_a_wrong_password_at_init_is_exit_2(cli, plan, fake_restic, password_file):
    fake_restic.repository_password = "the one it was made with"
    line = one_error_line(cli("backup", "repo", "init", "offsite"))
    assert "does not open" in line
    result = cli("backup", "repo", "add", "short", "--location", "/srv/short",
                 "--password-file", str(password_file.with_name("missing")))
    assert "Cannot read the password file" in one_error_line(result)


# -- the worker's child entry and chaton init --------------------------------------------


def test_the_worker_child_entry_still_runs(plan):
    assert child_main(["backup", "nightly"]) == 0
    assert Run.objects.filter(kind=RunKind.BACKUP, triggered_by="worker").exists()
    assert child_main(["backup", "nowhere"]) == 2
    assert child_main(["nap", "nightly"]) == 2


def test_init_creates_the_default_plan_once(cli, directory, fake_restic, monkeypatch,
                                            tmp_path, settings):
    monkeypatch.setattr(settings.CHATON.backups, "default_repository",
                        str(tmp_path / "default"))
    fake_restic.initialised = False
    first = cli("init", "--admin-uid", "admin", "--no-input")
    assert first.exit_code == 0, first.output
    assert "Backups: plan chaton" in first.stdout
    plan = Plan.objects.get()
    assert plan.repository.initialised_at is not None
    assert sorted(plan.sources.values_list("kind", flat=True)) == ["chaton", "ldap",
                                                                   "secrets_key"]
    # Said once, with the plan: where the recovery kit is, and that it belongs off the server.
    assert "chaton backup recovery-kit" in first.stdout
    assert "keep it off this server" in first.stdout
    second = cli("init")
    assert second.exit_code == 0 and "Backups:" not in second.stdout
    assert "recovery-kit" not in second.stdout
    assert Plan.objects.count() == 1


def test_init_goes_on_when_the_default_repository_cannot_be_opened(cli, directory,
                                                                   fake_restic, monkeypatch,
                                                                   tmp_path, settings):
    monkeypatch.setattr(settings.CHATON.backups, "default_repository",
                        str(tmp_path / "default"))
    fake_restic.repository_password = "someone else's repository"
    result = cli("init", "--admin-uid", "admin", "--no-input")
    assert result.exit_code == 0, result.output
    assert "default plan could not be created" in result.stdout
    assert "Chaton is ready." in result.stdout
    assert not Plan.objects.exists()
