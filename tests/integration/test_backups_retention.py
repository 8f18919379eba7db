"""Retention keeps exactly what the policy says, on a made-up calendar (restic ``--time``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chaton.backups import actions, engine, runs
from chaton.backups.models import Outcome, Repository, SourceResult

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    """Messages in English, whatever the collective's language: the tests read them."""
    from django.utils import translation

    with translation.override("en"):
        yield


PARIS = ZoneInfo("Europe/Paris")


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=PARIS)


#: (when, kept by keep-daily 3, weekly 2, monthly 3, yearly 2): worked out by hand, newest first.
CALENDAR = [
    (at("2024-02-14"), True),       # daily (14th), weekly (week 7), monthly (Feb), yearly (2024)
    (at("2024-02-13", 18), True),   # daily (13th)
    (at("2024-02-13", 9), False),   # the 13th again, and nothing else new
    (at("2024-02-12"), True),       # daily (12th): the three days are used up
    (at("2024-02-11"), True),       # weekly (week 6): both weeks used up
    (at("2024-02-05"), False),      # week 6 again, February again
    (at("2024-01-31"), True),       # monthly (January)
    (at("2024-01-10"), False),      # January again
    (at("2023-12-28"), True),       # monthly (December: the third) and yearly (2023)
    (at("2023-11-20"), False),      # every rule used up
    (at("2023-06-15"), False),
]


def test_retention_keeps_exactly_the_policy(backup_repository: Repository,
                                            scratch_path: Path) -> None:
    files = scratch_path / "files"
    files.mkdir()
    plan = actions.do_create_plan("calendar", backup_repository, acting_user=None,
                                  keep_daily=3, keep_weekly=2, keep_monthly=3, keep_yearly=2)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    snapshots: dict[dt.datetime, str] = {}
    for when, _kept in sorted(CALENDAR):
        (files / "day.txt").write_text(when.isoformat())
        run = runs.run_backup(plan, time=when)
        assert run.outcome == Outcome.SUCCEEDED, run.error
        snapshots[when] = run.results.get().snapshot_id
    expected_kept = {snapshots[when] for when, kept in CALENDAR if kept}
    expected_removed = {snapshots[when] for when, kept in CALENDAR if not kept}

    # The preview (restic's algorithm here, without the repository's lock) says the same.
    preview = runs.apply_retention(plan, dry_run=True)
    [group] = preview.groups
    assert {decision.snapshot.short_id for decision in group.kept} == expected_kept
    assert {decision.snapshot.short_id for decision in group.removed} == expected_removed
    reasons = {decision.snapshot.short_id: decision.reasons for decision in group.kept}
    assert reasons[snapshots[at("2024-02-14")]] == ("daily", "weekly", "monthly", "yearly")
    assert reasons[snapshots[at("2023-12-28")]] == ("monthly", "yearly")

    outcome = runs.apply_retention(plan)
    assert outcome.run is not None and outcome.run.outcome == Outcome.SUCCEEDED, outcome.run
    remaining = engine.restic_for(backup_repository).snapshots(tags=plan.tags)
    assert {snapshot.short_id for snapshot in remaining} == expected_kept
    forgotten = SourceResult.objects.exclude(forgotten_at=None)
    assert {result.snapshot_id for result in forgotten} == expected_removed

    # Applying it again removes nothing more.
    again = runs.apply_retention(plan)
    assert again.removed_count == 0 and again.kept_count == len(expected_kept)
