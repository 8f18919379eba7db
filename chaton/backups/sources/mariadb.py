"""A MariaDB or MySQL database: ``mariadb-dump`` streamed into restic.

Parameters: ``database`` (required), ``host`` (127.0.0.1), ``port`` (3306),
``user`` (root), ``password`` (stored encrypted, handed over as ``MYSQL_PWD``,
never on a command line).

``--single-transaction`` gives a consistent dump of InnoDB tables without
locking them. The fingerprint is the list of tables and their row counts,
read just before the dump (in its own transaction: on a busy database a count
may differ from the dump by the rows written in between).

Kept small on purpose: no MariaDB server runs on the test machines, so a
drill cannot load the dump into a throwaway server. It restores the dump to
the scratch directory and checks that it is complete (mariadb-dump's closing
``-- Dump completed`` line) and that it creates every table the fingerprint
lists. An in-place restore streams the dump into the ``mariadb`` client.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import ValidationInfo, field_validator

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
from chaton.core import runner

_CREATE_TABLE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)`", re.MULTILINE)


def _program(*names: str) -> str:
    """Return the first of ``names`` installed (MariaDB renamed mysqldump to mariadb-dump)."""
    for name in names:
        if shutil.which(name):
            return name
    return names[0]


class MariadbParams(SourceParams):
    database: Annotated[RequiredText, Param(gettext_lazy("Database"))]
    host: Annotated[Text, Param(gettext_lazy("Host"))] = "127.0.0.1"
    port: Annotated[Port, Param(gettext_lazy("Port"))] = 3306
    user: Annotated[Text, Param(gettext_lazy("User"))] = "root"
    password: Annotated[Text, Param(gettext_lazy("Password"), gettext_lazy("Stored encrypted."),
                                    secret=True)] = ""

    @field_validator("host", "user", mode="after")
    @classmethod
    def _default_when_empty(cls, value: str, info: ValidationInfo) -> str:
        return value or str(cls.model_fields[str(info.field_name)].default)


class MariadbSource(DataSource):
    kind = "mariadb"
    label = gettext_lazy("MariaDB or MySQL database")
    Params = MariadbParams
    extension = "sql"

    def _connection_options(self) -> list[str]:
        return [f"--host={self.params['host']}", f"--port={self.params['port']}",
                f"--user={self.params['user']}"]

    def _environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        if self.params.get("password"):
            environment["MYSQL_PWD"] = self.params["password"]
        return environment

    def dump_command(self) -> list[str]:
        """Return the command that writes the database to standard output."""
        return [_program("mariadb-dump", "mysqldump"), *self._connection_options(),
                "--single-transaction", "--quick", "--routines", "--triggers", "--events",
                "--hex-blob", "--databases", self.params["database"]]

    def client_command(self, *arguments: str) -> list[str]:
        """Return the ``mariadb`` client command with the connection options."""
        return [_program("mariadb", "mysql"), *self._connection_options(), *arguments]

    def row_counts(self) -> dict[str, int]:
        """Return each table's exact row count. Raise CommandError when the server is out of
        reach."""
        database = self.params["database"].replace("`", "``")
        listing = runner.run(self.client_command(
            "--batch", "--skip-column-names", "--execute",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name", self.params["database"]),
            env=self._environment(), secrets=self.secrets(), timeout=60)
        tables = [line for line in listing.stdout.splitlines() if line]
        if not tables:
            return {}
        query = " UNION ALL ".join(
            f"SELECT '{name.replace(chr(39), chr(39) * 2)}', COUNT(*) FROM "  # noqa: S608
            f"`{database}`.`{name.replace('`', '``')}`" for name in tables)
        counted = runner.run(self.client_command("--batch", "--skip-column-names", "--execute",
                                                 query), env=self._environment(),
                             secrets=self.secrets(), timeout=3600)
        counts = {}
        for line in counted.stdout.splitlines():
            name, _separator, count = line.rpartition("\t")
            counts[name] = int(count)
        return counts

    def backup(self, context: BackupContext) -> BackupResult:
        counts = self.row_counts()
        summary = context.restic.backup_stream(
            self.dump_command(), filename=self.filename, tags=context.tags, host=context.host,
            time=context.time, producer_environment=self._environment(),
            progress=context.progress, timeout=context.timeout, secrets=self.secrets())
        return BackupResult.of(summary, {"database": self.params["database"],
                                         "tables": counts})

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        result = restic.dump_into(snapshot_id, f"/{self.filename}", self.client_command(),
                                  consumer_environment=self._environment(),
                                  secrets=self.secrets())
        if result.consumer.returncode != 0:
            raise SourceFailed(_("the mariadb client failed: %(error)s")
                               % {"error": result.consumer.stderr.strip()[-300:]},
                               detail=result.consumer.stderr)
        return _("database %(name)s restored in place") % {"name": self.params["database"]}

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        data = restic.dump(snapshot_id, f"/{self.filename}")
        tables = sorted(name.decode().replace("``", "`")
                        for name in _CREATE_TABLE.findall(data))
        tail = data[-200:].decode("utf-8", errors="replace")
        verification = Verification()
        verification.compare("dump_complete", True, "-- Dump completed" in tail)
        verification.compare("tables", sorted(fingerprint.get("tables", {})), tables)
        verification.expected = {"tables": dict(fingerprint.get("tables", {}))}
        verification.found = {"tables": tables, "bytes": len(data)}
        return verification
