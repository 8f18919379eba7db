"""Checks that read everything in turn, a repository that never shows green over a failure,
the drill's one verdict, and drill evidence read in the reader's language (fake restic)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions, checks, queries, runs
from chaton.backups.models import Drill, DrillOutcome, Outcome, Plan, Repository
from chaton.core.actions import do_create_api_token
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.testing.second_factor import login_with_second_factor

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def repository(fake_restic: FakeRestic) -> Repository:
    return actions.do_create_repository("offsite", kind="local", location="/srv/backups/repo",
                                        password=PASSWORD, acting_user=None,
                                        check_read_data_subset="25%")


@pytest.fixture
def plan(repository: Repository, tmp_path: Path) -> Plan:
    files = tmp_path / "files"
    files.mkdir()
    (files / "minutes.txt").write_text("minutes of the general assembly")
    plan = actions.do_create_plan("nightly", repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    return plan


def health(repository: Repository) -> queries.RepositoryHealth:
    return queries.repository_health(queries.repositories().get(pk=repository.pk))


def check(repository: Repository) -> str:
    """Run the repository's check; return the subset it read and its outcome."""
    run = runs.check_repository(repository, acting_user=None)
    return f"{run.details['read_data_subset']} {run.outcome}"


# -- the rotation ------------------------------------------------------------------------------


@pytest.mark.parametrize("subset, parts", [
    ("5%", 20), ("25%", 4), ("30%", 4), ("2.5%", 40), ("100%", 1), ("150%", 1),
    ("1/10", 10), ("3/7", 7), ("500M", 0), ("2G", 0)])
def test_how_many_checks_read_everything(subset: str, parts: int) -> None:
    assert checks.parts_of(subset) == parts


def test_the_next_part_wraps_around_and_a_size_does_not_rotate() -> None:
    assert [checks.next_part("25%", position).subset for position in range(6)] == [
        "1/4", "2/4", "3/4", "4/4", "1/4", "2/4"]
    assert checks.next_part("25%", 3).last and not checks.next_part("25%", 2).last
    assert checks.next_part("100%", 5).subset == "100%"
    assert not checks.next_part("500M", 3).rotating
    assert checks.next_part("500M", 3).subset == "500M"


def test_a_cycle_reads_every_part_in_turn_then_counts_as_a_full_read(
        repository: Repository, fake_restic: FakeRestic) -> None:
    assert [check(repository) for _ in range(3)] == [
        "1/4 succeeded", "2/4 succeeded", "3/4 succeeded"]
    repository.refresh_from_db()
    assert repository.last_full_read_at is None and repository.check_cycle_position == 3
    assert check(repository) == "4/4 succeeded"
    repository.refresh_from_db()
    assert repository.last_full_read_at is not None
    assert repository.check_cycle_position == 0
    assert fake_restic.checked_subsets == ["1/4", "2/4", "3/4", "4/4"]
    assert health(repository).ok


def test_a_damaged_part_stays_red_and_is_read_again_until_it_passes(
        repository: Repository, fake_restic: FakeRestic) -> None:
    fake_restic.damaged_subsets = {"2/4"}
    assert check(repository) == "1/4 succeeded"
    assert check(repository) == "2/4 failed"
    assert health(repository).state == "check_failed"
    # The next checks read the same part again: the damage is never skipped.
    assert check(repository) == "2/4 failed"
    assert check(repository) == "2/4 failed"
    assert health(repository).state == "check_failed"
    # A manual check of another share reads it and does not move the rotation.
    run = runs.check_repository(repository, acting_user=None, read_data_subset="1/10")
    assert run.details["read_data_subset"] == "1/10"
    repository.refresh_from_db()
    assert repository.check_cycle_position == 1
    # Repaired (restic repair, a copy put back): green from the next good check on.
    fake_restic.damaged_subsets = set()
    assert check(repository) == "2/4 succeeded"
    assert health(repository).ok
    assert [check(repository) for _ in range(2)] == ["3/4 succeeded", "4/4 succeeded"]
    repository.refresh_from_db()
    assert repository.last_full_read_at is not None


def test_a_failed_full_check_is_not_hidden_by_a_later_partial_one(
        repository: Repository, fake_restic: FakeRestic) -> None:
    fake_restic.damaged_subsets = {"100%"}
    run = runs.check_repository(repository, acting_user=None, read_data_subset="100%")
    assert run.outcome == Outcome.FAILED
    repository.refresh_from_db()
    assert repository.last_full_read_at is None
    assert health(repository).state == "check_failed"


def test_another_share_per_check_starts_a_new_cycle(repository: Repository) -> None:
    check(repository)
    check(repository)
    actions.do_update_repository(repository, acting_user=None, check_read_data_subset="1/3")
    repository.refresh_from_db()
    assert repository.check_cycle_position == 0
    assert check(repository) == "1/3 succeeded"


# -- one verdict per drill, and a repository never green over a failure ----------------------


