"""``chaton backup``: repositories, plans and their sources, runs, retention, restores, drills.

Thin over :mod:`chaton.backups.actions` and :mod:`chaton.backups.queries`.
``run`` shows a progress bar fed by the backup's own progress (restic's
status lines); ``restore --in-place`` asks before overwriting and says that a
safety snapshot is taken first. Errors people can act on (an unknown plan, a
refused value, a plan already running) are one line on stderr and exit 2, as
everywhere in ``chaton``; a backup, check or restore that ran and failed exits 1,
a drill that failed says why on one line on stderr and exits 2.

The worker does not come through here: it starts ``python -m chaton.backups``
(:mod:`chaton.backups.__main__`) in a child process for each due job.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from typer.core import TyperCommand

from chaton.cli.runtime import acting_user, cell, console, parse_date, setup_django

if TYPE_CHECKING:
    from chaton.backups.models import Drill, Plan, Repository, Run, Source
    from chaton.backups.runs import RetentionOutcome, RunProgress
    from chaton.backups.sources import ParamSpec
    from chaton.directory.models import Account

app = typer.Typer(no_args_is_help=True, add_completion=False)
repository_app = typer.Typer(no_args_is_help=True, add_completion=False)
plan_app = typer.Typer(no_args_is_help=True, add_completion=False)
source_app = typer.Typer(no_args_is_help=True, add_completion=False)
app.add_typer(repository_app, name="repo", help="restic repositories.")
app.add_typer(plan_app, name="plan", help="Backup plans: schedule, retention, drills.")
app.add_typer(source_app, name="source", help="What a plan backs up.")

#: Exit status of a backup, check or restore that ran and failed (recorded).
EXIT_FAILED = 1


# -- shared ------------------------------------------------------------------------------


def _who() -> tuple[Account | None, str | None]:
    """Return the acting account (``--as``) and, without one, "cli" as what triggered it."""
    account = acting_user()
    return account, None if account is not None else "cli"


def _moment(value: dt.datetime | None) -> str:
    from django.utils import timezone

    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _size(value: int) -> str:
    from django.template.defaultfilters import filesizeformat

    return str(filesizeformat(value))


def _duration(seconds: float | None) -> str:
    from chaton.backups.texts import duration_text

    return duration_text(seconds)


def _run_seconds(run: Run) -> float | None:
    return run.duration.total_seconds() if run.duration is not None else None


def table_of(title: str, *columns: tuple[str, bool]) -> Table:
    """Return a table with ``(header, wraps)`` columns: short values (ids, times, sizes)
    never wrap, so that the long ones take what width is left."""
    table = Table(title=title)
    for header, wraps in columns:
        if wraps:
            table.add_column(header, overflow="fold")
        else:
            table.add_column(header, no_wrap=True)
    return table


def _print_errors(lines: list[tuple[str, str]]) -> None:
    """Print ``(what, error)`` pairs below a table, one line each (never cut)."""
    for what, error in lines:
        if error:
            console().print(cell(f"! {what}: {error}", "red"), soft_wrap=True)


def _param_shapes(kind: str | None) -> tuple[set[str], set[str]]:
    """Return the names of the list parameters and of the true-or-false ones of ``kind`` (of
    every kind when None or unknown: the action then names the kinds)."""
    from chaton.backups.sources import kinds, param_specs

    found = kinds()
    chosen = [found[kind]] if kind in found else list(found.values())
    specs = [spec for source in chosen for spec in param_specs(source.Params)]
    return ({spec.name for spec in specs if spec.shape == "lines"},
            {spec.name for spec in specs if spec.shape == "boolean"})


def parse_params(values: list[str], kind: str | None = None) -> dict[str, Any]:
    """Given ``KEY=VALUE`` words, return the parameters of a source of ``kind``.

    A key given twice, or a list parameter of the kind (``paths``, ``exclude``:
    its Params says which), becomes a list; a boolean parameter
    (``chaton_directory``) takes true or false. Raise InvalidInput for a word
    without ``=``. The kind checks the rest.
    """
    from chaton.core.errors import InvalidInput

    LIST_PARAMS, BOOLEAN_PARAMS = _param_shapes(kind)
    params: dict[str, Any] = {}
    for word in values:
        key, separator, value = word.partition("=")
        key = key.strip()
        if not separator or not key:
            raise InvalidInput(_("A parameter is written KEY=VALUE: “%(word)s”.")
                               % {"word": word[:60]}, field="params")
        if key in BOOLEAN_PARAMS:
            if value.strip().lower() not in {"true", "false", "yes", "no", "1", "0"}:
                raise InvalidInput(_("%(key)s is true or false.") % {"key": key}, field=key)
            params[key] = value.strip().lower() in {"true", "yes", "1"}
        elif key in LIST_PARAMS:
            params.setdefault(key, []).append(value)
        elif key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous,
                                                                                 value]
        else:
            params[key] = value
    return params


def _read_secret(password_file: Path | None, prompt: str) -> str:
    from chaton.cli.accounts import read_password

    return read_password(password_file, prompt)


# -- repositories ------------------------------------------------------------------------


def _check_text(repository: Repository) -> Any:
    """The last check, red while it or the plans' last drill failed (an annotated
    repository, from queries.repositories()), and when every pack was last read."""
    from chaton.backups import queries

    health = queries.repository_health(repository)
    full_read = (_("every pack read: %(when)s") % {"when": _moment(repository.last_full_read_at)}
                 if repository.last_full_read_at else _("every pack read: not yet"))
    if health.state == "check_failed":
        return cell(_("%(when)s, errors: %(message)s")
                    % {"when": _moment(repository.checked_at),
                       "message": repository.check_message}, "red")
    if health.state == "drill_failed":
        return cell(f"{health.reason} ({full_read})", "red")
    if repository.checked_at is None:
        return cell(_("never"), "dim")
    return cell(_("%(when)s, no errors") % {"when": _moment(repository.checked_at)}
                + f" ({full_read})", "green")


@repository_app.command("list")
def list_repositories() -> None:
    """List the repositories with their last check."""
    setup_django()
    from chaton.backups import queries

    table = table_of(_("Repositories"), (_("Name"), False), (_("Kind"), True),
                     (_("Location"), True), (_("Plans"), False), (_("Initialised"), False),
                     (_("Last check"), True))
    rows = list(queries.repositories())
    for repository in rows:
        table.add_row(cell(repository.name), cell(repository.get_kind_display()),
                      cell(repository.location),
                      cell(repository.plan_count),  # type: ignore[attr-defined]
                      cell(_moment(repository.initialised_at) or _("no"),
                           "" if repository.initialised_at else "red"),
                      _check_text(repository))
    console().print(table)


@repository_app.command("add")
def add_repository(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    kind: Annotated[str, typer.Option("--kind", help="local, sftp or s3.")] = "local",
    location: Annotated[str, typer.Option(
        "--location", help="An absolute path, sftp:user@host:/path or s3:https://host/bucket."
    )] = "",
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", metavar="FILE", dir_okay=False,
        help="Read the password from the first line of FILE (else it is asked).")] = None,
    environment: Annotated[list[str] | None, typer.Option(
        "--env", metavar="NAME=VALUE", help="An extra variable for restic (S3 keys …); "
        "repeat it.")] = None,
    check_every: Annotated[int, typer.Option(
        "--check-every", metavar="DAYS", help="Check it every DAYS days (0: never).")] = 7,
    check_subset: Annotated[str, typer.Option(
        "--check-subset", help="Data read by a check: 5%, 1/10, 500M.")] = "5%",
    initialise: Annotated[bool, typer.Option(
        "--init", help="Initialise it at once (or adopt the one the password opens).")
    ] = False,
) -> None:
    """Record a restic repository; its password is stored encrypted."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.forms import parse_environment

    variables = parse_environment(environment or [])
    password = _read_secret(password_file, _("Repository password"))
    account = acting_user()
    repository = actions.do_create_repository(
        name, kind=kind, location=location, password=password, environment=variables,
        check_interval_days=check_every, check_read_data_subset=check_subset,
        acting_user=account)
    console().print(_("Repository %(name)s recorded.") % {"name": repository.name},
                    style="green", markup=False)
    if initialise:
        actions.do_init_repository(repository, acting_user=account)
        console().print(_("Repository %(name)s initialised at %(location)s.")
                        % {"name": repository.name, "location": repository.location},
                        markup=False)


