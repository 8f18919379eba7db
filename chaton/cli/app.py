"""The ``chaton`` command: thin over the actions, one sub-command per task.

Every command starts Django itself (:func:`chaton.cli.runtime.setup_django`)
once its options are parsed, calls ``do_*`` actions or ``queries`` and prints
the outcome with Rich. Errors that people can act on — a refused value
(ChatonError), a bad configuration, an unreachable directory — are printed as
one line on stderr, ``chaton: error: <message>``, with exit status 2; any
other exception is a bug and keeps its traceback.

The groups (``chaton backup …``, ``chaton service …``) are the installed
apps' (``AppConfig.cli``, :mod:`chaton.core.registry`): :class:`ChatonGroup`
lists them after the commands defined here and imports a group's module only
when it runs.

Help texts are in English; what the commands print goes through gettext.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rich.table import Table
from typer.core import TyperGroup

from chaton.adapters.ldap import LdapError
from chaton.adapters.slapd import SlapdError
from chaton.cli import recovery, runtime, server
from chaton.cli.runtime import cell, console, invocation, setup_django
from chaton.core import startup
from chaton.core.errors import ChatonError, coded
from chaton.core.runner import CommandError
from chaton.project.config import ConfigError

#: Exit status for an error the user can act on (the same as a usage error).
EXIT_ERROR = 2


def one_line(message: str) -> str:
    """Return ``message`` on one line: its lines joined by `` | ``, blank ones dropped."""
    return " | ".join(line.strip() for line in message.splitlines() if line.strip())


def error_message(error: BaseException) -> str | None:
    """Given an exception, return the line to show for it, or None when it is a bug."""
    from django.db import DatabaseError

    from chaton.core.secrets import SecretError

    if isinstance(error, ChatonError):
        return str(error)
    if isinstance(error, ConfigError):
        return _translated(gettext_noop("configuration: %(error)s"), error)
    # An adapter's error, coded by the table the API and the pages read (Django is set up
    # by then: adapters are called from commands).
    failure = coded(error, with_detail=True)
    if failure is not None:
        return str(failure)
    if isinstance(error, SlapdError):
        return _translated(gettext_noop("slapd: %(error)s"), error)
    if isinstance(error, (CommandError, SecretError)):
        return str(error)
    if isinstance(error, DatabaseError):
        return _translated(gettext_noop("database: %(error)s (has “chaton init” been run?)"), error)
    return None


def gettext_noop(message: str) -> str:
    """Return ``message`` unchanged: it only marks it for ``makemessages``.

    Not Django's gettext_noop, which reads the settings: after a ConfigError
    they cannot be loaded, and the error must still be shown.
    """
    return message


def _translated(template: str, error: BaseException) -> str:
    """Translate ``template`` when Django is ready (a ConfigError may come before it is)."""
    from django.apps import apps

    if apps.ready:
        return _(template) % {"error": error}
    return template % {"error": error}


class ChatonGroup(TyperGroup):
    """The root command group: turns the errors people can act on into one line and exit 2.

    Sub-groups and commands run inside this ``invoke``, so this is the one
    place that does it.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        """Return this group's own commands, then the installed apps' groups, by order.

        When the settings cannot be read (a broken configuration), only the
        commands of this group are listed: the help still shows.
        """
        names = super().list_commands(ctx)
        try:
            groups = _app_groups(ctx)
        except Exception:  # ``chaton --help`` answers even with a broken configuration
            return names
        return [*names, *(name for name in groups if name not in names)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """Return the command or group ``cmd_name``: an app's group is imported only now."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        group = _app_groups(ctx).get(cmd_name)
        if group is None:
            return None
        from chaton.core.registry import load

        click_group = typer.main.get_group(load(group.app))
        click_group.name = group.name
        click_group.help = group.help
        return click_group

    def invoke(self, ctx: Any) -> Any:
        running_before = _long_jobs_running()
        try:
            return super().invoke(ctx)
        except Exception as error:
            message = error_message(error)
            if message is None:
                raise
            typer.echo(f"chaton: error: {one_line(message)}", err=True)
            raise typer.Exit(EXIT_ERROR) from None
        finally:
            _finish_long_jobs(besides=running_before)


def _app_groups(ctx: Any) -> dict[str, Any]:
    """Return the installed apps' CLI groups (:class:`~chaton.core.registry.CliGroup`) by name.

    Reads the settings (``--config`` when it was given) without setting Django
    up: listing the groups imports neither the apps' models nor their commands.
    Raise ConfigError when the configuration is invalid.
    """
    config = ctx.params.get("config") if ctx is not None else None
    if config is not None:
        os.environ["CHATON_CONFIG"] = config
    startup.choose_settings()
    from chaton.core.registry import cli_groups

    return {group.name: group for group in cli_groups()}


def _long_jobs_running() -> frozenset[str]:
    """Return the names of the long jobs running in this process (none before Django)."""
    worker_module = sys.modules.get("chaton.core.worker")
    return frozenset(worker_module.long_lane().running()) if worker_module else frozenset()


def _finish_long_jobs(*, besides: frozenset[str]) -> None:
    """Before the process exits, let the long jobs a command started end (a decided
    opening's deployment runs in this process's long lane): a job cut short would be
    failed as interrupted. Those running ``besides`` are not this command's."""
    worker_module = sys.modules.get("chaton.core.worker")
    if worker_module is not None:
        worker_module.finish_long_jobs(besides=besides)


def _make_app(**options: Any) -> typer.Typer:
    return typer.Typer(no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False, **options)


app = _make_app(cls=ChatonGroup, help="Run a hosting collective: members, directory, worker.",
                epilog="Also: chaton ssh-keys [--config PATH] USER, sshd's AuthorizedKeysCommand "
                       "(see chaton ssh-keys --help).")


@app.callback()
def root(
    config: Annotated[str | None, typer.Option(
        "--config", metavar="PATH", help="Configuration file (default: $CHATON_CONFIG, "
        "then ./chaton.toml).")] = None,
    acting_uid: Annotated[str | None, typer.Option(
        "--as", metavar="UID", help="Record this account as the one acting, in the audit "
        "log.")] = None,
) -> None:
    """Chaton: members, accounts, groups and the directory of a hosting collective."""
    if config is not None:
        # Read by chaton.project.settings when Django starts, after this callback.
        os.environ["CHATON_CONFIG"] = config
    invocation.acting_uid = acting_uid


app.command(name="restore", help="Rebuild Chaton in a new data directory from a backup "
            "repository and the recovery kit.")(recovery.restore)
app.command(help="Serve the web interface and the API (with the worker and the managed "
                 "slapd).")(server.serve)


# -- init and demo ---------------------------------------------------------------


def _read_password_file(path: Path) -> str:
    """Return the first line of ``path``. Raise InvalidInput when it cannot be read."""
    from chaton.core.errors import InvalidInput

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(_("Cannot read the password file: %(error)s") % {"error": error},
                           field="password") from None
    return lines[0] if lines else ""


def _sync_directory_if_reachable() -> None:
    """Sync the whole directory now; when it cannot be reached, say that the worker will."""
    from chaton.directory.reconcile import sync_all

    try:
        _plan, outcome = sync_all()
    except LdapError as error:
        console().print(_("The directory cannot be reached (%(error)s): the worker will write "
                          "the changes once it can.") % {"error": one_line(str(error))},
                        style="yellow", markup=False)
        return
    if outcome is not None and outcome.applied:
        console().print(ngettext("Directory: %(count)d change written.",
                                 "Directory: %(count)d changes written.", outcome.applied)
                        % {"count": outcome.applied}, markup=False)


@app.command()
def init(
    admin_uid: Annotated[str | None, typer.Option(
        "--admin-uid", help="User name of the first administrator (asked when missing).")] = None,
    admin_email: Annotated[str | None, typer.Option(
        "--admin-email", help="E-mail of the first administrator (default: UID@localhost).")
    ] = None,
    admin_password_file: Annotated[Path | None, typer.Option(
        "--admin-password-file", metavar="FILE", dir_okay=False,
        help="Read the administrator's password from the first line of FILE.")] = None,
    no_input: Annotated[bool, typer.Option(
        "--no-input", help="Ask nothing: generate the password and print it once.")] = False,
) -> None:
    """Prepare the database, the data directory and the managed slapd; create a first admin.

    Safe to run again: what exists is left as it is.
    """
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from chaton.directory import actions
    from chaton.directory.models import Account

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    console().print(_("Database ready, data in %(path)s.") % {"path": settings.DATA_DIR},
                    markup=False)
    with runtime.directory_running():
        administrator = Account.objects.filter(is_admin=True).order_by("pk").first()
        if administrator is not None:
            console().print(_("An administrator exists already: %(uid)s.")
                            % {"uid": administrator.uid}, markup=False)
        else:
            uid = admin_uid or ("" if no_input else typer.prompt(_("Administrator's user name")))
            if not uid.strip():
                from chaton.core.errors import InvalidInput

                raise InvalidInput(_("Give the administrator's user name with --admin-uid."),
                                   field="uid")
            email = admin_email or (f"{uid.strip()}@localhost" if no_input else typer.prompt(
                _("Administrator's e-mail"), default=f"{uid.strip()}@localhost"))
            shown_password = None
            if admin_password_file is not None:
                password = _read_password_file(admin_password_file)
            elif no_input:
                password = shown_password = secrets.token_urlsafe(12)
            else:
                password = typer.prompt(_("Administrator's password"), hide_input=True,
                                        confirmation_prompt=True)
            account = actions.do_create_account(
                uid, acting_user=None, display_name=uid.strip(), email=email,
                password=password, is_admin=True, reserved_uid_allowed=True,
                # The person running init types (or is shown) their own password.
                password_by_owner=True)
            console().print(_("Administrator %(uid)s created.") % {"uid": account.uid},
                            style="green", markup=False)
            if shown_password is not None:
                console().print(_("Its password, shown once: %(password)s")
                                % {"password": shown_password}, style="bold", markup=False)
        _sync_directory_if_reachable()
    _create_default_backup_plan()
    _register_default_host()
    console().print(_("Chaton is ready."), markup=False)


def _register_default_host() -> None:
    """Register this machine's Docker engine as the default host, once (not contacted now)."""
    from chaton.services.actions import do_ensure_default_host

    do_ensure_default_host(acting_user=None)


def _create_default_backup_plan() -> None:
    """Create the embedded default backup plan (a local repository, Chaton's database and
    directory) when there is no plan at all; when it cannot be, say why and go on: the
    rest of Chaton works without it, and the next ``chaton init`` tries again."""
    from chaton.backups.actions import do_create_default_plan
    from chaton.backups.models import Plan

    if Plan.objects.exists():
        return
    try:
        plan = do_create_default_plan(acting_user=None)
    except Exception as error:
        message = error_message(error)
        if message is None:
            raise
        console().print(_("Backups: the default plan could not be created (%(error)s); "
                          "“chaton init” tries again, or see “chaton backup --help”.")
                        % {"error": one_line(message)}, style="yellow", markup=False)
        return
    console().print(_("Backups: plan %(plan)s backs up Chaton's database, directory and secrets "
                      "key into %(location)s, daily.")
                    % {"plan": plan.name, "location": plan.repository.location}, markup=False)
    # Said once, when the plan is made: without the kit, the backups cannot be opened.
    console().print(_("Recovery kit: “chaton backup recovery-kit” (or the page /backups/"
                      "recovery-kit/) gives the repository's password and Chaton's secrets key, "
                      "without which these backups cannot be opened once this server is lost. "
                      "Print it and keep it off this server."), style="bold", markup=False)


@app.command()
def demo(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List what is created.")
                       ] = False,
) -> None:
    """Load the invented demo collective (persons, organizations, accounts, groups).

    Safe to run again: only what is missing is created.
    """
    setup_django()
    from chaton.core.demo import load_demo

    with runtime.directory_running():
        report = load_demo()
    for warning in report.warnings:
        console().print(one_line(warning), style="yellow", markup=False)
    if not report.changed:
        console().print(_("The demo collective is already loaded: nothing changed."),
                        markup=False)
        return
    if verbose:
        for line in report.created:
            console().print(f"  + {line}", style="green", markup=False)
    console().print(ngettext("Demo collective loaded: %(count)d item created.",
                             "Demo collective loaded: %(count)d items created.",
                             len(report.created)) % {"count": len(report.created)},
                    markup=False)
    if report.admin_password is not None:
        console().print(_("Administrator %(uid)s, password shown once: %(password)s")
                        % {"uid": report.admin_uid, "password": report.admin_password},
                        style="bold", markup=False)
    elif report.admin_uid:
        console().print(_("The account %(uid)s existed already: its password is unchanged.")
                        % {"uid": report.admin_uid}, markup=False)