def test_a_drill_whose_repository_check_fails_is_a_failed_drill(
        plan: Plan, repository: Repository, fake_restic: FakeRestic) -> None:
    runs.run_backup(plan)
    fake_restic.damaged_subsets = {"1/4"}
    report = runs.run_drill(plan)
    [drill] = report.drills
    assert not report.passed
    assert drill.outcome == DrillOutcome.FAILED
    assert drill.check_run == report.check
    assert "Everything compared matched." not in drill.findings_text
    assert "The repository check run with the drill failed" in drill.findings_text
    assert "ciphertext verification failed" in drill.findings_text
    drill.refresh_from_db()
    assert drill.outcome == DrillOutcome.FAILED  # stored, not only in the report
    assert AuditLog.objects.filter(action="backups.drill",
                                   after__outcome=DrillOutcome.FAILED).exists()
    # The next drill, on a repaired repository, passes as one verdict again.
    fake_restic.damaged_subsets = set()
    report = runs.run_drill(plan)
    assert report.passed and report.drills[0].passed
    assert report.check is not None and report.check.details["read_data_subset"] == "1/4"


def test_a_repository_is_not_green_while_the_last_drill_failed(
        plan: Plan, repository: Repository, fake_restic: FakeRestic, client) -> None:
    runs.run_backup(plan)
    check(repository)
    assert health(repository).ok
    # The restore fails (its password no longer opens the repository); the check passed.
    fake_restic.repository_password = "changed behind Chaton's back"
    report = runs.run_drill(plan, check=False)
    assert not report.passed
    assert health(repository).state == "drill_failed"
    admin = directory_actions.do_create_account("camille", acting_user=None,
                                                display_name="Camille Admin",
                                                email="camille@example.org", is_admin=True)
    login_with_second_factor(client, admin)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    for url in (reverse("backup-overview"), reverse("backup-repository", args=["offsite"])):
        content = client.get(url).content.decode()
        assert "last drill failed" in content, url
        assert "badge ok repository-health" not in content, url
    # A drill that passes again turns it green.
    fake_restic.repository_password = PASSWORD
    assert runs.run_drill(plan, check=False).passed
    assert health(repository).ok
    content = client.get(reverse("backup-repository", args=["offsite"])).content.decode()
    assert "badge ok repository-health" in content
    assert "the next check reads part 2 of 4" in content
    assert "every pack read: not yet" in content


def test_the_api_says_the_health_the_cycle_and_the_last_full_read(
        plan: Plan, repository: Repository, fake_restic: FakeRestic, client) -> None:
    admin = directory_actions.do_create_account("camille", acting_user=None,
                                                display_name="Camille Admin",
                                                email="camille@example.org", is_admin=True)
    _token, key = do_create_api_token(admin, "tests", acting_user=None)

    def shown() -> dict[str, object]:
        response = client.get("/api/v1/backups/repositories/offsite",
                              headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    assert shown()["healthy"] is False and shown()["check_cycle"] == "1/4"
    for _ in range(4):
        check(repository)
    body = shown()
    assert body["healthy"] is True and body["last_full_read_at"] is not None
    assert body["check_cycle"] == "1/4"
    runs.run_backup(plan)
    fake_restic.repository_password = "changed behind Chaton's back"
    runs.run_drill(plan, check=False)
    body = shown()
    assert body["healthy"] is False and body["last_drill_outcome"] == "failed"


# -- evidence in the reader's language ----------------------------------------------------------


def test_drill_evidence_is_stored_neutral_and_read_in_each_language(
        plan: Plan, client) -> None:
    runs.run_backup(plan)
    with translation.override("fr"):  # the worker runs in the collective's language
        report = runs.run_drill(plan, check=False)
    [drill] = report.drills
    drill = Drill.objects.get(pk=drill.pk)
    assert {"code": "files", "params": {}} in drill.compared
    assert drill.findings == [{"code": "all_matched", "params": {}}]
    with translation.override("en"):
        assert "file count" in drill.compared_labels
        assert drill.findings_text == "Everything compared matched."
    with translation.override("fr"):
        assert "nombre de fichiers" in drill.compared_labels
        assert drill.findings_text == "Tout ce qui a été comparé correspond."
    admin = directory_actions.do_create_account("camille", acting_user=None,
                                                display_name="Camille Admin",
                                                email="camille@example.org", is_admin=True)
    login_with_second_factor(client, admin)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    content = client.get(reverse("backup-plan", args=["nightly"])).content.decode()
    assert "Everything compared matched." in content and "file count" in content
    assert "Tout ce qui a été comparé" not in content and "nombre de fichiers" not in content


def test_differences_and_failures_are_items_too(plan: Plan, fake_restic: FakeRestic) -> None:
    report = runs.run_drill(plan, check=False)  # nothing backed up yet
    [drill] = report.drills
    assert drill.findings == [{"code": "no_backup", "params": {"source": "nightly/files"}}]
    with translation.override("en"):
        assert drill.findings_text == "Source nightly/files has no successful backup yet."


def test_an_interrupted_drill_says_so_in_the_readers_language(plan: Plan) -> None:
    from chaton.core import clock

    Drill.objects.create(plan=plan, source_name="files", source_kind="paths",
                         started_at=clock.now(), outcome=DrillOutcome.RUNNING)
    assert runs.mark_interrupted(plan) == 1
    drill = Drill.objects.get()
    assert drill.outcome == DrillOutcome.FAILED
    assert drill.findings == [{"code": "interrupted", "params": {}}]
    with translation.override("en"):
        assert drill.findings_text.startswith("Interrupted: the process running it stopped")
    with translation.override("fr"):
        assert not drill.findings_text.startswith("Interrupted")
