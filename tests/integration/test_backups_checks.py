"""Rotating checks on a real restic repository with one damaged pack.

A random 5 % check can miss a damaged pack again and again; the rotating
check (``--read-data-subset n/t``) reads every pack once per cycle, so it
finds the damage within one cycle, reads that part again at each check
until the pack is repaired, and the repository stays red until then.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.backups import actions, queries, runs
from chaton.backups.models import Outcome, Repository

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    from django.utils import translation

    with translation.override("en"):
        yield


def health(repository: Repository) -> queries.RepositoryHealth:
    return queries.repository_health(queries.repositories().get(pk=repository.pk))


def test_a_rotating_check_finds_a_damaged_pack_within_one_cycle_and_stays_red(
        backup_repository: Repository, scratch_path: Path) -> None:
    files = scratch_path / "files"
    files.mkdir()
    # Four checks read everything: 25 % each.
    actions.do_update_repository(backup_repository, acting_user=None,
                                 check_read_data_subset="25%")
    plan = actions.do_create_plan("rotating", backup_repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    # Several backups: several packs, spread over the four parts.
    for index in range(6):
        (files / f"data-{index}.bin").write_bytes(os.urandom(300_000))
        assert runs.run_backup(plan).outcome == Outcome.SUCCEEDED
    packs = [path for path in (Path(backup_repository.location) / "data").rglob("*")
             if path.is_file()]
    assert len(packs) >= 6
    damaged = max(packs, key=lambda path: path.stat().st_size)
    original = damaged.read_bytes()
    damaged.chmod(0o600)
    with damaged.open("r+b") as pack:
        pack.seek(len(original) // 2)
        pack.write(b"\xde\xad\xbe\xef" * 4)

    subsets = []
    for _ in range(4):
        run = runs.check_repository(backup_repository, acting_user=None)
        subsets.append(run.details["read_data_subset"])
        if run.outcome == Outcome.FAILED:
            break
    assert run.outcome == Outcome.FAILED, f"one cycle ({subsets}) missed the damaged pack"
    assert subsets == [f"{number}/4" for number in range(1, len(subsets) + 1)]
    assert "errors" in run.error
    failed_part = subsets[-1]
    assert health(backup_repository).state == "check_failed"

    # Still damaged: the next check reads the same part, and the repository stays red.
    again = runs.check_repository(backup_repository, acting_user=None)
    assert again.details["read_data_subset"] == failed_part
    assert again.outcome == Outcome.FAILED
    assert health(backup_repository).state == "check_failed"
    backup_repository.refresh_from_db()
    assert backup_repository.last_full_read_at is None

    # Repaired (the pack put back as it was): the part passes, green again, and the cycle
    # goes on to its end, a full read.
    damaged.write_bytes(original)
    repaired = runs.check_repository(backup_repository, acting_user=None)
    assert repaired.details["read_data_subset"] == failed_part
    assert repaired.outcome == Outcome.SUCCEEDED, repaired.error
    assert health(backup_repository).ok
    while True:
        backup_repository.refresh_from_db()
        if backup_repository.check_cycle_position == 0:
            break
        run = runs.check_repository(backup_repository, acting_user=None)
        assert run.outcome == Outcome.SUCCEEDED, run.error
    assert backup_repository.last_full_read_at is not None
