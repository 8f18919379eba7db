"""The recovery kit: its page behind re-authentication, its receipt, the command, and the key's
own backup (Django's test client, the fake restic, the fake directory).

Written from the attacker's side too: the kit holds every repository's
password and the secrets key, so an open session, a member, a cached page,
a guessed password or the logs must never give it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from typer.testing import CliRunner

from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions, recovery
from chaton.backups.models import RecoveryKitEvent, RecoveryKitEventKind, Source
from chaton.backups.sources import build
from chaton.backups.sources.base import BackupContext
from chaton.backups.sources.secrets_key import key_id
from chaton.core import secrets, throttle
from chaton.core.errors import Conflict
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.testing.second_factor import login_with_second_factor

PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "a long admin passphrase"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fakes(directory, fake_restic):
    yield


@pytest.fixture
def client(client):
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


@pytest.fixture
def admin():
    return directory_actions.do_create_account(
        "camille", acting_user=None, display_name="Camille Admin", email="camille@example.org",
        is_admin=True, password=ADMIN_PASSWORD)


@pytest.fixture
def admin_client(client, admin):
    login_with_second_factor(client, admin)
    return client


@pytest.fixture
def repository():
    return actions.do_create_repository("offsite", kind="local", location="/srv/backups/repo",
                                        password=PASSWORD, acting_user=None)


def _shown(content: str) -> bool:
    """Whether a page or an output holds the kit's secrets."""
    return secrets.current_key() in content or PASSWORD in content


# -- the page ---------------------------------------------------------------------------------


def test_the_kit_page_asks_for_the_password_again_then_shows_the_kit_once(admin_client, admin,
                                                                          repository):
    url = reverse("backup-recovery-kit")
    asked = admin_client.get(url)
    assert asked.status_code == 200 and not _shown(asked.content.decode())
    assert 'type="password"' in asked.content.decode()

    shown = admin_client.post(url, {"password": ADMIN_PASSWORD})
    content = shown.content.decode()
    assert shown.status_code == 200
    assert secrets.current_key() in content and PASSWORD in content
    assert "/srv/backups/repo" in content and "restic snapshots --tag chaton" in content
    assert "no-store" in shown["Cache-Control"]
    [event] = RecoveryKitEvent.objects.all()
    assert event.kind == RecoveryKitEventKind.SHOWN and event.account == admin
    row = AuditLog.objects.get(action="backups.recovery_kit.shown")
    assert row.actor == admin and row.after["via"] == "web"
    # The audit row names the kit, never what it holds.
    assert not _shown(str(row.after)) and row.after["key_id"] == key_id(secrets.current_key())


def test_an_open_session_is_not_enough_a_wrong_password_shows_nothing(admin_client, admin,
                                                                      repository):
    url = reverse("backup-recovery-kit")
    refused = admin_client.post(url, {"password": "guess"})
    assert refused.status_code == 200
    assert "This is not your password." in refused.content.decode()
    assert not _shown(refused.content.decode())
    assert not RecoveryKitEvent.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="backups.recovery_kit").exists()
    # Guesses count against the login throttle: the right password is then refused too.
    for _attempt in range(throttle.LOGIN_PER_USER_NAME.attempts):
        admin_client.post(url, {"password": "guess"})
    locked = admin_client.post(url, {"password": ADMIN_PASSWORD})
    assert "Too many failed attempts" in locked.content.decode()
    assert not _shown(locked.content.decode())


def test_members_and_visitors_never_reach_the_kit(client, repository):
    member = directory_actions.do_create_account(
        "sam", acting_user=None, display_name="Sam", email="sam@example.org",
        password="sam's own passphrase")
    url = reverse("backup-recovery-kit")
    anonymous = client.post(url, {"password": "sam's own passphrase"})
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    client.force_login(member)
    for response in (client.get(url), client.post(url, {"password": "sam's own passphrase"}),
                     client.post(reverse("backup-recovery-kit-stored"))):
        assert response.status_code == 403
        assert not _shown(response.content.decode())
    assert not RecoveryKitEvent.objects.exists()


