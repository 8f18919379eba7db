"""A PostgreSQL database: ``pg_dump`` streamed into restic, restored with ``pg_restore``.

Parameters: ``database`` (required), ``host`` (127.0.0.1, or a socket
directory), ``port`` (5432), ``user`` (postgres), ``password`` (stored encrypted).

Consistency: one REPEATABLE READ transaction exports its snapshot; pg_dump
reads that very snapshot (``--snapshot``), and so does the fingerprint — for
each table its row count and the sum of a 64-bit hash of every row
(:func:`chaton.adapters.postgres.table_fingerprints`), computed by the server
while the dump streams. The dump goes from pg_dump's pipe into ``restic
backup --stdin``: it never lands on the disk in clear.

A drill starts a throwaway PostgreSQL (:class:`TemporaryPostgres`) in the
scratch directory, streams the dump into ``pg_restore`` there, and compares
every table's rows and checksum.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import ValidationInfo, field_validator

from chaton.adapters.postgres import (
    ConsistentRead,
    Database,
    PostgresError,
    TemporaryPostgres,
    create_database,
    pg_dump_command,
    pg_restore_command,
    table_fingerprints,
)
from chaton.adapters.restic import SourceFailed
from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    Param,
    Port,
    RequiredText,
    ResticClient,
    SourceParams,
    Text,
    Verification,
)
from chaton.core.errors import InvalidInput
from chaton.core.servers import free_port

#: The name of the database a drill restores into, on its throwaway server.
DRILL_DATABASE = "drill"


def compare_tables(verification: Verification, expected: Mapping[str, Any],
                   found: Mapping[str, Any]) -> None:
    """Record in ``verification`` the comparison of two ``{table: {rows, checksum}}`` maps."""
    verification.compare("tables", sorted(expected), sorted(found))
    for table in sorted(set(expected) & set(found)):
        verification.compare("table_rows", expected[table]["rows"], found[table]["rows"],
                             table=table)
        verification.compare("table_checksum", expected[table]["checksum"],
                             found[table]["checksum"], table=table)


def summarise(verification: Verification, expected: Mapping[str, Any],
              found: Mapping[str, Any]) -> None:
    """Fill ``expected`` and ``found`` with the totals a person reads first."""
    for target, tables in ((verification.expected, expected), (verification.found, found)):
        target["tables"] = len(tables)
        target["rows"] = sum(int(table["rows"]) for table in tables.values())
        target["per_table"] = dict(tables)


class PostgresParams(SourceParams):
    database: Annotated[RequiredText, Param(gettext_lazy("Database"))]
    host: Annotated[Text, Param(gettext_lazy("Host"), gettext_lazy(
        "A name, an address, or a socket directory."))] = "127.0.0.1"
    port: Annotated[Port, Param(gettext_lazy("Port"))] = 5432
    user: Annotated[Text, Param(gettext_lazy("User"))] = "postgres"
    password: Annotated[Text, Param(gettext_lazy("Password"), gettext_lazy("Stored encrypted."),
                                    secret=True)] = ""

    @field_validator("host", "user", mode="after")
    @classmethod
    def _default_when_empty(cls, value: str, info: ValidationInfo) -> str:
        return value or str(cls.model_fields[str(info.field_name)].default)


class PostgresSource(DataSource):
    kind = "postgres"
    label = gettext_lazy("PostgreSQL database")
    Params = PostgresParams
    extension = "pgdump"

    @property
    def database(self) -> Database:
        return Database(name=self.params["database"], host=self.params.get("host", "127.0.0.1"),
                        port=int(self.params.get("port", 5432)),
                        user=self.params.get("user", "postgres"),
                        password=self.params.get("password", ""))

    def backup(self, context: BackupContext) -> BackupResult:
        """Stream pg_dump into restic and fingerprint the same snapshot meanwhile.

        Raise PostgresUnavailable when the database cannot be reached (before
        anything is written), SourceFailed when pg_dump fails half way (its
        partial snapshot is forgotten), and ResticError.
        """
        database = self.database
        with ConsistentRead(database) as read, ThreadPoolExecutor(max_workers=1) as executor:
            # The server computes the checksums while it streams the dump: same snapshot,
            # no second pass over the dump in Python.
            fingerprints = executor.submit(read.fingerprints)
            try:
                summary = context.restic.backup_stream(
                    pg_dump_command(database, snapshot=read.snapshot), filename=self.filename,
                    tags=context.tags, host=context.host, time=context.time,
                    producer_environment=database.environment(), progress=context.progress,
                    timeout=context.timeout, secrets=self.secrets())
            except BaseException:
                fingerprints.cancel()
                raise
            try:
                tables = fingerprints.result()
            except PostgresError:
                context.restic.forget_snapshots([summary.snapshot_id])
                raise
        return BackupResult.of(summary, {"database": database.name, "tables": tables})

    def restore_to(self, restic: ResticClient, snapshot_id: str, target: Path) -> str:
        """Restore the dump file under ``target``; a ``postgresql://`` URL restores into that
        database instead (which must exist). Raise ResticError, PostgresError."""
        text = str(target)
        if text.startswith(("postgres://", "postgresql://")):
            database = database_from_url(text)
            self._load(restic, snapshot_id, database, clean=False)
            return _("database %(name)s on %(host)s:%(port)s") % {
                "name": database.name, "host": database.host, "port": database.port}
        return super().restore_to(restic, snapshot_id, target)

    def _load(self, restic: ResticClient, snapshot_id: str, database: Database, *,
              clean: bool) -> None:
        """Stream the snapshot's dump into pg_restore on ``database``. Raise SourceFailed."""
        result = restic.dump_into(snapshot_id, f"/{self.filename}",
                                  pg_restore_command(database, clean=clean),
                                  consumer_environment=database.environment(),
                                  secrets=[database.password] if database.password else [])
        if result.consumer.returncode != 0:
            lines = [line for line in result.consumer.stderr.splitlines() if line.strip()]
            raise SourceFailed(_("pg_restore failed: %(error)s")
                               % {"error": " | ".join(lines[-3:]) or result.consumer.returncode},
                               detail=result.consumer.stderr,
                               returncode=result.consumer.returncode)

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        """Replace the database's objects by the dump's, in one transaction (pg_restore
        ``--clean --single-transaction``): a failure leaves it as it was."""
        self._load(restic, snapshot_id, self.database, clean=True)
        return _("database %(name)s restored in place") % {"name": self.database.name}

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        server = TemporaryPostgres(scratch / "postgres", free_port())
        server.start()
        try:
            scratch_server = Database(name="postgres", host="127.0.0.1", port=server.port)
            database = create_database(scratch_server, DRILL_DATABASE)
            self._load(restic, snapshot_id, database, clean=False)
            with database.connect() as connection:
                found = table_fingerprints(connection)
        finally:
            server.stop()
        expected = dict(fingerprint.get("tables", {}))
        verification = Verification()
        compare_tables(verification, expected, found)
        summarise(verification, expected, found)
        return verification


def database_from_url(url: str) -> Database:
    """Given ``postgresql://user:password@host:port/name``, return the database.

    Raise InvalidInput when the URL names no database.
    """
    parts = urllib.parse.urlsplit(url)
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    if not name:
        raise InvalidInput(_("The database URL must name a database."), field="target")
    try:
        port = parts.port or 5432
    except ValueError:
        raise InvalidInput(_("The database URL has an invalid port."), field="target") from None
    return Database(name=name, host=parts.hostname or "127.0.0.1", port=port,
                    user=urllib.parse.unquote(parts.username or "postgres"),
                    password=urllib.parse.unquote(parts.password or ""))
