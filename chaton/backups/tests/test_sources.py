"""Every data source keeps the contract: parameters checked, back up, restore, drill, refuse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chaton.adapters.restic import SourceFailed
from chaton.adapters.restic.fake import FakeRestic
from chaton.backups.sources import BackupContext, RestoreRefused, build, kind_class, kinds
from chaton.backups.sources.ldap import fingerprint_entries, parse_ldif, write_ldif
from chaton.backups.sources.mariadb import MariadbSource
from chaton.core.errors import InvalidInput

CONTEXT_TAGS = ["chaton", "plan:unit", "source:s"]


def context(fake: FakeRestic) -> BackupContext:
    return BackupContext(restic=fake, tags=CONTEXT_TAGS, host="unit-host",
                         time=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC))


@pytest.mark.parametrize("kind, params, field", [
    ("postgres", {}, "database"),
    ("postgres", {"database": "db", "port": 70000}, "port"),
    ("postgres", {"database": "db", "colour": "red"}, "colour"),
    ("mariadb", {"database": "db\nDROP"}, "database"),
    ("ldap", {"base_dn": "dc=x", "url": "http://nope"}, "url"),
    ("ldap", {"base_dn": "dc=x", "config": "relative/slapd.conf"}, "config"),
    ("ldap", {"chaton_directory": True, "url": "ldap://x"}, "chaton_directory"),
    ("chaton", {"anything": 1}, "anything"),
    ("paths", {"paths": []}, "paths"),
    ("paths", {"paths": ["relative/dir"]}, "paths"),
    ("docker_volume", {"volume": "../etc"}, "volume"),
])
def test_each_kind_refuses_bad_parameters_naming_the_field(kind: str, params: dict[str, object],
                                                           field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        kind_class(kind).clean_params(params)
    assert refused.value.field == field


def test_every_kind_is_registered_and_cleans_good_parameters() -> None:
    assert set(kinds()) == {"postgres", "mariadb", "ldap", "chaton", "paths", "docker_volume",
                          "secrets_key"}
    assert kind_class("postgres").clean_params({"database": "shop", "port": "5433"}) == {
        "database": "shop", "host": "127.0.0.1", "port": 5433, "user": "postgres",
        "password": ""}
    assert kind_class("paths").clean_params({"paths": "/srv/data/", "exclude": "*.tmp"}) == {
        "paths": ["/srv/data"], "exclude": ["*.tmp"]}
    assert kind_class("ldap").clean_params({"chaton_directory": True}) == {
        "chaton_directory": True}
    with pytest.raises(InvalidInput, match="Unknown kind"):
        kind_class("floppy")


def test_paths_back_up_restore_and_drill_through_the_contract(tmp_path: Path) -> None:
    fake = FakeRestic()
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("alpha")
    source = build("paths", "files", {"paths": [str(files)], "exclude": []})
    result = source.backup(context(fake))
    assert result.fingerprint == {"paths": [str(files)], "files": 1, "bytes": 5}
    assert fake.listed[0].tags == tuple(CONTEXT_TAGS)

    scratch = tmp_path / "scratch"
    verification = source.drill(fake, result.snapshot_id, result.fingerprint, scratch)
    assert verification.passed, verification.differences
    assert verification.found["files"] == 1

    # A restored copy that differs from the fingerprint fails the drill, saying how.
    tampered = source.drill(fake, result.snapshot_id, {**result.fingerprint, "bytes": 6},
                            tmp_path / "scratch-2")
    assert not tampered.passed
    assert tampered.lines == ["bytes: expected 6, found 5"]

    (files / "a.txt").write_text("changed")
    source.restore_in_place(fake, result.snapshot_id)
    assert (files / "a.txt").read_text() == "alpha"

    with pytest.raises(SourceFailed, match="No such directory"):
        build("paths", "gone", {"paths": [str(tmp_path / "missing")], "exclude": []}).backup(
            context(fake))


@pytest.mark.django_db(transaction=True)
def test_chatons_sqlite_database_is_copied_in_memory_and_drilled(tmp_path: Path) -> None:
    from chaton.members.models import Person

    Person.objects.create(full_name="Prudence Gratin", email="prudence@example.org")
    fake = FakeRestic()
    source = build("chaton", "database", {})
    result = source.backup(context(fake))
    assert result.fingerprint["tables"]["members_person"]["rows"] == 1
    stored = fake.files[fake.listed[0].id]["/database.sqlite3"]
    assert stored.startswith(b"SQLite format 3\x00")
    verification = source.drill(fake, result.snapshot_id, result.fingerprint, tmp_path)
    assert verification.passed, verification.differences
    assert "SQLite integrity check" in verification.labels
    assert source.in_place_refusal()
    with pytest.raises(RestoreRefused):
        source.restore_in_place(fake, result.snapshot_id)


def test_ldap_fingerprint_ignores_order_case_and_operational_attributes() -> None:
    ldif = (b"dn: dc=chaton,dc=test\nobjectClass: dcObject\nobjectClass: organization\n"
            b"dc: chaton\no: chaton\nentryUUID: 1234\n\n"
            b"dn: uid=ida,ou=people,dc=chaton,dc=test\nobjectClass: inetOrgPerson\n"
            b"uid: ida\ncn: Ida\nsn: Pamplemousse\nmodifyTimestamp: 20240101000000Z\n\n")
    entries = parse_ldif(ldif)
    assert [dn for dn, _attributes in entries] == ["dc=chaton,dc=test",
                                                   "uid=ida,ou=people,dc=chaton,dc=test"]
    read_back = {
        "uid=IDA, ou=People,dc=chaton,dc=test": {"sn": [b"Pamplemousse"], "cn": [b"Ida"],
                                                 "uid": [b"ida"],
                                                 "objectclass": [b"inetOrgPerson"]},
        "dc=chaton,dc=test": {"o": [b"chaton"], "dc": [b"chaton"],
                              "objectclass": [b"organization", b"dcObject"]},
    }
    expected = fingerprint_entries(entries)
    assert expected["entries"] == 2
    assert fingerprint_entries(read_back.items()) == expected
    changed = dict(read_back)
    changed["dc=chaton,dc=test"] = {**read_back["dc=chaton,dc=test"], "o": [b"other"]}
    assert fingerprint_entries(changed.items())["content_sha256"] != expected["content_sha256"]
    assert parse_ldif(write_ldif(entries)) == entries
    refused = build("ldap", "directory", {"chaton_directory": True})
    assert "chaton directory sync" in (refused.in_place_refusal() or "")


def test_mariadb_never_puts_the_password_on_a_command_line() -> None:
    source = MariadbSource("shop", MariadbSource.clean_params(
        {"database": "shop", "user": "backup", "password": "Sup3r-secret"}))
    command = source.dump_command()
    assert "--single-transaction" in command and command[-1] == "shop"
    assert not any("Sup3r-secret" in part for part in command)
    assert source._environment()["MYSQL_PWD"] == "Sup3r-secret"
    assert source.secrets() == ["Sup3r-secret"]


def test_docker_volume_is_a_directory_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    from chaton.backups.sources.docker_volume import DockerVolumeSource

    volume = tmp_path / "volume-data"
    volume.mkdir()
    (volume / "db.txt").write_text("rows")
    monkeypatch.setattr(DockerVolumeSource, "mountpoint", lambda self: str(volume))
    fake = FakeRestic()
    source = build("docker_volume", "pads", {"volume": "pads_data"})
    result = source.backup(context(fake))
    assert result.fingerprint["volume"] == "pads_data" and result.fingerprint["files"] == 1
    assert source.drill(fake, result.snapshot_id, result.fingerprint, tmp_path / "s").passed


def test_a_copy_of_a_wal_database_loads_back(tmp_path):
    """Chaton's SQLite runs in WAL mode: its copy must still open from memory in a drill."""
    import sqlite3

    from chaton.backups.sources.chaton import _rollback_journal

    live = sqlite3.connect(tmp_path / "live.sqlite3")
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("CREATE TABLE pads (name TEXT)")
    live.execute("INSERT INTO pads VALUES ('ordre-du-jour')")
    live.commit()
    copy = sqlite3.connect(":memory:")
    live.backup(copy)
    data = copy.serialize()
    assert (data[18], data[19]) == (2, 2)  # WAL's file format, copied along
    restored = sqlite3.connect(":memory:")
    restored.deserialize(_rollback_journal(data))
    assert restored.execute("SELECT name FROM pads").fetchall() == [("ordre-du-jour",)]
    assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
