"""Rebuild Chaton from a repository on a new machine: ``chaton restore --from-repository``.

Given a repository's location and password, and optionally the secrets key
(all three are in the recovery kit, :mod:`chaton.backups.recovery`):

1. :func:`read_backup` finds the newest backup of Chaton's own database in
   the repository (a snapshot tagged ``chaton`` holding one ``NAME.sqlite3``
   that is a Chaton database), the secrets key and the directory's LDIF of
   the same plan, and checks everything **in memory**: SQLite's integrity
   check, and that the key decrypts the database's repository passwords (the
   kit's key, or else the one backed up in the repository). Nothing is
   written before every check passed, so a wrong password or key leaves the
   data directory as new as it was.
2. :func:`write_backup` writes the database file and ``secrets.key`` (mode
   600) into the brand-new data directory and, for a slapd managed by Chaton,
   loads the LDIF into a new one with ``slapadd``; the caller then migrates
   the database and lets the directory reconcile (the database is the truth:
   whatever changed between the two snapshots is written).
3. :func:`service_data` lists what else the repositories hold (services'
   databases, volumes, files): the newest snapshot of each source and the
   command that restores it.

The restore is recorded as an audit row of the restored database
(:func:`do_record_rebuild`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from chaton.adapters import restic as restic_adapter
from chaton.adapters.restic import Snapshot
from chaton.backups.errors import describe
from chaton.backups.sources.base import ResticClient
from chaton.backups.sources.ldap import parse_ldif
from chaton.backups.sources.secrets_key import FILENAME as KEY_FILENAME
from chaton.backups.sources.secrets_key import key_id
from chaton.core import audit, secrets
from chaton.core.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from chaton.backups.models import Repository
    from chaton.directory.models import Account

#: A snapshot of Chaton's own SQLite database holds exactly this one path.
_DATABASE_PATH = re.compile(r"^/([a-z][a-z0-9-]{0,63})\.sqlite3$")
#: Variables restic reads for S3 and the like: the kit's restore command exports them.
_STORAGE_VARIABLES = re.compile(r"^(AWS_|B2_|AZURE_|GOOGLE_|OS_|ST_|RCLONE_)")


def storage_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Given the process environment, return the variables restic needs for remote storage."""
    return {name: value for name, value in environ.items() if _STORAGE_VARIABLES.match(name)}


def _tag(snapshot: Snapshot, prefix: str) -> str:
    for tag in snapshot.tags:
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return ""


def _nearest(snapshots: list[Snapshot], moment: dt.datetime) -> Snapshot | None:
    """Return the snapshot taken nearest ``moment`` (the same run's), None when there is none."""
    if not snapshots:
        return None
    return min(snapshots, key=lambda snapshot: (abs(snapshot.time - moment), -snapshot.time
                                                 .timestamp()))


@dataclass
class Backup:
    """What was read from the repository and checked, not yet written anywhere."""

    database_snapshot: Snapshot
    plan: str
    database: bytes
    secrets_key: str
    #: Where the key came from: "kit" or "repository".
    key_origin: str
    directory_snapshot: Snapshot | None = None
    directory_source: str = ""
    ldif: bytes = b""
    #: The base DN of the LDIF (its first entry's DN).
    ldif_base_dn: str = ""
    entries: int = 0
    notes: list[str] = field(default_factory=list)


def _open_database(data: bytes) -> sqlite3.Connection:
    """Given a database file's bytes, return it opened in memory. Raise sqlite3.DatabaseError."""
    from chaton.backups.sources.chaton import _rollback_journal

    connection = sqlite3.connect(":memory:")
    connection.deserialize(_rollback_journal(data))
    return connection


def _is_chaton_database(connection: sqlite3.Connection) -> bool:
    try:
        names = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        integrity = connection.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError:
        return False
    return {"backups_plan", "backups_source", "django_migrations"} <= names and bool(
        integrity) and integrity[0] == "ok"


def _stored_ciphertexts(connection: sqlite3.Connection) -> list[str]:
    return [row[0] for row in connection.execute(
        "SELECT password_encrypted FROM backups_repository WHERE password_encrypted != ''")]


def _directory_source(connection: sqlite3.Connection, plan: str) -> str:
    """Return the name of the plan's source that backs up Chaton's own directory, or ""."""
    rows = connection.execute(
        "SELECT s.name, s.params FROM backups_source s JOIN backups_plan p ON s.plan_id = p.id "
        "WHERE p.name = ? AND s.kind = 'ldap' ORDER BY s.name", (plan,))
    for name, params in rows:
        values = json.loads(params) if isinstance(params, str) else params
        if isinstance(values, dict) and values.get("chaton_directory"):
            return str(name)
    return ""


