"""Reading a backup of Chaton for a restore from nothing (the fake restic, the test database).

The real end-to-end restore is ``tests/integration/test_recovery.py``; these
cover the choices it makes: which snapshot, which key, what is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions, rebuild, runs
from chaton.backups.models import Outcome
from chaton.core import secrets
from chaton.core.errors import InvalidInput, NotFound

PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backed_up(fake_restic: FakeRestic, tmp_path: Path) -> FakeRestic:
    """A repository holding a plan with Chaton's database, its key and some files."""
    repository = actions.do_create_repository("offsite", kind="local", location="/srv/repo",
                                              password=PASSWORD, acting_user=None)
    plan = actions.do_create_plan("own", repository, acting_user=None)
    actions.do_add_source(plan, "chaton", "database", {}, acting_user=None)
    actions.do_add_source(plan, "secrets_key", "secrets-key", {}, acting_user=None)
    files = tmp_path / "files"
    files.mkdir()
    (files / "minutes.txt").write_text("the assembly adopted the budget\n")
    other = actions.do_create_plan("files", repository, acting_user=None)
    actions.do_add_source(other, "paths", "documents", {"paths": [str(files)]},
                          acting_user=None)
    assert runs.run_backup(other).outcome == Outcome.SUCCEEDED
    assert runs.run_backup(plan).outcome == Outcome.SUCCEEDED
    return fake_restic


def test_without_the_kits_key_the_key_backed_up_in_the_repository_opens_the_database(
        backed_up: FakeRestic) -> None:
    backup = rebuild.read_backup(backed_up)
    assert backup.plan == "own" and backup.key_origin == "repository"
    assert backup.secrets_key == secrets.current_key()
    assert backup.database_snapshot.paths == ("/database.sqlite3",)


def test_the_kits_key_is_used_and_another_installations_key_refused(backed_up: FakeRestic
                                                                     ) -> None:
    assert rebuild.read_backup(backed_up, secrets_key=secrets.current_key()).key_origin == "kit"
    with pytest.raises(InvalidInput, match="another installation's key") as refused:
        rebuild.read_backup(backed_up, secrets_key=Fernet.generate_key().decode())
    assert refused.value.field == "secrets_key"
    with pytest.raises(InvalidInput, match="not a key"):
        rebuild.read_backup(backed_up, secrets_key="letmein")


def test_a_wrong_password_is_refused_naming_the_repository(backed_up: FakeRestic) -> None:
    backed_up.password = "a guess"
    with pytest.raises(InvalidInput, match="does not open the repository") as refused:
        rebuild.read_backup(backed_up)
    assert refused.value.field == "password"


def test_without_any_key_that_opens_it_nothing_is_restored(backed_up: FakeRestic) -> None:
    # The key's snapshots gone (say, forgotten by hand): only the kit's key can help.
    backed_up.listed = [snapshot for snapshot in backed_up.listed
                        if "source:secrets-key" not in snapshot.tags]
    with pytest.raises(InvalidInput, match="give the one of the recovery kit"):
        rebuild.read_backup(backed_up)


def test_a_repository_without_chaton_is_not_found(fake_restic: FakeRestic) -> None:
    fake_restic.backup_stream(b"SQLite format 3\0 but not really", filename="shop.sqlite3",
                              tags=["chaton", "plan:shop", "source:shop"], host="here")
    with pytest.raises(NotFound, match="no backup of Chaton's own database"):
        rebuild.read_backup(fake_restic)


def test_the_service_data_says_how_to_restore_each_source(backed_up: FakeRestic) -> None:
    backup = rebuild.read_backup(backed_up)
    [row] = rebuild.service_data(backup)
    assert (row.plan, row.source, row.kind) == ("files", "documents", "paths")
    assert row.command.startswith("chaton backup restore files documents --snapshot ")
    assert row.command.endswith("--in-place")