@repository_app.command("set")
def set_repository(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    location: Annotated[str | None, typer.Option("--location")] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", metavar="FILE", dir_okay=False,
        help="The password Chaton opens it with, from the first line of FILE.")] = None,
    ask_password: Annotated[bool, typer.Option(
        "--ask-password", help="Type the new password at a hidden prompt.")] = False,
    environment: Annotated[list[str] | None, typer.Option(
        "--env", metavar="NAME=VALUE", help="Replace the extra variables; repeat it.")] = None,
    clear_environment: Annotated[bool, typer.Option(
        "--clear-env", help="Remove every extra variable.")] = False,
    check_every: Annotated[int | None, typer.Option("--check-every", metavar="DAYS")] = None,
    check_subset: Annotated[str | None, typer.Option("--check-subset")] = None,
) -> None:
    """Change how Chaton reaches a repository (restic's own keys do not change)."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.forms import parse_environment
    from chaton.backups.queries import repository_by_name

    repository = repository_by_name(name)
    password = None
    if password_file is not None or ask_password:
        password = _read_secret(password_file, _("Repository password"))
    variables = {} if clear_environment else (
        parse_environment(environment) if environment else None)
    actions.do_update_repository(repository, acting_user=acting_user(), location=location,
                                 password=password, environment=variables,
                                 check_interval_days=check_every,
                                 check_read_data_subset=check_subset)
    console().print(_("Repository %(name)s saved.") % {"name": repository.name}, markup=False)


@repository_app.command("delete")
def delete_repository(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a repository that no plan uses; the restic repository itself stays."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.queries import repository_by_name

    repository = repository_by_name(name)
    if not yes and not typer.confirm(_("Delete repository %(name)s from Chaton (its data stays "
                                       "at %(location)s)?")
                                     % {"name": repository.name,
                                        "location": repository.location}, default=False):
        console().print(_("Nothing was deleted."), markup=False)
        raise typer.Exit(EXIT_FAILED)
    actions.do_delete_repository(repository, acting_user=acting_user())
    console().print(_("Repository %(name)s deleted from Chaton; its data stays at "
                      "%(location)s.") % {"name": name, "location": repository.location},
                    markup=False)


@repository_app.command("init")
def init_repository(name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Initialise the repository at its location, or adopt the one the password opens."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.queries import repository_by_name

    repository = actions.do_init_repository(repository_by_name(name), acting_user=acting_user())
    console().print(_("Repository %(name)s initialised at %(location)s.")
                    % {"name": repository.name, "location": repository.location},
                    style="green", markup=False)


@repository_app.command("check")
def check_repository(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    read_data_subset: Annotated[str | None, typer.Option(
        "--read-data-subset", help="Data to read back and verify (default: the repository's "
        "setting).")] = None,
) -> None:
    """Run ``restic check`` now. Exit 1 when it found errors."""
    setup_django()
    from chaton.backups import runs
    from chaton.backups.queries import repository_by_name

    account, triggered_by = _who()
    repository = repository_by_name(name)
    run = runs.check_repository(repository, acting_user=account,
                                      read_data_subset=read_data_subset,
                                      triggered_by=triggered_by)
    if run.succeeded:
        console().print(_("Check of %(name)s: no errors were found (%(duration)s).")
                        % {"name": repository.name, "duration": _duration(_run_seconds(run))},
                        style="green", markup=False)
        return
    console().print(_("Check of %(name)s failed: %(error)s")
                    % {"name": repository.name, "error": run.error}, style="red", markup=False)
    raise typer.Exit(EXIT_FAILED)


# -- plans -------------------------------------------------------------------------------


def _summary_line(plans: list[Plan] | None = None, since: dt.datetime | None = None) -> str:
    from chaton.backups import queries
    from chaton.backups.texts import SUMMARY_DAYS
    from chaton.core import clock

    start = since or clock.now() - dt.timedelta(days=SUMMARY_DAYS)
    return str(queries.drill_summary(since=start, plans=plans))


@plan_app.command("list")
def list_plans() -> None:
    """List the plans with their health: last good backup, stale flag, next run, last drill."""
    setup_django()
    from chaton.backups import queries

    table = table_of(_("Backup plans"), (pgettext("backup plan", "Plan"), True),
                     (_("Repository"), True), (_("Last good backup"), False), (_("State"), True),
                     (_("Next backup"), False), (_("Last drill"), True))
    statuses = queries.plan_statuses()
    for status in statuses:
        plan = status.plan
        state = [_("stale")] if status.stale else []
        if not plan.enabled:
            state.append(_("disabled"))
        if status.last_backup is not None and not status.last_backup.succeeded:
            state.append(_("last run %(outcome)s")
                         % {"outcome": status.last_backup.get_outcome_display()})
        drill = status.last_drill
        table.add_row(cell(plan.name), cell(plan.repository.name),
                      cell(_moment(status.last_good_at) or _("never")),
                      cell(", ".join(state) or _("ok"), "red" if status.stale else "green"),
                      cell(_moment(status.next_backup_at) or "—"),
                      cell(f"{drill.get_outcome_display()} {_moment(drill.started_at)}"
                           if drill is not None else _("never"),
                           "" if drill is None or drill.passed else "red"))
    console().print(table)
    console().print(_summary_line(), markup=False)


def _policy_text(plan: Plan) -> str:
    from chaton.backups.texts import retention_text

    arguments = " ".join(plan.keep_policy().arguments())
    return retention_text(plan) + (f" ({arguments})" if arguments else "")


@plan_app.command("show")
def show_plan(name: Annotated[str, typer.Argument(metavar="PLAN")]) -> None:
    """Show a plan: settings, sources, health, its last runs and drills."""
    setup_django()
    from chaton.backups import engine, queries

    plan = queries.plan_by_name(name)
    status = queries.plan_status(plan)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    for label, value in (
            (_("Repository"), f"{plan.repository.name} ({plan.repository.location})"),
            (_("Enabled"), _("yes") if plan.enabled else _("no")),
            (_("Back up every"), _("%(minutes)d minutes") % {"minutes": plan.interval_minutes}),
            (_("Retention"), _policy_text(plan)),
            (_("Stale after"), _("%(hours)d hours") % {"hours": plan.stale_after_hours}),
            (_("Drill every"), _("%(days)d days") % {"days": plan.drill_interval_days}),
            (_("Last good backup"), _moment(status.last_good_at) or _("never")),
            (_("Stale"), _("yes") if status.stale else _("no")),
            (_("Next backup"), _moment(status.next_backup_at) or "—"),
            (_("Running now"), _("yes") if queries.plan_is_running(plan) else _("no")),
            (_("Drills"), _summary_line([plan]))):
        facts.add_row(cell(label), cell(value))
    console().print(cell(_("Plan %(name)s") % {"name": plan.name}, "bold"))
    console().print(facts)
    sources = table_of(_("Data sources"), (_("Name"), False), (_("Kind"), True),
                       (_("Parameters"), True))
    for source in plan.sources.order_by("name"):
        shown = engine.shown_params(source.kind, source.params)
        sources.add_row(cell(source.name), cell(source.kind_label),
                        cell(", ".join(f"{key}={value}" for key, value in shown.items())))
    console().print(sources)
    _print_runs(list(queries.run_history(plan=plan)[:5]), _("Last runs"))
    _print_drills(list(queries.drill_history(plan=plan)[:5]), _("Last drills"))


_PLAN_OPTIONS = ("interval_minutes", "keep_last", "keep_daily", "keep_weekly", "keep_monthly",
                 "keep_yearly", "stale_after_hours", "drill_interval_days")


@plan_app.command("add")
def add_plan(
    name: Annotated[str, typer.Argument(metavar="PLAN")],
    repository: Annotated[str, typer.Option("--repository", metavar="NAME")],
    every: Annotated[int, typer.Option("--every", metavar="MINUTES",
                                       help="Back up every MINUTES minutes.")] = 24 * 60,
    keep_last: Annotated[int, typer.Option("--keep-last")] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily")] = 7,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly")] = 4,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly")] = 6,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly")] = 0,
    stale_after: Annotated[int, typer.Option("--stale-after", metavar="HOURS")] = 36,
    drill_every: Annotated[int, typer.Option("--drill-every", metavar="DAYS")] = 7,
    disabled: Annotated[bool, typer.Option("--disabled", help="Back up only when asked.")
                        ] = False,
) -> None:
    """Create a backup plan (then add its sources with ``chaton backup source add``)."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.queries import repository_by_name

    plan = actions.do_create_plan(
        name, repository_by_name(repository), acting_user=acting_user(), enabled=not disabled,
        interval_minutes=every, keep_last=keep_last, keep_daily=keep_daily,
        keep_weekly=keep_weekly, keep_monthly=keep_monthly, keep_yearly=keep_yearly,
        stale_after_hours=stale_after, drill_interval_days=drill_every)
    console().print(_("Plan %(name)s created; add its sources with: chaton backup source add "
                      "%(name)s NAME --kind KIND") % {"name": plan.name}, style="green",
                    markup=False)


