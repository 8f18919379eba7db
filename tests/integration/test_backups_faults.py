"""Faults: a full disk, a backup killed half way, two runs of one plan at once.

Nothing is lost and every failure is visible: the failed run says why, the
repository stays consistent (``restic check``), and the next run succeeds.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.backups import actions, runs
from chaton.backups.models import DrillOutcome, Outcome, Repository

pytestmark = [pytest.mark.integration]


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    """Messages in English, whatever the collective's language: the tests read them."""
    from django.utils import translation

    with translation.override("en"):
        yield
ROOT = Path(__file__).resolve().parents[2]
#: Big enough that the backup is still running a few seconds after it started.
KILL_DATA_FILES = 6
KILL_FILE_BYTES = 64 * 1024 * 1024


@pytest.fixture
def small_disk(scratch_path: Path) -> Iterator[Path]:
    """Yield a 24 MiB tmpfs mounted on a fresh directory; unmounted after the test.

    A failure to mount (not root, no CAP_SYS_ADMIN) is a test failure saying
    so, never a skip.
    """
    mountpoint = scratch_path / "small-disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        pytest.fail("the full-disk test mounts a small tmpfs and must run as root (or with "
                    f"CAP_SYS_ADMIN): mount said {mounted.stderr.strip()!r}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_full_disk_fails_the_run_visibly_and_loses_nothing(small_disk: Path,
                                                             scratch_path: Path) -> None:
    repository = actions.do_create_repository(
        "small", kind="local", location=str(small_disk / "repository"),
        password="correct horse battery staple", acting_user=None)
    actions.do_init_repository(repository, acting_user=None)
    files = scratch_path / "files"
    files.mkdir()
    (files / "small.txt").write_text("fits on the disk\n")
    plan = actions.do_create_plan("tight", repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    first = runs.run_backup(plan)
    assert first.outcome == Outcome.SUCCEEDED, first.error

    (files / "big.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    full = runs.run_backup(plan)
    assert full.outcome == Outcome.FAILED
    # restic 0.14 either exits on the full disk or, now and then, deadlocks after it: then
    # the run is stopped once restic has made no progress (silent, or repeating the same
    # figures) past backups.stall_seconds.
    assert ("No space left on the repository's disk" in full.error
            or "stopped answering" in full.error), full.error

    (files / "big.bin").unlink()
    again = runs.run_backup(plan)
    assert again.outcome == Outcome.SUCCEEDED, again.error
    # The earlier snapshot still restores and matches; the repository is consistent.
    report = runs.run_drill(plan)
    assert [drill.outcome for drill in report.drills] == [DrillOutcome.PASSED]
    assert report.check is not None and report.check.outcome == Outcome.SUCCEEDED, \
        report.check.error


SETUP = """
import django, sys
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from chaton.backups import actions, runs
repository = actions.do_create_repository(
    "shared", kind="local", location=sys.argv[1], password="correct horse battery staple",
    acting_user=None)
actions.do_init_repository(repository, acting_user=None)
plan = actions.do_create_plan("big", repository, acting_user=None)
actions.do_add_source(plan, "paths", "files", {"paths": [sys.argv[2]]}, acting_user=None)
"""


def _restic_children(cache_directory: Path) -> list[int]:
    """Return the pids of the restic processes using ``cache_directory`` (ours only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arguments and arguments[0].endswith(b"restic") and str(cache_directory).encode() \
                in arguments:
            found.append(int(entry.name))
    return found


def test_two_runs_at_once_then_a_kill_half_way_then_a_good_run(scratch_path: Path) -> None:
    data = scratch_path / "data"
    data.mkdir()
    (data / "chaton.toml").touch()
    files = scratch_path / "files"
    files.mkdir()
    for index in range(KILL_DATA_FILES):
        (files / f"part-{index}.bin").write_bytes(os.urandom(KILL_FILE_BYTES))
    repository = scratch_path / "repository"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "chaton.project.settings",
                   "CHATON_DATA_DIR": str(data), "CHATON_CONFIG": str(data / "chaton.toml"),
                   "CHATON_LANGUAGE": "en"}
    environment.pop("CHATON_DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", SETUP, str(repository), str(files)],
                   env=environment, cwd=ROOT, check=True, timeout=120)
    job = [sys.executable, "-m", "chaton.backups"]
    lock_file = data / "backups" / "locks" / "plan-1.lock"

    first = subprocess.Popen([*job, "backup", "big"], env=environment, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (lock_file.exists() and lock_file.read_text().strip()):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the first run never took its lock"
            time.sleep(0.05)

        # The second run of the same plan refuses at once, clearly.
        second = subprocess.run([*job, "backup", "big"], env=environment, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert f"is already running (process {first.pid})" in second.stderr

        # Kill the first one once restic has written part of the data.
        while len([path for path in (repository / "data").rglob("*") if path.is_file()]) < 2:
            assert first.poll() is None, "the backup finished before it could be killed"
            assert time.monotonic() < deadline, "restic never wrote a pack"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
        if first.stderr:
            first.stderr.close()

    # restic died with its parent (PR_SET_PDEATHSIG): no orphan holds the repository.
    cache = data / "backups" / "cache"
    deadline = time.monotonic() + 10
    while _restic_children(cache) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _restic_children(cache) == []

    third = subprocess.run([*job, "backup", "big"], env=environment, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout + third.stderr
    check = subprocess.run([*job, "check", "shared"], env=environment, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr

    with sqlite3.connect(data / "chaton.sqlite3") as database:
        runs = database.execute("SELECT kind, outcome, error FROM backups_run "
                                "ORDER BY id").fetchall()
    assert runs[0][:2] == ("backup", "failed") and "Interrupted" in runs[0][2]
    assert runs[1][:2] == ("backup", "succeeded")
    assert ("forget", "succeeded", "") in runs  # retention after the good backup
    assert runs[-1][:2] == ("check", "succeeded")


@pytest.mark.django_db(transaction=True)
def test_a_plan_locked_by_another_process_is_refused(backup_repository: Repository) -> None:
    """The refusal in-process too: the lock is the kernel's, not a row (no second process)."""
    from chaton.backups import engine
    from chaton.core.errors import Conflict

    plan = actions.do_create_plan("busy", backup_repository, acting_user=None)
    with engine.plan_lock(plan), pytest.raises(Conflict, match="already running"):
        runs.run_backup(plan)
    assert not plan.runs.exists()