def _choose_key(connection: sqlite3.Connection, kit_key: str, backed_up_key: str
                ) -> tuple[str, str]:
    """Return (the key that opens the database's secrets, "kit" or "repository").

    A key given (the kit's) must open them: another collective's key is an
    error, never silently replaced. Without one, the key backed up in the
    repository is used. Raise InvalidInput when the key does not open them.
    """
    ciphertexts = _stored_ciphertexts(connection)
    if kit_key:
        if not secrets.is_valid_key(kit_key):
            raise InvalidInput(_("The secrets key given is not a key: 44 characters of URL-safe "
                                 "base64 are expected."), field="secrets_key")
        if not all(secrets.decrypts(kit_key, text) for text in ciphertexts):
            raise InvalidInput(_("The secrets key given does not open this backup's secrets "
                                 "(key id %(id)s): it is another installation's key.")
                               % {"id": key_id(kit_key)}, field="secrets_key")
        return kit_key.strip(), "kit"
    if backed_up_key and secrets.is_valid_key(backed_up_key) and all(
            secrets.decrypts(backed_up_key, text) for text in ciphertexts):
        return backed_up_key, "repository"
    raise InvalidInput(_("The repository holds no secrets key that opens this backup's "
                         "secrets: give the one of the recovery kit."), field="secrets_key")


def read_backup(restic: ResticClient, *, secrets_key: str = "", snapshot_id: str = "",
                step: Callable[[str], Any] | None = None) -> Backup:
    """Find and check, in memory, the newest backup of Chaton in the repository.

    ``secrets_key`` is the kit's (empty: the one backed up in the repository);
    ``snapshot_id`` picks a backup of the database other than the newest.
    ``step`` is told what is being done (for a progress display). Raise
    InvalidInput for a wrong password or key, NotFound when the repository
    holds no backup of Chaton, BackupError for other restic failures.
    """
    say = step or (lambda text: None)
    say(_("Reading the repository's snapshots…"))
    try:
        snapshots = restic.snapshots(tags=["chaton"])
    except restic_adapter.WrongPassword:
        raise InvalidInput(_("The password does not open the repository at %(location)s.")
                           % {"location": restic.location}, field="password") from None
    except restic_adapter.RepositoryMissing:
        raise InvalidInput(_("There is no restic repository at %(location)s.")
                           % {"location": restic.location}, field="location") from None
    except restic_adapter.ResticError as error:
        from chaton.backups.errors import BackupError

        raise BackupError(describe(error)) from None
    candidates = [snapshot for snapshot in reversed(snapshots)
                  if len(snapshot.paths) == 1 and _DATABASE_PATH.match(snapshot.paths[0])
                  and _tag(snapshot, "plan:")]
    if snapshot_id:
        candidates = [snapshot for snapshot in candidates if snapshot.matches(snapshot_id)]
    for snapshot in candidates:
        say(_("Reading Chaton's database from snapshot %(id)s…") % {"id": snapshot.short_id})
        data = restic.dump(snapshot.id, snapshot.paths[0])
        try:
            connection = _open_database(data)
        except sqlite3.DatabaseError:
            continue
        try:
            if not _is_chaton_database(connection):
                continue
            return _complete(restic, snapshots, snapshot, data, connection, secrets_key, say)
        finally:
            connection.close()
    raise NotFound(_("The repository at %(location)s holds no backup of Chaton's own database "
                     "(SQLite).") % {"location": restic.location}, field="location")