@plan_app.command("set")
def set_plan(
    name: Annotated[str, typer.Argument(metavar="PLAN")],
    repository: Annotated[str | None, typer.Option("--repository", metavar="NAME")] = None,
    every: Annotated[int | None, typer.Option("--every", metavar="MINUTES")] = None,
    keep_last: Annotated[int | None, typer.Option("--keep-last")] = None,
    keep_daily: Annotated[int | None, typer.Option("--keep-daily")] = None,
    keep_weekly: Annotated[int | None, typer.Option("--keep-weekly")] = None,
    keep_monthly: Annotated[int | None, typer.Option("--keep-monthly")] = None,
    keep_yearly: Annotated[int | None, typer.Option("--keep-yearly")] = None,
    stale_after: Annotated[int | None, typer.Option("--stale-after", metavar="HOURS")] = None,
    drill_every: Annotated[int | None, typer.Option("--drill-every", metavar="DAYS")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
) -> None:
    """Change a plan's settings (only those given); its name stays."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.queries import plan_by_name, repository_by_name

    plan = plan_by_name(name)
    changes: dict[str, Any] = {
        "enabled": enabled, "interval_minutes": every, "keep_last": keep_last,
        "keep_daily": keep_daily, "keep_weekly": keep_weekly, "keep_monthly": keep_monthly,
        "keep_yearly": keep_yearly, "stale_after_hours": stale_after,
        "drill_interval_days": drill_every}
    if repository is not None:
        changes["repository"] = repository_by_name(repository)
    actions.do_update_plan(plan, acting_user=acting_user(), **changes)
    console().print(_("Plan %(name)s saved.") % {"name": plan.name}, markup=False)


@plan_app.command("delete")
def delete_plan(
    name: Annotated[str, typer.Argument(metavar="PLAN")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a plan with its sources and history; its snapshots stay in the repository."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.queries import plan_by_name

    plan = plan_by_name(name)
    if not yes and not typer.confirm(_("Delete plan %(name)s and its history?")
                                     % {"name": plan.name}, default=False):
        console().print(_("Nothing was deleted."), markup=False)
        raise typer.Exit(EXIT_FAILED)
    actions.do_delete_plan(plan, acting_user=acting_user())
    console().print(_("Plan %(name)s deleted; its snapshots stay in the repository.")
                    % {"name": name}, markup=False)


# -- sources -----------------------------------------------------------------------------


def kinds_help() -> str:
    """Return every kind and its parameters, read from the kinds' Params, for ``--help``."""
    from chaton.backups.sources import kinds, param_specs

    paragraphs = [_("Kinds and their parameters (--param KEY=VALUE):")]
    for kind, source in kinds().items():
        described = [_describe_param(spec) for spec in param_specs(source.Params)]
        paragraphs.append(f"{kind} ({source.label}):\n"
                          + "\n".join(f"  {line}" for line in described or [_("no parameter")]))
    return "\n\n".join(escape(paragraph) for paragraph in paragraphs)


def _describe_param(spec: ParamSpec) -> str:
    """Given a ParamSpec, return it on one line: name, what it takes, its help text."""
    notes = []
    if spec.required:
        notes.append(_("required"))
    elif spec.default not in (None, "", []):
        notes.append(_("default %(value)s") % {"value": spec.default})
    if spec.shape == "lines":
        notes.append(_("repeat it for several"))
    elif spec.shape == "boolean":
        notes.append(_("true or false"))
    elif spec.shape == "integer":
        notes.append(_("a number"))
    if spec.secret:
        notes.append(_("secret: give it with --password-file"))
    text = spec.name + (f" ({', '.join(notes)})" if notes else "")
    return f"{text}: {spec.help}" if spec.help else text


class SourceAddCommand(TyperCommand):
    """``source add``, whose ``--help`` ends with every kind's parameters (read when the help
    is shown: the kinds are found in chaton/backups/sources/)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from django.apps import apps

        try:
            if not apps.ready:
                setup_django()
            self.epilog = kinds_help()
        except Exception:
            self.epilog = None
        super().format_help(ctx, formatter)


@source_app.command("add", cls=SourceAddCommand)
def add_source(
    plan_name: Annotated[str, typer.Argument(metavar="PLAN")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    kind: Annotated[str, typer.Option(
        "--kind", help="The kind of data: see the list of kinds below.")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", metavar="KEY=VALUE", help="A parameter of the kind (paths=/srv/files, "
        "database=shop …); repeat it. The kinds' parameters are listed below.")] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", metavar="FILE", dir_okay=False,
        help="The source's password (database, LDAP bind), from the first line of FILE.")
    ] = None,
) -> None:
    """Add a data source to a plan; its kind checks the parameters."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.queries import plan_by_name

    plan = plan_by_name(plan_name)
    params = parse_params(param or [], kind)
    if password_file is not None:
        params["password"] = _read_secret(password_file, _("Password"))
    source = actions.do_add_source(plan, kind, name, params, acting_user=acting_user())
    console().print(_("Source %(name)s (%(kind)s) added to %(plan)s.")
                    % {"name": source.name, "kind": source.kind_label,
                       "plan": plan.name}, style="green", markup=False)


@source_app.command("remove")
def remove_source(
    plan_name: Annotated[str, typer.Argument(metavar="PLAN")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
) -> None:
    """Remove a data source from a plan; its snapshots and history stay."""
    setup_django()
    from chaton.backups import actions
    from chaton.backups.queries import plan_by_name, source_by_name

    source = source_by_name(plan_by_name(plan_name), name)
    actions.do_remove_source(source, acting_user=acting_user())
    console().print(_("Source %(name)s removed from %(plan)s.")
                    % {"name": name, "plan": plan_name}, markup=False)


# -- runs --------------------------------------------------------------------------------


class BackupBar:
    """A progress bar per source of a backup, fed by the progress callback of
    :func:`~chaton.backups.runs.run_backup`.

    Every source has its bar from the start; a streamed dump has no known size,
    so its bar pulses and counts the bytes read. At the end every bar is full.
    """

    def __init__(self, sources: list[str]) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 DownloadColumn(), TimeElapsedColumn(), console=console(),
                                 transient=True)
        self.tasks: dict[str, TaskID] = {
            name: self.progress.add_task(f"{name} ({position}/{len(sources)})", total=None)
            for position, name in enumerate(sources, start=1)}

    def __enter__(self) -> BackupBar:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for task in self.progress.tasks:
            done = task.completed or 1
            self.progress.update(task.id, total=done, completed=done)
        self.progress.stop()

    def update(self, step: RunProgress) -> None:
        """Move the source's bar to where restic says it is."""
        task = self.tasks.get(step.source)
        if task is None:  # a source added while the backup ran
            task = self.progress.add_task(f"{step.source} ({step.position}/{step.count})",
                                          total=None)
            self.tasks[step.source] = task
        self.progress.update(task, completed=step.bytes_done,
                             total=step.total_bytes or None)


def _print_run(run: Run) -> None:
    """Print a backup's outcome and what each source gave (errors below the table)."""
    table = table_of(_("Backup of %(plan)s") % {"plan": run.plan.name if run.plan else ""},
                     (_("Source"), True), (_("Snapshot"), False), (_("New files"), False),
                     (_("Changed"), False), (_("Data added"), False), (_("Duration"), False),
                     (_("Outcome"), False))
    results = list(run.results.order_by("id"))
    for result in results:
        seconds = result.duration.total_seconds() if result.duration is not None else None
        table.add_row(cell(result.source_name), cell(result.snapshot_id[:8] or "—"),
                      cell(result.files_new), cell(result.files_changed),
                      cell(_size(result.bytes_added)), cell(_duration(seconds)),
                      cell(result.get_outcome_display(),
                           "green" if result.outcome == "succeeded" else "red"))
    console().print(table)
    _print_errors([(result.source_name, result.error) for result in results])


@app.command("run")
def run(plan_name: Annotated[str, typer.Argument(metavar="PLAN")]) -> None:
    """Back a plan up now, with a progress bar. Exit 1 when the backup failed."""
    setup_django()
    from chaton.backups import runs
    from chaton.backups.queries import plan_by_name

    plan = plan_by_name(plan_name)
    account, triggered_by = _who()
    with BackupBar(list(plan.sources.values_list("name", flat=True))) as bar:
        result = runs.run_backup(plan, acting_user=account, progress=bar.update,
                                    triggered_by=triggered_by)
    _print_run(result)
    if not result.succeeded:
        console().print(_("The backup failed: %(error)s") % {"error": result.error},
                        style="red", markup=False)
        raise typer.Exit(EXIT_FAILED)
    console().print(_("Backup of %(plan)s done in %(duration)s: %(added)s added.")
                    % {"plan": plan.name, "duration": _duration(_run_seconds(result)),
                       "added": _size(result.bytes_added)}, style="green", markup=False)


def _print_runs(runs: list[Run], title: str) -> None:
    table = table_of(title, (_("Started"), False), (_("Kind"), True), (_("Snapshots"), True),
                     (_("Data added"), False), (_("Duration"), False), (_("Outcome"), False))
    for item in runs:
        snapshots = "\n".join(f"{result.snapshot_id[:8]} {result.source_name}"
                              for result in item.results.all() if result.snapshot_id)
        table.add_row(cell(_moment(item.started_at)), cell(item.get_kind_display()),
                      cell(snapshots or "—"), cell(_size(item.bytes_added)),
                      cell(_duration(_run_seconds(item))),
                      cell(item.get_outcome_display(), "green" if item.succeeded else "red"))
    console().print(table)
    _print_errors([(_moment(item.started_at), item.error) for item in runs])


@app.command("runs")
def runs(
    plan_name: Annotated[str, typer.Argument(metavar="PLAN")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="Only backup, forget (retention), check or restore.")] = None,
) -> None:
    """List a plan's runs, newest first: snapshots, sizes, durations, outcomes."""
    setup_django()
    from chaton.backups import queries
    from chaton.backups.models import RunKind
    from chaton.core.errors import InvalidInput

    if kind is not None and kind not in RunKind.values:
        raise InvalidInput(_("Unknown kind of run: choose among %(choices)s.")
                           % {"choices": ", ".join(RunKind.values)}, field="kind")
    plan = queries.plan_by_name(plan_name)
    _print_runs(list(queries.run_history(plan=plan, kind=kind)[:limit]),
                _("Runs of %(plan)s") % {"plan": plan.name})


