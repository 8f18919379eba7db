"""Deleting a repository record: from the page, the API and the command line, audited,
and refused by every one of them while a plan uses it (fake restic)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from typer.testing import CliRunner

from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions, runs
from chaton.backups.models import Outcome, Plan, Repository, Run
from chaton.cli.app import app
from chaton.core.actions import do_create_api_token
from chaton.core.errors import Conflict
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.testing.second_factor import login_with_second_factor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("english")]
PASSWORD = "correct horse battery staple"
API = "/api/v1/backups"


@pytest.fixture
def repository(fake_restic: FakeRestic) -> Repository:
    return actions.do_create_repository("offsite", kind="local", location="/srv/backups/repo",
                                        password=PASSWORD, acting_user=None)


@pytest.fixture
def plan(repository: Repository, tmp_path: Path) -> Plan:
    files = tmp_path / "files"
    files.mkdir()
    (files / "minutes.txt").write_text("minutes of the general assembly")
    plan = actions.do_create_plan("nightly", repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    return plan


@pytest.fixture
def admin(directory):
    return directory_actions.do_create_account("camille", acting_user=None,
                                               display_name="Camille Admin",
                                               email="camille@example.org", is_admin=True)


@pytest.fixture
def member(directory):
    return directory_actions.do_create_account("noa", acting_user=None, display_name="Noa",
                                               email="noa@example.org")


def headers(account) -> dict[str, str]:
    _token, key = do_create_api_token(account, "tests", acting_user=None)
    return {"Authorization": f"Bearer {key}", "Accept-Language": "en"}


def cli(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


def test_an_unused_repository_is_deleted_with_its_checks_and_audited(
        repository: Repository) -> None:
    runs.check_repository(repository, acting_user=None)
    actions.do_delete_repository(repository, acting_user=None)
    assert not Repository.objects.exists() and not Run.objects.exists()
    row = AuditLog.objects.get(action="backups.repository.delete")
    assert row.before["name"] == "offsite" and row.before["runs"] == 1
    assert "password" not in str(row.before)


def test_every_interface_refuses_while_a_plan_uses_it(plan: Plan, repository: Repository,
                                                      admin, client) -> None:
    with pytest.raises(Conflict, match="used by the plans nightly"):
        actions.do_delete_repository(repository, acting_user=None)
    response = client.delete(f"{API}/repositories/offsite", headers=headers(admin))
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    login_with_second_factor(client, admin)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    page = client.get(reverse("backup-repository-delete", args=["offsite"])).content.decode()
    assert "Plans use it" in page and 'class="danger"' not in page
    response = client.post(reverse("backup-repository-delete", args=["offsite"]), follow=True)
    assert any("used by the plans nightly" in str(message)
               for message in response.context["messages"])
    result = cli("backup", "repo", "delete", "offsite", "--yes")
    assert result.exit_code == 2 and "used by the plans nightly" in result.stderr
    assert Repository.objects.filter(name="offsite").exists()
    assert not AuditLog.objects.filter(action="backups.repository.delete").exists()


def test_a_running_run_holds_it(repository: Repository) -> None:
    Run.objects.create(repository=repository, kind="check", outcome=Outcome.RUNNING,
                       started_at=repository.created_at)
    with pytest.raises(Conflict, match="in progress"):
        actions.do_delete_repository(repository, acting_user=None)
    assert Repository.objects.exists()


def test_only_administrators_delete_it(repository: Repository, member, client) -> None:
    response = client.delete(f"{API}/repositories/offsite", headers=headers(member))
    assert response.status_code == 403
    client.force_login(member)
    assert client.post(reverse("backup-repository-delete", args=["offsite"])).status_code == 403
    assert Repository.objects.exists()


def test_the_page_the_api_and_the_command_delete_it(fake_restic: FakeRestic, admin,
                                                    client) -> None:
    for name in ("by-page", "by-api", "by-cli"):
        actions.do_create_repository(name, kind="local", location=f"/srv/backups/{name}",
                                     password=PASSWORD, acting_user=None)
    login_with_second_factor(client, admin)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    page = client.get(reverse("backup-repository-delete", args=["by-page"])).content.decode()
    assert "stays at /srv/backups/by-page" in page
    response = client.post(reverse("backup-repository-delete", args=["by-page"]))
    assert response.status_code == 302
    response = client.delete(f"{API}/repositories/by-api", headers=headers(admin))
    assert response.status_code == 204
    assert client.delete(f"{API}/repositories/by-api",
                         headers=headers(admin)).status_code == 404
    result = cli("backup", "repo", "delete", "by-cli", "--yes")
    assert result.exit_code == 0, result.output
    assert "data stays at /srv/backups/by-cli" in result.stdout
    assert not Repository.objects.exists()
    assert AuditLog.objects.filter(action="backups.repository.delete").count() == 3