def _complete(restic: ResticClient, snapshots: list[Snapshot], database_snapshot: Snapshot,
              data: bytes, connection: sqlite3.Connection, kit_key: str,
              say: Callable[[str], Any]) -> Backup:
    """Given the database's snapshot, read the key and the directory of the same plan."""
    plan = _tag(database_snapshot, "plan:")
    of_plan = [snapshot for snapshot in snapshots if f"plan:{plan}" in snapshot.tags]
    key_snapshot = _nearest([snapshot for snapshot in of_plan
                             if snapshot.paths == (f"/{KEY_FILENAME}",)],
                            database_snapshot.time)
    backed_up_key = ""
    if key_snapshot is not None:
        say(_("Reading the secrets key from snapshot %(id)s…") % {"id": key_snapshot.short_id})
        backed_up_key = restic.dump(key_snapshot.id, f"/{KEY_FILENAME}").decode(
            "ascii", "replace").strip()
    key, origin = _choose_key(connection, kit_key, backed_up_key)
    backup = Backup(database_snapshot=database_snapshot, plan=plan, database=data,
                    secrets_key=key, key_origin=origin)
    if kit_key and backed_up_key and key_id(kit_key) != key_id(backed_up_key):
        backup.notes.append(_("The key backed up in the repository differs from the kit's; the "
                              "kit's opens the database's secrets and is used."))
    source = _directory_source(connection, plan)
    if source:
        backup.directory_source = source
        directory_snapshot = _nearest([snapshot for snapshot in of_plan
                                       if f"source:{source}" in snapshot.tags],
                                      database_snapshot.time)
        if directory_snapshot is not None:
            say(_("Reading the directory from snapshot %(id)s…")
                % {"id": directory_snapshot.short_id})
            backup.directory_snapshot = directory_snapshot
            backup.ldif = restic.dump(directory_snapshot.id, directory_snapshot.paths[0])
            entries = parse_ldif(backup.ldif)
            backup.entries = len(entries)
            backup.ldif_base_dn = entries[0][0] if entries else ""
    return backup


# -- writing ------------------------------------------------------------------------------


def database_path() -> Path:
    """Return the SQLite file Chaton's database lives in. Raise InvalidInput for PostgreSQL."""
    database = settings.DATABASES["default"]
    if "sqlite" not in database["ENGINE"]:
        raise InvalidInput(_("Chaton is configured with PostgreSQL here; this command restores "
                             "an SQLite database. Leave database_url empty for the restore."),
                           field="database_url")
    return Path(str(database["NAME"]))


def refuse_unless_new() -> None:
    """Raise Conflict when the data directory already holds a Chaton (database, key, slapd)."""
    data_dir = Path(settings.DATA_DIR)
    taken = [path for path in (database_path(), data_dir / KEY_FILENAME)
             if path.exists() and path.stat().st_size > 0]
    slapd_data = data_dir / "slapd" / "data"
    if slapd_data.exists() and any(slapd_data.iterdir()):
        taken.append(slapd_data)
    if taken:
        raise Conflict(_("The data directory %(path)s is not new (it holds %(what)s): restore "
                         "into a new, empty data directory.")
                       % {"path": data_dir, "what": ", ".join(str(path) for path in taken)},
                       field="data_dir")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def write_database_and_key(backup: Backup) -> None:
    """Write the database file and ``secrets.key`` (both mode 600) into the data directory."""
    from chaton.backups.sources.chaton import _rollback_journal

    _write_private(database_path(), _rollback_journal(backup.database))
    _write_private(Path(settings.DATA_DIR) / KEY_FILENAME,
                   (backup.secrets_key + "\n").encode("ascii"))


def load_directory(backup: Backup) -> int:
    """Load the backed-up LDIF into a new managed slapd (stopped); return the entries loaded.

    Raise InvalidInput when the LDIF is of another base DN than ``ldap.base_dn``,
    SlapdError and CommandError when slapd's tools fail.
    """
    import urllib.parse

    from chaton.adapters.ldap import normalize_dn
    from chaton.adapters.slapd import SLAPADD, ManagedSlapd
    from chaton.core import runner
    from chaton.directory.backend import managed_admin_password, managed_slapd_dir

    base_dn = settings.CHATON.ldap.base_dn
    if backup.ldif_base_dn and normalize_dn(backup.ldif_base_dn) != normalize_dn(base_dn):
        raise InvalidInput(_("The directory was backed up with base DN %(found)s, and ldap.base_dn "
                             "here is %(configured)s: set CHATON_LDAP_BASE_DN=%(found)s.")
                           % {"found": backup.ldif_base_dn, "configured": base_dn},
                           field="base_dn")
    port = urllib.parse.urlsplit(settings.CHATON.ldap.url).port or 389
    server = ManagedSlapd(managed_slapd_dir(), port=port, base_dn=base_dn,
                          admin_password=managed_admin_password())
    server.write_config()
    runner.run([SLAPADD, "-q", "-f", str(server.config_path), "-b", base_dn],
               input=backup.ldif, timeout=600)
    return backup.entries


def remove_written() -> None:
    """Undo a restore that failed half way: remove the database, the key and the slapd data."""
    import shutil

    for path in (database_path(), Path(settings.DATA_DIR) / KEY_FILENAME):
        path.unlink(missing_ok=True)
    shutil.rmtree(Path(settings.DATA_DIR) / "slapd", ignore_errors=True)