def _print_retention(outcome: RetentionOutcome) -> None:
    from chaton.backups.texts import reason_labels

    labels = reason_labels()
    for group in outcome.groups:
        table = table_of(group.label, (_("Snapshot"), False), (_("Time"), False),
                         (_("Decision"), True))
        for decision in group.kept:
            reasons = ", ".join(labels.get(reason, reason) for reason in decision.reasons)
            table.add_row(cell(decision.snapshot.short_id),
                          cell(_moment(decision.snapshot.time)),
                          cell(_("kept: %(reasons)s") % {"reasons": reasons}, "green"))
        for decision in group.removed:
            table.add_row(cell(decision.snapshot.short_id),
                          cell(_moment(decision.snapshot.time)),
                          cell(_("removed") if not outcome.dry_run else _("to remove"),
                               "red"))
        console().print(table)


@app.command("retention")
def retention(
    plan_name: Annotated[str, typer.Argument(metavar="PLAN")],
    apply: Annotated[bool, typer.Option(
        "--apply", help="Apply it (restic forget --prune); without it nothing changes.")
    ] = False,
) -> None:
    """Show which snapshots the plan's retention keeps (and why) and which it removes."""
    setup_django()
    from chaton.backups import queries, runs

    plan = queries.plan_by_name(plan_name)
    account, triggered_by = _who()
    if not apply:
        outcome = queries.retention_preview(plan)
        _print_retention(outcome)
        console().print(_("%(kept)d kept, %(removed)d to remove. Nothing was changed: "
                          "--apply removes them.")
                        % {"kept": outcome.kept_count, "removed": outcome.removed_count},
                        markup=False)
        return
    outcome = runs.apply_retention(plan, acting_user=account, triggered_by=triggered_by)
    _print_retention(outcome)
    assert outcome.run is not None
    if not outcome.run.succeeded:
        console().print(_("Retention failed: %(error)s") % {"error": outcome.run.error},
                        style="red", markup=False)
        raise typer.Exit(EXIT_FAILED)
    console().print(_("Retention applied: %(kept)d snapshots kept, %(removed)d removed.")
                    % {"kept": outcome.kept_count, "removed": outcome.removed_count},
                    style="green", markup=False)


