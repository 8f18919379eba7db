"""The backups pages: Django's test client, the fake restic, the fake LDAP directory."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from chaton.backups import actions, engine, runs
from chaton.backups.models import (
    Drill,
    DrillOutcome,
    Outcome,
    Plan,
    Repository,
    Run,
    RunKind,
    Source,
)
from chaton.core import clock
from chaton.directory import actions as directory_actions
from chaton.testing.second_factor import login_with_second_factor

PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fakes(directory, fake_restic):
    """Every test: the fake directory (accounts) and the fake restic (repositories)."""
    yield
    clock.travel(dt.timedelta(0))


@pytest.fixture
def client(client):
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


@pytest.fixture
def admin():
    return directory_actions.do_create_account("camille", acting_user=None,
                                               display_name="Camille Admin",
                                               email="camille@example.org", is_admin=True)


@pytest.fixture
def admin_client(client, admin):
    login_with_second_factor(client, admin)
    return client


@pytest.fixture
def repository():
    return actions.do_create_repository("offsite", kind="local", location="/srv/backups/repo",
                                        password=PASSWORD, acting_user=None)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "minutes.txt").write_text("minutes of the general assembly, spring")
    return folder


@pytest.fixture
def plan(repository, files):
    plan = actions.do_create_plan("nightly", repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    return plan


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# -- access ------------------------------------------------------------------------------


def test_pages_are_for_administrators_only(client, plan):
    member = directory_actions.do_create_account("noa", acting_user=None,
                                                 display_name="Noa Martin",
                                                 email="noa@example.org")
    urls = [reverse("backup-overview"), reverse("backup-plan", args=["nightly"]),
            reverse("backup-repository", args=["offsite"]), reverse("backup-plan-create")]
    for url in urls:
        assert client.get(url)["Location"].startswith(reverse("login"))
    client.force_login(member)
    for url in urls:
        assert client.get(url).status_code == 403
    assert client.post(reverse("backup-plan-run", args=["nightly"])).status_code == 403
    assert not Run.objects.exists()


def test_buttons_need_post_and_a_csrf_token(admin, plan):
    strict = Client(enforce_csrf_checks=True)
    login_with_second_factor(strict, admin)
    assert strict.post(reverse("backup-plan-run", args=["nightly"])).status_code == 403
    assert strict.get(reverse("backup-plan-run", args=["nightly"])).status_code == 405
    assert not Run.objects.exists()


def test_unknown_names_are_404(admin_client):
    for url in (reverse("backup-plan", args=["nowhere"]),
                reverse("backup-repository", args=["nowhere"]),
                reverse("backup-plan-edit", args=["nowhere"]), "/backups/plans/%00/",
                "/backups/repositories/Bad%20Name/"):
        assert admin_client.get(url).status_code == 404


def test_the_admin_navigation_links_the_backups(admin_client, plan):
    content = page(admin_client.get(reverse("backup-plan", args=["nightly"])))
    link = re.search(r'<a href="/backups/"[^>]*>Backups</a>', content)
    assert link and 'aria-current="page"' in link.group(0)
    other = page(admin_client.get(reverse("audit-log")))
    assert re.search(r'<a href="/backups/">Backups</a>', other)


# -- the overview --------------------------------------------------------------------------


def test_overview_flags_stale_plans_and_summarises_drills(admin_client, plan, repository):
    runs.run_backup(plan)
    runs.run_drill(plan)
    content = page(admin_client.get(reverse("backup-overview")))
    assert "restores tested: 1, passed" in content
    assert 'class="badge stale"' not in content
    assert "no errors" in content  # the repository's last check, from the drill

    stale = actions.do_create_plan("weekly", repository, acting_user=None,
                                   stale_after_hours=1)
    Drill.objects.create(plan=stale, source_name="db", source_kind="postgres",
                         started_at=clock.now(), outcome=DrillOutcome.FAILED)
    clock.travel(dt.timedelta(hours=2))
    content = page(admin_client.get(reverse("backup-overview")))
    assert "restores tested: 2, 1 failed" in content
    row = re.search(r"<tr class=\"stale-row\">.*?</tr>", content, re.S)
    assert row and "weekly" in row.group(0) and "never" in row.group(0)
    assert "1 plan is stale" in content
    snapshot = plan.runs.get(kind=RunKind.BACKUP).results.get().snapshot_id
    assert snapshot[:8] in content


def test_the_drill_summary_covers_six_months(admin_client, plan):
    Drill.objects.create(plan=plan, source_name="files", source_kind="paths",
                         started_at=clock.now() - dt.timedelta(days=200),
                         outcome=DrillOutcome.FAILED)
    for _ in range(3):
        Drill.objects.create(plan=plan, source_name="files", source_kind="paths",
                             started_at=clock.now() - dt.timedelta(days=10),
                             outcome=DrillOutcome.PASSED)
    assert "restores tested: 3, all passed" in page(admin_client.get(reverse("backup-overview")))


def _make_plans(repository: Repository, files: Path, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        plan = actions.do_create_plan(f"plan-{number}", repository, acting_user=None)
        actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]},
                              acting_user=None)
        runs.run_backup(plan)
        runs.run_drill(plan, check=False)


def test_overview_uses_a_constant_number_of_queries(admin_client, repository, files,
                                                    django_assert_max_num_queries):
    _make_plans(repository, files, 2)
    with django_assert_max_num_queries(14) as few:
        admin_client.get(reverse("backup-overview"))
    _make_plans(repository, files, 18, start=2)
    with django_assert_max_num_queries(14) as many:
        response = admin_client.get(reverse("backup-overview"))
    assert "plan-19" in page(response)
    assert len(few.captured_queries) == len(many.captured_queries)


def test_plan_page_uses_a_constant_number_of_queries(admin_client, plan,
                                                     django_assert_max_num_queries):
    runs.run_backup(plan)
    runs.run_drill(plan, check=False)
    with django_assert_max_num_queries(25) as few:
        admin_client.get(reverse("backup-plan", args=["nightly"]))
    for _ in range(6):
        runs.run_backup(plan)
        runs.run_drill(plan, check=False)
    with django_assert_max_num_queries(25) as many:
        page(admin_client.get(reverse("backup-plan", args=["nightly"])))
    assert len(few.captured_queries) == len(many.captured_queries)


# -- repositories ----------------------------------------------------------------------------


def test_a_repository_is_created_initialised_and_its_password_never_shown(admin_client,
                                                                          fake_restic):
    fake_restic.initialised = False
    form = {"name": "Bad Name", "kind": "local", "location": "/srv/chaton/repo",
            "password": "a secret that stays", "environment": "", "check_interval_days": 7,
            "check_read_data_subset": "5%", "initialise": "on"}
    refused = admin_client.post(reverse("backup-repository-create"), form)
    content = page(refused)
    assert "lower-case letters" in content and "a secret that stays" not in content
    assert not Repository.objects.exists()

    form["name"] = "offsite"
    response = admin_client.post(reverse("backup-repository-create"), form, follow=True)
    content = page(response)
    repository = Repository.objects.get(name="offsite")
    assert repository.initialised_at is not None and "init" in fake_restic.calls
    assert repository.password() == "a secret that stays"
    assert "a secret that stays" not in repository.password_encrypted
    assert "is initialised" in " ".join(messages_of(response))
    assert "/srv/chaton/repo" in content

    edit = page(admin_client.get(reverse("backup-repository-edit", args=["offsite"])))
    assert "a secret that stays" not in edit and 'name="password"' in edit
    admin_client.post(reverse("backup-repository-edit", args=["offsite"]), {
        "location": "/srv/chaton/repo", "password": "", "environment": "S3_REGION=north\n",
        "check_interval_days": 3, "check_read_data_subset": "10%"})
    repository.refresh_from_db()
    assert repository.password() == "a secret that stays"  # an empty field keeps it
    assert repository.environment() == {"S3_REGION": "north"}
    assert repository.check_interval_days == 3
    detail = page(admin_client.get(reverse("backup-repository", args=["offsite"])))
    assert "S3_REGION" in detail and "north" not in detail


def test_a_malformed_environment_line_is_shown_on_its_field(admin_client, repository):
    response = admin_client.post(reverse("backup-repository-edit", args=["offsite"]), {
        "location": repository.location, "password": "", "environment": "no equals sign",
        "check_interval_days": 7, "check_read_data_subset": "5%"})
    assert response.context["form"].errors["environment"]
    assert Repository.objects.get().environment() == {}


def test_a_wrong_password_on_initialise_is_a_message(admin_client, repository, fake_restic):
    fake_restic.repository_password = "another password entirely"
    response = admin_client.post(reverse("backup-repository-init", args=["offsite"]),
                                 follow=True)
    assert "does not open repository offsite" in " ".join(messages_of(response))
    assert Repository.objects.get().initialised_at is None


def test_a_check_from_the_repository_page(admin_client, repository):
    actions.do_init_repository(repository, acting_user=None)
    response = admin_client.post(reverse("backup-repository-check", args=["offsite"]),
                                 follow=True)
    assert "no errors were found" in " ".join(messages_of(response))
    content = page(admin_client.get(reverse("backup-repository", args=["offsite"])))
    assert "5%" in content and "badge outcome-succeeded" in content


# -- plans and sources -----------------------------------------------------------------------


def test_a_plan_is_created_then_given_kind_specific_sources(admin_client, repository, files):
    response = admin_client.post(reverse("backup-plan-create"), {
        "name": "shop", "repository": "offsite", "enabled": "on", "interval_minutes": 720,
        "keep_last": 0, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6,
        "keep_yearly": 1, "stale_after_hours": 30, "drill_interval_days": 7})
    assert response["Location"] == reverse("backup-source-add", args=["shop"])
    plan = Plan.objects.get(name="shop")
    assert plan.interval_minutes == 720 and plan.keep_yearly == 1

    form = page(admin_client.get(reverse("backup-source-add", args=["shop"])))
    assert "kinds-postgres" in form and "kinds-paths" in form

    refused = admin_client.post(reverse("backup-source-add", args=["shop"]), {
        "kind": "paths", "name": "uploads", "paths-paths": "relative/path"})
    assert refused.context["form"].errors["paths-paths"]

    missing = admin_client.post(reverse("backup-source-add", args=["shop"]), {
        "kind": "postgres", "name": "db", "postgres-password": "pg-secret-value"})
    assert missing.context["form"].errors["postgres-database"]
    assert "pg-secret-value" not in missing.content.decode()

    admin_client.post(reverse("backup-source-add", args=["shop"]), {
        "kind": "postgres", "name": "db", "postgres-database": "shop", "postgres-port": "5433",
        "postgres-password": "pg-secret-value",
        # Fields of other kinds are ignored: only the chosen kind's parameters count.
        "paths-paths": "/ignored", "docker_volume-volume": "ignored"})
    source = Source.objects.get(name="db")
    assert source.params["port"] == 5433 and "paths" not in source.params
    assert source.params["password"] != "pg-secret-value"
    assert engine.data_source(source).params["password"] == "pg-secret-value"

    admin_client.post(reverse("backup-source-add", args=["shop"]), {
        "kind": "ldap", "name": "people", "ldap-url": "ldap://127.0.0.1:3389",
        "ldap-base_dn": "dc=example,dc=org", "ldap-password": "bind-secret"})
    assert engine.data_source(Source.objects.get(name="people")).params["password"] == \
        "bind-secret"
    ldap_error = admin_client.post(reverse("backup-source-add", args=["shop"]), {
        "kind": "ldap", "name": "other", "ldap-url": "http://wrong", "ldap-base_dn": "dc=x"})
    assert ldap_error.context["form"].errors["ldap-url"]

    content = page(admin_client.get(reverse("backup-plan", args=["shop"])))
    assert "pg-secret-value" not in content and "bind-secret" not in content
    assert "***" in content and "dc=example,dc=org" in content

    duplicate = admin_client.post(reverse("backup-source-add", args=["shop"]), {
        "kind": "chaton", "name": "db"})
    assert duplicate.context["form"].errors["name"]


def test_plan_edit_remove_source_and_delete(admin_client, plan):
    form = page(admin_client.get(reverse("backup-plan-edit", args=["nightly"])))
    assert 'value="1440"' in form
    admin_client.post(reverse("backup-plan-edit", args=["nightly"]), {
        "repository": "offsite", "interval_minutes": 60, "keep_last": 3, "keep_daily": 7,
        "keep_weekly": 4, "keep_monthly": 6, "keep_yearly": 0, "stale_after_hours": 2,
        "drill_interval_days": 0})
    plan.refresh_from_db()
    assert plan.interval_minutes == 60 and plan.keep_last == 3 and not plan.enabled
    refused = admin_client.post(reverse("backup-plan-edit", args=["nightly"]), {
        "repository": "offsite", "interval_minutes": 1, "keep_last": 0, "keep_daily": 7,
        "keep_weekly": 4, "keep_monthly": 6, "keep_yearly": 0, "stale_after_hours": 2,
        "drill_interval_days": 0})
    assert refused.context["form"].errors["interval_minutes"]

    admin_client.post(reverse("backup-source-remove", args=["nightly", "files"]))
    assert not plan.sources.exists()
    confirm = page(admin_client.get(reverse("backup-plan-delete", args=["nightly"])))
    assert "snapshots stay" in confirm
    response = admin_client.post(reverse("backup-plan-delete", args=["nightly"]))
    assert response["Location"] == reverse("backup-overview")
    assert not Plan.objects.exists()


# -- the plan page and its buttons -----------------------------------------------------------


def test_back_up_drill_and_retention_from_the_plan_page(admin_client, plan, fake_restic):
    # Three days of backups: the daily rule keeps the newest of each day.
    start = clock.now() - dt.timedelta(days=3)
    for day in range(3):
        runs.run_backup(plan, time=start + dt.timedelta(days=day))
    runs.run_backup(plan, time=start + dt.timedelta(days=2, hours=1))

    response = admin_client.post(reverse("backup-plan-run", args=["nightly"]), follow=True)
    assert "Backup done" in " ".join(messages_of(response))
    content = page(response)
    run = plan.runs.filter(kind=RunKind.BACKUP).first()
    assert run.triggered_by == "camille"
    assert run.results.get().snapshot_id[:8] in content
    assert "<svg" in content and "Bytes added" in content  # the chart of bytes added
    # The preview: the reasons in words, and what the next pass removes.
    assert "daily" in content and "removed by the next retention pass" in content

    response = admin_client.post(reverse("backup-plan-drill", args=["nightly"]), follow=True)
    assert "Drill passed: 1 source restored and verified." in messages_of(response)
    content = page(response)
    drill = Drill.objects.get()
    assert drill.outcome == DrillOutcome.PASSED
    assert "badge drill-passed" in content and drill.snapshot_id[:8] in content
    for compared in drill.compared_labels:
        assert compared in content
    assert "restores tested: 1, passed" in content

    response = admin_client.post(reverse("backup-plan-retention", args=["nightly"]),
                                 follow=True)
    assert any(message.startswith("Retention applied") for message in messages_of(response))
    assert plan.runs.filter(kind=RunKind.FORGET, outcome=Outcome.SUCCEEDED).exists()


def test_a_running_plan_refuses_a_second_run_with_a_clear_message(admin_client, plan):
    with engine.plan_lock(plan):
        content = page(admin_client.get(reverse("backup-plan", args=["nightly"])))
        assert "A run of this plan is in progress" in content
        for name in ("backup-plan-run", "backup-plan-drill", "backup-plan-retention"):
            response = admin_client.post(reverse(name, args=["nightly"]), follow=True)
            assert any("already running" in message for message in messages_of(response))
    assert not Run.objects.filter(plan=plan).exists()
    assert not Drill.objects.exists()


def test_a_failed_backup_shows_its_error(admin_client, plan, fake_restic):
    fake_restic.repository_password = "not the stored one"
    response = admin_client.post(reverse("backup-plan-run", args=["nightly"]), follow=True)
    assert any("Wrong repository password" in message for message in messages_of(response))
    content = page(response)
    assert "badge outcome-failed" in content and "could not be read" in content  # preview


def test_pages_still_show_when_stored_secrets_no_longer_decrypt(admin_client, plan):
    # As after a change of the secrets key: the pages say so instead of failing.
    Repository.objects.update(password_encrypted="not a token", environment_encrypted="nope")
    content = page(admin_client.get(reverse("backup-plan", args=["nightly"])))
    assert "The snapshots could not be read" in content
    assert page(admin_client.get(reverse("backup-repository", args=["offsite"])))
    assert page(admin_client.get(reverse("backup-overview")))
    response = admin_client.post(reverse("backup-plan-run", args=["nightly"]), follow=True)
    assert any("The backup failed" in message for message in messages_of(response))


@pytest.mark.parametrize("minutes", [60, 1440, 2880])
def test_the_plan_page_reads_in_french(admin_client, plan, settings, minutes):
    """Every interval and plural renders in French too (a catalogue entry once broke it)."""
    from chaton.backups import actions

    actions.do_update_plan(plan, acting_user=None, interval_minutes=minutes,
                           drill_interval_days=1)
    admin_client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "fr"})
    response = admin_client.get(reverse("backup-plan", args=["nightly"]))
    assert response.status_code == 200
    assert "Plan de sauvegarde" in page(response)