# -- after the restore ------------------------------------------------------------------------


def do_record_rebuild(backup: Backup, *, location: str, acting_user: Account | None
                      ) -> str | None:
    """Record in the restored database that it was rebuilt from ``location``.

    The copy was taken while a backup ran: what it says is running was cut
    short there, and is marked so. Return the name of the plan's repository
    when it is recorded at another location than ``location`` (it moved), else None.
    """
    from chaton.backups.models import Drill, DrillOutcome, Outcome, Plan, Run, SourceResult
    from chaton.core import clock

    plan = Plan.objects.select_related("repository").filter(name=backup.plan).first()
    message = _("Unknown: Chaton's database was restored from a copy taken while this ran.")
    now = clock.now()
    with transaction.atomic():
        Run.objects.filter(outcome=Outcome.RUNNING).update(
            outcome=Outcome.FAILED, finished_at=now, error=message)
        SourceResult.objects.filter(outcome=Outcome.RUNNING).update(
            outcome=Outcome.FAILED, finished_at=now, error=message)
        Drill.objects.filter(outcome=DrillOutcome.RUNNING).update(
            outcome=DrillOutcome.FAILED, details=message)
        if plan is None:
            return None
        audit.record("backups.rebuild", plan, acting_user=acting_user,
                     actor_label=None if acting_user else "cli",
                     after={"location": location, "database_snapshot": backup.database_snapshot.id,
                            "directory_snapshot": backup.directory_snapshot.id
                            if backup.directory_snapshot else "",
                            "key_from": backup.key_origin, "key_id": key_id(backup.secrets_key)})
    moved = plan.repository.location.rstrip("/") != location.rstrip("/")
    return plan.repository.name if moved else None


@dataclass(frozen=True)
class ServiceData:
    """A source Chaton did not restore itself, and how to restore it."""

    plan: str
    source: str
    kind: str
    repository: str
    snapshot: Snapshot | None
    #: The command to run (or "" when there is no snapshot), and a note.
    command: str
    note: str = ""


def service_data(backup: Backup, *, client_for: Callable[[Repository], ResticClient] | None = None
                 ) -> list[ServiceData]:
    """List every source of every plan besides Chaton's own, with its newest snapshot.

    Each repository is asked once; one that cannot be read is named in the notes.
    """
    from chaton.backups import engine
    from chaton.backups.models import Outcome, Plan, SourceResult

    factory = client_for or engine.restic_for
    rows: list[ServiceData] = []
    snapshots_of: dict[int, list[Snapshot] | str] = {}
    for plan in Plan.objects.select_related("repository").order_by("name"):
        for source in plan.sources.order_by("name"):
            if source.kind in ("chaton", "secrets_key") or (
                    source.kind == "ldap" and source.params.get("chaton_directory")):
                continue
            repository = plan.repository
            if repository.pk not in snapshots_of:
                try:
                    snapshots_of[repository.pk] = factory(repository).snapshots(tags=["chaton"])
                except (restic_adapter.ResticError, secrets.SecretError) as error:
                    snapshots_of[repository.pk] = describe(error)
            found = snapshots_of[repository.pk]
            if isinstance(found, str):
                rows.append(ServiceData(plan.name, source.name, source.kind, repository.name,
                                        None, "", _("The repository cannot be read: %(error)s")
                                        % {"error": found}))
                continue
            mine = [snapshot for snapshot in found
                    if {f"plan:{plan.name}", f"source:{source.name}"} <= set(snapshot.tags)]
            newest = mine[-1] if mine else None
            if newest is None:
                rows.append(ServiceData(plan.name, source.name, source.kind, repository.name,
                                        None, "", _("No snapshot yet.")))
                continue
            try:
                refusal = engine.data_source(source).in_place_refusal()
            except (InvalidInput, secrets.SecretError) as error:
                refusal = str(error)
            target = "--to /var/tmp/restored" if refusal else "--in-place"
            # restic reports short or full ids: either names the snapshot.
            known = any(newest.matches(recorded) for recorded in SourceResult.objects.filter(
                source=source, outcome=Outcome.SUCCEEDED).values_list("snapshot_id", flat=True))
            if known:
                command = (f"chaton backup restore {plan.name} {source.name} "
                           f"--snapshot {newest.short_id} {target}")
            else:
                # Newer than the restored database: only restic knows it.
                command = f"restic restore {newest.short_id} --target /var/tmp/restored"
            rows.append(ServiceData(plan.name, source.name, source.kind, repository.name,
                                    newest, command, refusal or ""))
    return rows
