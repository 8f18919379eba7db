"""Back up, change the data, restore, compare: real restic, PostgreSQL, slapd and files.

Also the drills: one that passes, and one that must fail after a pack file of
the repository was damaged (``restic check`` reports it too); a wrong
repository password and an unreachable database are failures recorded, not lost.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chaton.adapters.ldap import Change
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.postgres import Database, TemporaryPostgres, table_fingerprints
from chaton.adapters.slapd import ManagedSlapd
from chaton.backups import actions, queries, runs
from chaton.backups.models import DrillOutcome, Outcome, Repository, RunKind
from chaton.core.errors import InvalidInput
from chaton.testing.pytest_plugin import BASE_DN

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    """Messages in English, whatever the collective's language: the tests read them."""
    from django.utils import translation

    with translation.override("en"):
        yield

SHOP_SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'grumpy');
CREATE TABLE item (
    id bigserial PRIMARY KEY, name text NOT NULL, price numeric(10, 2), added timestamptz,
    labels text[], extra jsonb, feeling mood
);
CREATE TABLE note (id serial PRIMARY KEY, body json, written date);
INSERT INTO item (name, price, added, labels, extra, feeling)
SELECT 'item ' || g, g * 1.25, '2024-01-01'::timestamptz + g * interval '1 hour',
       ARRAY['a' || g % 7, 'b'], jsonb_build_object('g', g),
       (CASE WHEN g % 2 = 0 THEN 'happy' ELSE 'grumpy' END)::mood