# -- worker and audit --------------------------------------------------------------


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the due jobs once and exit.")] = False,
    tick: Annotated[float, typer.Option(
        "--tick", min=0.1, help="Seconds between two looks at the due jobs.")] = 5.0,
) -> None:
    """Run the scheduled jobs: directory sync (periodic, and retries), expiries.

    With --once, exit 1 when a job failed.
    """
    setup_django()
    from chaton.core import worker as worker_module

    if once:
        with runtime.directory_running():
            results = worker_module.run_jobs()
        for result in results:
            console().print(str(result), style=None if result.ok else "red", markup=False)
        if not all(result.ok for result in results):
            raise typer.Exit(1)
        return
    stop = threading.Event()

    def request_stop(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    console().print(_("Worker running; Ctrl-C stops it."), markup=False)
    worker_module.run_forever(stop, tick_seconds=tick)


@app.command()
def audit(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many entries.")] = 20,
    action: Annotated[str, typer.Option("--action", help="Only this action, e.g. "
                                        "account.create.")] = "",
) -> None:
    """Show the latest entries of the audit log, newest first."""
    setup_django()
    import json

    from django.utils import timezone

    from chaton.core.queries import audit_entries

    table = Table(title=_("Audit log"))
    # The short columns never wrap: the change (JSON) takes what width is left.
    for header in (_("When"), _("Who"), _("Action")):
        table.add_column(header, no_wrap=True)
    table.add_column(_("Target"))
    table.add_column(_("Change"), overflow="fold")
    for entry in audit_entries(action)[:limit]:
        change = entry.after if entry.after is not None else entry.before
        table.add_row(cell(timezone.localtime(entry.created_at).strftime("%Y-%m-%d %H:%M:%S")),
                      cell(entry.actor_label), cell(entry.action), cell(entry.target_label),
                      cell(json.dumps(change, ensure_ascii=False, sort_keys=True)
                           if change else ""))
    console().print(table)


def run(argv: list[str] | None = None) -> None:
    """Run the ``chaton`` command with ``argv`` (``sys.argv[1:]`` when None); exit at the end."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="chaton")
