"""A Docker volume backed up, drilled and restored in place: the session's real dockerd, found
through the Docker adapter (no ``docker`` command), and real restic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.docker import ObjectNotFound, VolumeSpec
from chaton.adapters.docker.client import DockerEngine
from chaton.backups import actions, runs
from chaton.backups.models import DrillOutcome, Outcome
from chaton.testing.docker import TemporaryDockerd

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

VOLUME = "chaton-test-pads-data"


@pytest.fixture
def volume(dockerd: TemporaryDockerd) -> Iterator[Path]:
    """Yield the directory of a fresh volume on the session's dockerd, removed after."""
    engine = DockerEngine(dockerd.url)
    try:
        engine.remove_volume(VOLUME)
        engine.create_volume(VolumeSpec(name=VOLUME, instance="pads"))
        yield Path(engine.volume_mountpoint(VOLUME))
    finally:
        engine.remove_volume(VOLUME)
        engine.close()


def test_the_adapter_gives_a_volume_s_directory_or_says_it_is_missing(
        dockerd: TemporaryDockerd, volume: Path) -> None:
    assert volume.is_dir() and VOLUME in str(volume)
    engine = DockerEngine(dockerd.url)
    try:
        with pytest.raises(ObjectNotFound):
            engine.volume_mountpoint("chaton-test-no-such-volume")
    finally:
        engine.close()


def test_a_volume_is_backed_up_drilled_and_restored_in_place(
        dockerd: TemporaryDockerd, volume: Path, backup_repository: object) -> None:
    (volume / "pads.db").write_text("first version\n")
    plan = actions.do_create_plan("pads", backup_repository, acting_user=None)
    source = actions.do_add_source(plan, "docker_volume", "data",
                                   {"volume": VOLUME, "engine": dockerd.url}, acting_user=None)

    run = runs.run_backup(plan)
    assert run.outcome == Outcome.SUCCEEDED, run.error
    fingerprint = run.results.get().fingerprint
    assert fingerprint["volume"] == VOLUME and fingerprint["files"] == 1

    report = runs.run_drill(plan, check=False)
    assert [drill.outcome for drill in report.drills] == [DrillOutcome.PASSED], [
        drill.findings_text for drill in report.drills]

    (volume / "pads.db").write_text("damaged\n")
    restore = runs.restore(source, acting_user=None, in_place=True)
    assert restore.outcome == Outcome.SUCCEEDED, restore.error
    assert (volume / "pads.db").read_text() == "first version\n"


def test_a_missing_volume_is_a_failed_run_that_names_it(
        dockerd: TemporaryDockerd, backup_repository: object) -> None:
    plan = actions.do_create_plan("gone", backup_repository, acting_user=None)
    actions.do_add_source(plan, "docker_volume", "data",
                          {"volume": "chaton-test-no-such-volume", "engine": dockerd.url},
                          acting_user=None)
    run = runs.run_backup(plan)
    assert run.outcome == Outcome.FAILED
    assert "chaton-test-no-such-volume" in run.results.get().error