FROM generate_series(1, 3000) g;
INSERT INTO note (body, written) SELECT json_build_object('n', g), '2024-02-01'::date + g
FROM generate_series(1, 200) g;
"""


def _database(server: TemporaryPostgres, name: str) -> Database:
    return Database(name=name, host="127.0.0.1", port=server.port)


def _create_database(server: TemporaryPostgres, name: str, schema: str = "") -> Database:
    with psycopg.connect(f"{server.url}", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    database = _database(server, name)
    if schema:
        with database.connect() as connection:
            connection.execute(schema)
    return database


def _fingerprints(database: Database) -> dict[str, dict[str, object]]:
    with database.connect() as connection:
        return table_fingerprints(connection)


def test_postgres_backup_change_restore_and_drill(source_postgres: TemporaryPostgres,
                                                   backup_repository: Repository,
                                                   scratch_path: Path) -> None:
    shop = _create_database(source_postgres, "shop", SHOP_SCHEMA)
    original = _fingerprints(shop)
    assert original["public.item"]["rows"] == 3000
    assert original["public.item"]["method"] == "text"  # an enum column: hashed as text
    plan = actions.do_create_plan("shop", backup_repository, acting_user=None)
    source = actions.do_add_source(plan, "postgres", "shop",
                                   {"database": "shop", "port": source_postgres.port},
                                   acting_user=None)

    run = runs.run_backup(plan)
    assert run.outcome == Outcome.SUCCEEDED, run.error
    [result] = run.results.all()
    assert result.snapshot_id and result.bytes_processed > 0
    assert result.fingerprint["tables"] == original

    with shop.connect() as connection:
        connection.execute("DELETE FROM item WHERE id % 3 = 0")
        connection.execute("UPDATE note SET body = '{\"changed\": true}'")
        connection.execute("CREATE TABLE intruder (id int)")
    assert _fingerprints(shop) != original

    # To a scratch database, by URL: the same rows and checksums as at backup time.
    copy = _create_database(source_postgres, "shop_copy")
    restore = runs.restore(source, acting_user=None, target=(
        f"postgresql://postgres@127.0.0.1:{source_postgres.port}/shop_copy"))
    assert restore.outcome == Outcome.SUCCEEDED, restore.error
    assert _fingerprints(copy) == original

    # To a scratch directory: the dump file.
    restore = runs.restore(source, acting_user=None, target=str(scratch_path / "out"))
    assert restore.outcome == Outcome.SUCCEEDED, restore.error
    assert (scratch_path / "out" / "shop.pgdump").read_bytes()[:5] == b"PGDMP"

    # In place: a safety snapshot first, then the database is as it was backed up.
    restore = runs.restore(source, acting_user=None, in_place=True)
    assert restore.outcome == Outcome.SUCCEEDED, restore.error
    [safety] = restore.results.all()
    assert safety.safety and safety.outcome == Outcome.SUCCEEDED
    restored = _fingerprints(shop)
    assert {name: restored[name] for name in original} == original
    # The safety snapshot holds the changed data, and can be restored itself.
    assert safety.fingerprint["tables"]["public.item"]["rows"] == 2000

    report = runs.run_drill(plan)
    assert report.passed, [(drill.findings_text, drill.found) for drill in report.drills]
    [drill] = report.drills
    assert drill.outcome == DrillOutcome.PASSED
    assert drill.snapshot_id == result.snapshot_id
    assert "rows of public.item" in drill.compared_labels
    assert drill.expected["rows"] == drill.found["rows"] == 3200
    assert drill.duration_seconds is not None and drill.duration_seconds > 0
    assert report.check is not None and report.check.outcome == Outcome.SUCCEEDED
    assert str(queries.drill_summary()) == "restores tested: 1, passed"


def test_ldap_files_and_chatons_database(slapd: ManagedSlapd, ldap_directory: LdapDirectory,
                                         backup_repository: Repository,
                                         scratch_path: Path) -> None:
    from chaton.directory import actions as directory_actions

    for uid in ("zephyrin", "ombeline", "anatole"):
        account = directory_actions.do_create_account(uid, acting_user=None,
                                                      display_name=uid.title(),
                                                      email=f"{uid}@example.org")
    # A group gives its member a memberOf (the memberof overlay), which slapcat shows and a
    # search for "*" does not: the fingerprints leave it out alike.
    group = directory_actions.do_create_group("drill", acting_user=None)
    directory_actions.do_add_to_group(group, account, acting_user=None)
    files = scratch_path / "files"
    (files / "sub").mkdir(parents=True)
    (files / "a.txt").write_text("first version\n")
    (files / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    plan = actions.do_create_plan("mixed", backup_repository, acting_user=None)
    directory = actions.do_add_source(
        plan, "ldap", "directory", {"config": str(slapd.config_path), "base_dn": BASE_DN},
        acting_user=None)
    paths = actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]},
                                  acting_user=None)
    database = actions.do_add_source(plan, "chaton", "database", {}, acting_user=None)
    # The same directory read over LDAP, for a server whose files slapcat cannot reach.
    actions.do_add_source(plan, "ldap", "over-ldap", {
        "url": slapd.url, "bind_dn": slapd.admin_dn, "password": slapd.admin_password,
        "base_dn": BASE_DN}, acting_user=None)

    run = runs.run_backup(plan)
    assert run.outcome == Outcome.SUCCEEDED, run.error
    by_name = {result.source_name: result for result in run.results.all()}
    assert by_name["directory"].fingerprint["entries"] >= 5  # base, ou=people …, 3 accounts
    assert by_name["files"].fingerprint["files"] == 2
    assert by_name["database"].fingerprint["tables"]["directory_account"]["rows"] == 3
    over_ldap = by_name["over-ldap"].fingerprint
    assert {key: over_ldap[key] for key in ("entries", "dns_sha256", "content_sha256")} == {
        key: by_name["directory"].fingerprint[key]
        for key in ("entries", "dns_sha256", "content_sha256")}

    ldap_directory.apply([Change("delete", f"uid=anatole,ou=people,{BASE_DN}")])
    (files / "a.txt").write_text("second version, longer\n")
    (files / "c.txt").write_text("new since the backup\n")

    restore = runs.restore(directory, acting_user=None, target=str(scratch_path / "ldif"))
    assert restore.outcome == Outcome.SUCCEEDED, restore.error
    assert b"uid=anatole,ou=people" in (scratch_path / "ldif" / "directory.ldif").read_bytes()

    restore = runs.restore(paths, acting_user=None, in_place=True)
    assert restore.outcome == Outcome.SUCCEEDED, restore.error
    assert (files / "a.txt").read_text() == "first version\n"
    assert (files / "c.txt").exists()  # restic restores, it does not delete
    assert restore.details["safety_snapshot"]

    with pytest.raises(InvalidInput, match="directory"):
        runs.restore(directory, acting_user=None, in_place=True)
    with pytest.raises(InvalidInput, match="holds its own database open"):
        runs.restore(database, acting_user=None, in_place=True)
    with pytest.raises(InvalidInput, match="new or empty"):
        runs.restore(paths, acting_user=None, target=str(files))

    report = runs.run_drill(plan, check=False)
    outcomes = {drill.source_name: (drill.outcome, drill.findings_text)
                for drill in report.drills}
    assert all(outcome == DrillOutcome.PASSED for outcome, _ in outcomes.values()), outcomes
    ldap_drill = next(drill for drill in report.drills if drill.source_name == "directory")
    assert ldap_drill.found["entries"] == by_name["directory"].fingerprint["entries"]


def test_a_damaged_pack_fails_the_drill_and_the_check(backup_repository: Repository,
                                                      scratch_path: Path) -> None:
    files = scratch_path / "files"
    files.mkdir()
    (files / "data.bin").write_bytes(os.urandom(2_000_000))
    # The check reads all the data: with a handful of packs, a 5% subset may skip the damage.
    actions.do_update_repository(backup_repository, acting_user=None,
                                 check_read_data_subset="100%")
    plan = actions.do_create_plan("fragile", backup_repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    assert runs.run_backup(plan).outcome == Outcome.SUCCEEDED

    packs = sorted((Path(backup_repository.location) / "data").rglob("*"),
                   key=lambda path: path.stat().st_size if path.is_file() else 0)
    largest = packs[-1]
    largest.chmod(0o600)
    with largest.open("r+b") as pack:
        pack.seek(largest.stat().st_size // 2)
        pack.write(b"\xde\xad\xbe\xef" * 4)

    report = runs.run_drill(plan)
    [drill] = report.drills
    assert drill.outcome == DrillOutcome.FAILED
    assert "Damaged data" in drill.findings_text
    assert "ciphertext verification failed" in drill.findings_text
    assert report.check is not None and report.check.outcome == Outcome.FAILED
    assert "errors" in report.check.error
    backup_repository.refresh_from_db()
    assert backup_repository.check_ok is False
    assert str(queries.drill_summary()) == "restores tested: 1, 1 failed"


def test_a_wrong_password_and_an_unreachable_database_are_recorded(
        backup_repository: Repository, source_postgres: TemporaryPostgres,
        scratch_path: Path) -> None:
    plan = actions.do_create_plan("unlucky", backup_repository, acting_user=None)
    closed_port = source_postgres.port + 1 if source_postgres.port < 65535 else 1024
    gone = actions.do_add_source(plan, "postgres", "gone", {"database": "nowhere",
                                                            "port": closed_port},
                                 acting_user=None)
    run = runs.run_backup(plan)
    assert run.outcome == Outcome.FAILED
    [result] = run.results.all()
    assert "cannot connect to PostgreSQL" in result.error and result.snapshot_id == ""

    actions.do_remove_source(gone, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(scratch_path)]},
                          acting_user=None)
    actions.do_update_repository(backup_repository, acting_user=None,
                                 password="not the right one")
    run = runs.run_backup(plan)
    assert run.outcome == Outcome.FAILED
    assert "Wrong repository password" in run.error
    with pytest.raises(InvalidInput, match="does not open"):
        actions.do_init_repository(backup_repository, acting_user=None)
    assert [entry.kind for entry in queries.run_history(plan=plan)] == [RunKind.BACKUP] * 2