@app.command("restore")
def restore(
    plan_name: Annotated[str, typer.Argument(metavar="PLAN")],
    source_name: Annotated[str, typer.Argument(metavar="SOURCE")],
    snapshot: Annotated[str | None, typer.Option(
        "--snapshot", metavar="ID", help="The snapshot (default: the newest good one).")
    ] = None,
    to: Annotated[str | None, typer.Option(
        "--to", metavar="DIR", help="Restore into this empty directory (or, for PostgreSQL, "
        "a postgresql:// URL).")] = None,
    in_place: Annotated[bool, typer.Option(
        "--in-place", help="Put the data back where it came from, after a safety snapshot.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before an in-place restore.")
                   ] = False,
) -> None:
    """Restore one source of a plan: to a directory, or in place (asks first).

    In place, a safety snapshot of the data as it is now is taken first, so the
    restore can itself be undone; if it fails, nothing is overwritten.
    """
    setup_django()
    from chaton.backups import engine, runs
    from chaton.backups.queries import plan_by_name, source_by_name
    from chaton.core.errors import InvalidInput

    if in_place == (to is not None):
        raise InvalidInput(_("Give either --to DIR or --in-place."), field="target")
    source = source_by_name(plan_by_name(plan_name), source_name)
    chosen = runs.good_result(source, snapshot)
    account, triggered_by = _who()
    if in_place:
        refusal = engine.data_source(source).in_place_refusal()
        if refusal:  # said before asking anything
            raise InvalidInput(refusal, field="in_place")
        console().print(_("A safety snapshot of %(source)s as it is now is taken first; then "
                          "snapshot %(snapshot)s of %(when)s overwrites it.")
                        % {"source": source, "snapshot": chosen.snapshot_id[:8],
                           "when": _moment(chosen.started_at)}, markup=False)
        if not yes and not typer.confirm(_("Restore in place?"), default=False):
            console().print(_("Nothing was restored."), markup=False)
            raise typer.Exit(EXIT_FAILED)
    result = runs.restore(source, chosen.snapshot_id, acting_user=account, target=to,
                                in_place=in_place, triggered_by=triggered_by)
    safety = result.details.get("safety_snapshot")
    if safety:
        console().print(_("Safety snapshot: %(snapshot)s.") % {"snapshot": safety[:8]},
                        markup=False)
    if not result.succeeded:
        console().print(_("The restore failed: %(error)s") % {"error": result.error},
                        style="red", markup=False)
        raise typer.Exit(EXIT_FAILED)
    console().print(_("Snapshot %(snapshot)s of %(source)s restored: %(where)s")
                    % {"snapshot": chosen.snapshot_id[:8], "source": source,
                       "where": result.details.get("restored", "")}, style="green",
                    markup=False)


