"""``chaton backup recovery-kit`` and ``chaton restore``: from a lost server to a running Chaton.

The kit (:mod:`chaton.backups.recovery`) holds each repository's password and
Chaton's secrets key; ``chaton restore --from-repository LOCATION`` uses them
on a new machine to bring back the database, the secrets and the directory
(:mod:`chaton.backups.rebuild`), then lists the services' data it can restore.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chaton.cli import backups
from chaton.cli.runtime import console, setup_django


def _first_line(path: Path, field: str) -> str:
    """Return the first line of ``path``. Raise InvalidInput when it cannot be read."""
    from chaton.core.errors import InvalidInput

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(_("Cannot read %(path)s: %(error)s") % {"path": path, "error": error},
                           field=field) from None
    return lines[0].strip() if lines else ""


@backups.app.command("recovery-kit")
def recovery_kit(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Write the kit to FILE (mode 600) instead of the terminal.")] = None,
    confirm_stored: Annotated[bool, typer.Option(
        "--confirm-stored", help="Record that the current kit is stored off the server "
        "(the warning on /backups/ goes away); prints nothing secret.")] = False,
) -> None:
    """Show what restores Chaton on a new machine: repository passwords, the secrets key,
    the restic and ``chaton restore`` commands. Keep it off the server."""
    setup_django()
    from chaton.backups import recovery
    from chaton.cli.runtime import acting_user

    account = acting_user()
    if confirm_stored:
        recovery.do_confirm_recovery_kit_stored(acting_user=account, via="cli")
        console().print(_("Recorded: the recovery kit is stored off the server."),
                        style="green", markup=False)
        return
    kit = recovery.do_show_recovery_kit(acting_user=account, via="cli")
    text = recovery.render_text(kit)
    if output is None:
        # Plain stdout, not Rich: nothing wrapped or coloured in what people copy.
        typer.echo(text, nl=False)
    else:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        console().print(_("Recovery kit written to %(path)s: print it or move it off this "
                          "server, then delete it here.") % {"path": output}, markup=False)
    # On stderr: standard output holds the kit alone, ready to be redirected to a printer.
    typer.echo(_("Once it is stored off the server: chaton backup recovery-kit "
                 "--confirm-stored"), err=True)


def restore(
    from_repository: Annotated[str, typer.Option(
        "--from-repository", metavar="LOCATION",
        help="The repository's location, as the recovery kit gives it.")],
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", metavar="FILE", dir_okay=False,
        help="Read the repository's password from FILE (default: $CHATON_RESTORE_PASSWORD, "
        "else asked).")] = None,
    secrets_key_file: Annotated[Path | None, typer.Option(
        "--secrets-key-file", metavar="FILE", dir_okay=False,
        help="Read Chaton's secrets key from FILE (default: $CHATON_SECRETS_KEY, else asked; "
        "empty: the one backed up in the repository).")] = None,
    snapshot: Annotated[str | None, typer.Option(
        "--snapshot", metavar="ID", help="Restore this backup of the database (default: the "
        "newest).")] = None,
    no_input: Annotated[bool, typer.Option(
        "--no-input", help="Ask nothing (the password must come from a file or the "
        "environment).")] = False,
) -> None:
    """Rebuild Chaton in a new data directory from a repository: its database, its secrets
    and its directory. Then list the services' data that can be restored, and how."""
    setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from chaton.adapters.restic.client import Restic
    from chaton.backups import rebuild
    from chaton.core.errors import InvalidInput

    rebuild.refuse_unless_new()
    location = from_repository.strip()
    if password_file is not None:
        password = _first_line(password_file, "password")
    else:
        password = os.environ.get("CHATON_RESTORE_PASSWORD", "")
        if not password and not no_input:
            password = typer.prompt(_("Repository password"), hide_input=True)
    if not password:
        raise InvalidInput(_("Give the repository's password (--password-file or "
                             "CHATON_RESTORE_PASSWORD)."), field="password")
    if secrets_key_file is not None:
        key = _first_line(secrets_key_file, "secrets_key")
    else:
        key = os.environ.get("CHATON_SECRETS_KEY", "").strip()
        if not key and not no_input:
            key = typer.prompt(_("Chaton's secrets key (empty: the one in the repository)"),
                               hide_input=True, default="", show_default=False).strip()
    environment_key = os.environ.get("CHATON_SECRETS_KEY", "").strip()
    if environment_key and key != environment_key:
        # Chaton would encrypt and decrypt with the variable, not with the key restored.
        raise InvalidInput(_("CHATON_SECRETS_KEY holds another key than the one given: unset "
                             "it, or give that one."), field="secrets_key")
    client = Restic(location=location, password=password,
                    environment=rebuild.storage_environment(os.environ),
                    program=settings.CHATON.backups.restic, timezone=settings.TIME_ZONE,
                    timeout=settings.CHATON.backups.timeout_seconds)
    with console().status(_("Reading the repository…")) as status:
        backup = rebuild.read_backup(client, secrets_key=key, snapshot_id=snapshot or "",
                                     step=status.update)
    console().print(_("Chaton's database: snapshot %(id)s of %(when)s (plan %(plan)s).")
                    % {"id": backup.database_snapshot.short_id,
                       "when": timezone.localtime(backup.database_snapshot.time).strftime(
                           "%Y-%m-%d %H:%M"),
                       "plan": backup.plan}, markup=False)
    console().print(_("Secrets key: the recovery kit's.") if backup.key_origin == "kit"
                    else _("Secrets key: the one backed up in the repository."), markup=False)
    for note in backup.notes:
        console().print(note, style="yellow", markup=False)
    managed = settings.CHATON.ldap.managed
    try:
        with console().status(_("Writing the database and the key…")) as status:
            rebuild.write_database_and_key(backup)
            status.update(_("Bringing the database up to this version of Chaton…"))
            call_command("migrate", interactive=False, verbosity=0)
            if managed and backup.ldif:
                status.update(_("Loading the directory into slapd…"))
                rebuild.load_directory(backup)
    except BaseException:
        # A half restore is worse than none: leave the data directory new again.
        from django.db import connections

        connections.close_all()
        rebuild.remove_written()
        raise
    console().print(_("Database and secrets key restored in %(path)s.")
                    % {"path": settings.DATA_DIR}, style="green", markup=False)
    from chaton.cli.runtime import acting_user

    moved = rebuild.do_record_rebuild(backup, location=location, acting_user=acting_user())
    if moved is not None:
        console().print(_("Repository %(name)s is recorded at another location; if it moved: "
                          "chaton backup repo set %(name)s --location %(location)s")
                        % {"name": moved, "location": location}, style="yellow", markup=False)
    _restore_directory(backup, managed)
    _list_service_data(backup)
    console().print(_("Chaton is restored: start it with “chaton serve”. Make a new recovery "
                      "kit (chaton backup recovery-kit) if this machine's data directory or "
                      "repositories differ."), style="bold", markup=False)


