"""Chaton's own database: SQLite through its backup API, PostgreSQL through pg_dump.

No parameters: the database is the one Chaton runs on.

SQLite: the online backup API copies the live database (a consistent
snapshot, even while the web server and the worker write) into memory;
``serialize`` turns that copy into the bytes of a database file, handed to
``restic backup --stdin``. No clear copy is ever written to disk. The
fingerprint (rows and a checksum per table) is computed on that same copy. A
drill loads the snapshot back into memory (``deserialize``), runs SQLite's
``integrity_check`` and compares every table.

PostgreSQL: exactly the :mod:`postgres <chaton.backups.sources.postgres>`
source, with the connection Django uses.

An in-place restore is refused: the running Chaton holds this database open
and would overwrite it; stop Chaton, restore to a scratch place, put the file
(or the dump) back, and start it again.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    ResticClient,
    RestoreRefused,
    Verification,
)
from chaton.backups.sources.postgres import PostgresSource, compare_tables, summarise

_MASK = (1 << 64) - 1
#: Seconds the SQLite copy waits for a writer to let go of the database.
BACKUP_PATIENCE = 60.0


def sqlite_fingerprints(connection: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Return ``{table: {rows, checksum}}`` for every table of an SQLite database.

    The checksum is the sum (modulo 2⁶⁴) of a 64-bit BLAKE2 hash of each row's
    ``repr``: the rows' order does not matter, their values do.
    """
    names = [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    fingerprints: dict[str, dict[str, Any]] = {}
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        rows = 0
        total = 0
        for row in connection.execute(f"SELECT * FROM {quoted}"):  # noqa: S608
            rows += 1
            total = (total + int.from_bytes(
                hashlib.blake2b(repr(row).encode(), digest_size=8).digest(), "big")) & _MASK
        fingerprints[name] = {"rows": rows, "checksum": str(total)}
    return fingerprints


def _django_database() -> dict[str, Any]:
    from django.db import connections

    settings_dict: dict[str, Any] = connections["default"].settings_dict
    return settings_dict


def _give_up_after(seconds: float) -> Callable[[int, int, int], None]:
    """Return a backup progress callback that stops a copy still locked out after ``seconds``.

    sqlite3's backup retries a locked database forever; a writer holding it
    that long means something is wrong, and the run must fail, not hang.
    """
    deadline = time.monotonic() + seconds

    def check(status: int, remaining: int, total: int) -> None:
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError(
                f"the database stayed locked for {seconds:g} s; the copy was abandoned")

    return check


def _live_sqlite_connection() -> sqlite3.Connection:
    from django.db import connections

    connection = connections["default"]
    connection.ensure_connection()
    raw: sqlite3.Connection = connection.connection
    return raw


def _rollback_journal(data: bytes) -> bytes:
    """Given a database file's bytes, return them marked as a rollback-journal database.

    A copy of a database in WAL mode keeps WAL's file format numbers (header
    bytes 18 and 19 = 2), and SQLite then refuses to open it from memory or
    without its -wal file. The copy holds every page: 1 and 1 make it a plain
    database file any SQLite opens.
    """
    if len(data) >= 20 and (data[18], data[19]) != (1, 1):
        header = bytearray(data[:20])
        header[18] = header[19] = 1
        return bytes(header) + data[20:]
    return data


class ChatonSource(DataSource):
    kind = "chaton"
    label = gettext_lazy("Chaton's own database")
    extension = "sqlite3"

    @property
    def filename(self) -> str:
        return f"{self.name}.{'pgdump' if self._postgres() is not None else 'sqlite3'}"

    def _postgres(self) -> PostgresSource | None:
        """Return the PostgreSQL source for Chaton's database, None when it is SQLite."""
        database = _django_database()
        if "postgresql" not in database["ENGINE"]:
            return None
        return PostgresSource(self.name, {
            "database": database["NAME"], "host": database.get("HOST") or "127.0.0.1",
            "port": int(database.get("PORT") or 5432),
            "user": database.get("USER") or "postgres",
            "password": database.get("PASSWORD") or ""})

    def backup(self, context: BackupContext) -> BackupResult:
        """Copy the database consistently and stream the copy into restic. Raise ResticError,
        sqlite3.Error, PostgresError."""
        postgres = self._postgres()
        if postgres is not None:
            return postgres.backup(context)
        copy = sqlite3.connect(":memory:")
        try:
            # Django's own connection: the backup API reads a consistent snapshot of the
            # live database through it, whatever its file (or memory) name.
            _live_sqlite_connection().backup(copy, progress=_give_up_after(BACKUP_PATIENCE))
            tables = sqlite_fingerprints(copy)
            data = _rollback_journal(copy.serialize())
        finally:
            copy.close()
        summary = context.restic.backup_stream(
            data, filename=self.filename, tags=context.tags, host=context.host,
            time=context.time, progress=context.progress, timeout=context.timeout)
        return BackupResult.of(summary, {"engine": "sqlite", "tables": tables})

    def in_place_refusal(self) -> str | None:
        return _("The running Chaton holds its own database open: stop Chaton, restore to a "
                 "scratch place and put the file back by hand.")

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        raise RestoreRefused(self.in_place_refusal())

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        postgres = self._postgres()
        if postgres is not None:
            return postgres.drill(restic, snapshot_id, fingerprint, scratch)
        data = restic.dump(snapshot_id, f"/{self.filename}")
        copy = sqlite3.connect(":memory:")
        try:
            copy.deserialize(_rollback_journal(data))
            integrity = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            found = sqlite_fingerprints(copy)
        except sqlite3.DatabaseError as error:
            integrity, found = [str(error)], {}
        finally:
            copy.close()
        expected = dict(fingerprint.get("tables", {}))
        verification = Verification()
        verification.compare("sqlite_integrity", ["ok"], integrity)
        compare_tables(verification, expected, found)
        summarise(verification, expected, found)
        return verification