# -- drills ------------------------------------------------------------------------------


def _print_drills(drills: list[Drill], title: str, *, errors: bool = True) -> None:
    """Print drills as a table, and with ``errors`` what failed and why below it."""
    table = table_of(title, (_("When"), False), (_("Source"), True), (_("Snapshot"), False),
                     (_("Duration"), False), (_("Compared"), True), (_("Outcome"), False))
    for drill in drills:
        table.add_row(cell(_moment(drill.started_at)),
                      cell(f"{drill.plan.name}/{drill.source_name}"),
                      cell(drill.snapshot_id[:8] or "—"),
                      cell(_duration(drill.duration_seconds)),
                      cell(", ".join(drill.compared_labels) or "—"),
                      cell(drill.get_outcome_display(), "green" if drill.passed else "red"))
    console().print(table)
    if errors:
        _print_errors([(f"{_moment(drill.started_at)} {drill.plan.name}/{drill.source_name}",
                        drill.findings_text) for drill in drills if not drill.passed])


@app.command("drill")
def drill(
    plan_name: Annotated[str, typer.Argument(metavar="PLAN")],
    source_name: Annotated[str | None, typer.Option("--source", metavar="NAME",
                                                    help="Only this source.")] = None,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Then run restic check on the repository.")] = True,
) -> None:
    """Restore each source's newest snapshot into a scratch place and compare it with what
    was backed up; then check the repository. Exit 2 when something failed."""
    setup_django()
    from chaton.backups import runs
    from chaton.backups.errors import BackupError
    from chaton.backups.queries import plan_by_name, source_by_name

    plan = plan_by_name(plan_name)
    target: Plan | Source = source_by_name(plan, source_name) if source_name else plan
    account, triggered_by = _who()
    with console().status(_("Drilling %(plan)s…") % {"plan": plan.name}):
        report = runs.run_drill(target, acting_user=account, check=check,
                                   triggered_by=triggered_by)
    _print_drills(report.drills, _("Drill of %(plan)s") % {"plan": plan.name}, errors=False)
    if report.check is not None:
        console().print(_("Repository check: %(outcome)s %(error)s")
                        % {"outcome": report.check.get_outcome_display(),
                           "error": report.check.error}, markup=False)
    if not report.passed:
        # One line on stderr, exit 2 (the group turns the error into them).
        failed = [f"{drill.source_name}: {drill.findings_text}" for drill in report.drills
                  if not drill.passed]
        raise BackupError(_("The drill of %(plan)s failed: %(findings)s")
                          % {"plan": plan.name, "findings": "; ".join(failed)
                             or _("nothing to drill (the plan has no data source)")})
    console().print(_("The drill passed."), style="green", markup=False)


@app.command("drills")
def drills(
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE", help="Drills from this day on (default: six months).")
    ] = None,
    plan_name: Annotated[str | None, typer.Option("--plan", metavar="PLAN")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
) -> None:
    """List the restore drills, newest first, and sum them up ("restores tested: 12, all
    passed")."""
    setup_django()
    from chaton.backups import queries
    from chaton.backups.texts import SUMMARY_DAYS
    from chaton.core import clock

    start = clock.now() - dt.timedelta(days=SUMMARY_DAYS)
    if since is not None:
        start = clock.start_of_day(parse_date(since, field="since"))
    plan = queries.plan_by_name(plan_name) if plan_name else None
    history = queries.drill_history(plan=plan, since=start)
    _print_drills(list(history[:limit]), _("Restore drills"))
    console().print(_summary_line([plan] if plan else None, start), markup=False)