def test_the_overview_warns_until_the_current_kit_is_confirmed_stored(admin_client, admin,
                                                                     repository):
    overview = reverse("backup-overview")
    warning = "Nobody has confirmed storing the current recovery kit"
    assert warning in admin_client.get(overview).content.decode()
    # Confirming a kit nobody saw is refused.
    refused = admin_client.post(reverse("backup-recovery-kit-stored"))
    assert refused.status_code == 302
    assert not RecoveryKitEvent.objects.filter(kind=RecoveryKitEventKind.STORED).exists()
    assert warning in admin_client.get(overview).content.decode()

    admin_client.post(reverse("backup-recovery-kit"), {"password": ADMIN_PASSWORD})
    stored = admin_client.post(reverse("backup-recovery-kit-stored"))
    assert stored.status_code == 302 and stored["Location"] == overview
    assert warning not in admin_client.get(overview).content.decode()
    row = AuditLog.objects.get(action="backups.recovery_kit.stored")
    assert row.actor == admin

    # A new repository makes a new kit: the warning is back until that one is stored.
    actions.do_create_repository("usb", kind="local", location="/media/usb/repo",
                                 password="another passphrase", acting_user=None)
    assert warning in admin_client.get(overview).content.decode()
    # So does a changed password.
    recovery.do_show_recovery_kit(acting_user=admin, via="web")
    recovery.do_confirm_recovery_kit_stored(acting_user=admin, via="web")
    assert not recovery.needs_confirmation()
    actions.do_update_repository(repository, acting_user=None, password="a changed passphrase")
    assert recovery.needs_confirmation()


def test_confirming_a_kit_never_shown_is_a_conflict(repository):
    with pytest.raises(Conflict):
        recovery.do_confirm_recovery_kit_stored(acting_user=None, via="cli")


# -- the kit's content ------------------------------------------------------------------------


def test_the_kit_says_where_each_snapshot_is_and_warns_of_a_repository_on_this_server(
        admin, fake_restic):
    fake_restic.initialised = False
    plan = actions.do_create_default_plan(acting_user=None)
    kit = recovery.do_show_recovery_kit(acting_user=admin, via="cli")
    [repository] = kit.repositories
    assert repository.on_this_server  # the default repository lives in the data directory
    text = recovery.render_text(kit)
    assert secrets.current_key() in text and repository.password in text
    assert "lost with the server" in text
    assert (f"restic dump latest --tag plan:{plan.name},source:database /database.sqlite3"
            in text)
    assert "/secrets.key > secrets.key" in text
    assert "chaton restore --from-repository" in text
    assert "export CHATON_SECRETS_KEY=" in text


def test_the_kit_is_never_logged(admin, repository, caplog):
    caplog.set_level(logging.DEBUG)
    kit = recovery.do_show_recovery_kit(acting_user=admin, via="cli")
    recovery.render_text(kit)
    assert not _shown(caplog.text)


# -- the command ------------------------------------------------------------------------------


def test_the_command_writes_the_kit_privately_and_records_who(admin, repository, tmp_path: Path,
                                                               english):
    from chaton.cli.app import app

    runner = CliRunner()
    output = tmp_path / "kit.txt"
    result = runner.invoke(app, ["--as", "camille", "backup", "recovery-kit", "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert not _shown(result.stdout)
    assert output.stat().st_mode & 0o777 == 0o600
    assert secrets.current_key() in output.read_text() and PASSWORD in output.read_text()
    row = AuditLog.objects.get(action="backups.recovery_kit.shown")
    assert row.actor == admin and row.after["via"] == "cli"

    confirmed = runner.invoke(app, ["backup", "recovery-kit", "--confirm-stored"])
    assert confirmed.exit_code == 0, confirmed.output
    assert not _shown(confirmed.stdout)
    assert not recovery.needs_confirmation()


# -- the key in Chaton's own backup ------------------------------------------------------------


def test_the_secrets_key_is_backed_up_inside_the_repository_and_drilled(tmp_path: Path) -> None:
    fake = FakeRestic()
    source = build("secrets_key", "secrets-key", {})
    result = source.backup(BackupContext(restic=fake, tags=["chaton"], host="here"))
    key = secrets.current_key()
    assert fake.dump(result.snapshot_id, "/secrets.key").decode().strip() == key
    # The database keeps the key's id, never the key.
    assert result.fingerprint == {"key_id": key_id(key)}
    assert source.drill(fake, result.snapshot_id, result.fingerprint, tmp_path).passed
    other = source.drill(fake, result.snapshot_id, {"key_id": "0" * 16}, tmp_path)
    assert not other.passed
    assert source.in_place_refusal()


def test_the_default_plan_holds_the_key(fake_restic) -> None:
    fake_restic.initialised = False
    plan = actions.do_create_default_plan(acting_user=None)
    assert Source.objects.filter(plan=plan, kind="secrets_key").exists()


def test_the_migration_adds_the_key_to_plans_that_back_up_chaton_once(repository) -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("chaton.backups.migrations.0003_recovery_kit")
    plan = actions.do_create_plan("own", repository, acting_user=None)
    actions.do_add_source(plan, "chaton", "database", {}, acting_user=None)
    other = actions.do_create_plan("files", repository, acting_user=None)
    actions.do_add_source(other, "paths", "files", {"paths": ["/srv/files"]}, acting_user=None)
    migration.add_secrets_key_sources(apps, None)
    migration.add_secrets_key_sources(apps, None)
    assert list(Source.objects.filter(kind="secrets_key").values_list("plan__name", "name")) == [
        ("own", "secrets-key")]