def _restore_directory(backup: object, managed: bool) -> None:
    """Start the restored slapd, write what the database says differs, and report."""
    from chaton.backups.rebuild import Backup
    from chaton.cli import runtime
    from chaton.directory.reconcile import sync_all

    assert isinstance(backup, Backup)
    if not managed:
        console().print(_("The directory is another server, not managed by Chaton: compare it "
                          "with “chaton directory diff”, then “chaton directory sync”."),
                        markup=False)
        return
    if not backup.ldif:
        console().print(_("No backup of the directory was found: it is rebuilt from the "
                          "database (the accounts' passwords come with it)."), markup=False)
    else:
        console().print(_("Directory: %(count)d entries loaded from snapshot %(id)s.")
                        % {"count": backup.entries,
                           "id": backup.directory_snapshot.short_id
                           if backup.directory_snapshot else "-"}, markup=False)
    with runtime.directory_running(), console().status(
            _("Comparing the directory with the database…")):
        _plan, outcome = sync_all()
    applied = outcome.applied if outcome is not None else 0
    console().print(ngettext("Directory: %(count)d change written to match the database.",
                             "Directory: %(count)d changes written to match the database.",
                             applied) % {"count": applied} if applied else
                    _("Directory: it matches the database."), markup=False)


def _list_service_data(backup: object) -> None:
    from django.utils import timezone

    from chaton.backups.rebuild import Backup, service_data
    from chaton.backups.sources import kind_label

    assert isinstance(backup, Backup)
    with console().status(_("Listing the services' data in the repositories…")):
        rows = service_data(backup)
    if not rows:
        console().print(_("No other data is backed up: nothing else to restore."), markup=False)
        return
    # Lines, not a table: the commands are copied whole, never wrapped in a cell.
    console().print(_("Services' data that can be restored:"), style="bold", markup=False)
    for row in rows:
        when = (_("newest snapshot %(id)s of %(when)s")
                % {"id": row.snapshot.short_id,
                   "when": timezone.localtime(row.snapshot.time).strftime("%Y-%m-%d %H:%M")}
                if row.snapshot else _("no snapshot"))
        console().print(f"  {row.plan}/{row.source} ({kind_label(row.kind)}, "
                        f"{row.repository}): {when}", markup=False)
        if row.command:
            console().print(f"    {row.command}", markup=False)
        if row.note:
            console().print(f"    {row.note}", style="dim", markup=False)
