"""``chaton directory diff`` and ``chaton directory sync``: the LDAP reconciler by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from django.utils.translation import gettext as _
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from chaton.cli import runtime
from chaton.cli.runtime import cell, console, setup_django

if TYPE_CHECKING:
    from chaton.directory.reconcile import Plan

app = typer.Typer(no_args_is_help=True, add_completion=False)

#: The colour of a plan line, by its first character (see Plan.lines).
STYLES = {"+": "green", "~": "yellow", "-": "red", "?": "magenta"}


def print_plan(plan: Plan) -> None:
    """Print the plan's lines, coloured by kind: + add, ~ modify, - delete, ? not Chaton's."""
    for line in plan.lines():
        console().print(cell(line, STYLES.get(line[:1], "")), soft_wrap=True)


def plan_summary(plan: Plan) -> str:
    """Return one line counting the plan's changes."""
    if plan.is_noop and not plan.foreign:
        return _("The directory is up to date.")
    counts = plan.counts()
    summary = _("%(add)d to add, %(modify)d to modify, %(delete)d to delete, %(foreign)d not "
                "Chaton's (kept).") % counts
    if plan.adopted:
        summary += " " + _("%(count)d existing entries to record as Chaton's.") % {
            "count": len(plan.adopted)}
    return summary


@app.command("diff")
def diff(
    delete_foreign: Annotated[bool, typer.Option(
        "--delete-foreign", help="Show the entries Chaton does not own as deletions.")] = False,
) -> None:
    """Show what a sync would change in the directory, without changing anything."""
    setup_django()
    from chaton.directory.backend import get_directory
    from chaton.directory.reconcile import plan_all

    with runtime.directory_running():
        plan = plan_all(get_directory(), delete_foreign=delete_foreign)
    print_plan(plan)
    console().print(plan_summary(plan), style="bold", markup=False)


@app.command("sync")
def sync(
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show the plan and change nothing.")] = False,
    delete_foreign: Annotated[bool, typer.Option(
        "--delete-foreign", help="Also delete the entries Chaton does not own.")] = False,
) -> None:
    """Bring the directory in line with the database. Exit 1 when some changes failed."""
    setup_django()
    from chaton.directory.reconcile import sync_all

    with runtime.directory_running(), Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console(), transient=True) as bar:
        # No total while the directory is read and compared: the bar pulses.
        task = bar.add_task(_("Reading the directory…"), total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, description=_("Writing the changes"), completed=done, total=total)

        plan, outcome = sync_all(dry_run=dry_run, delete_foreign=delete_foreign,
                                 progress=advance)
    if outcome is None:
        print_plan(plan)
        console().print(plan_summary(plan), style="bold", markup=False)
        console().print(_("Dry run: nothing was changed."), markup=False)
        return
    counts = plan.counts()
    console().print(_("%(applied)d change(s) applied: %(add)d added, %(modify)d modified, "
                      "%(delete)d deleted; %(foreign)d entries not Chaton's kept.")
                    % {"applied": outcome.applied, **counts}, style="bold", markup=False)
    for change, error in outcome.failures:
        console().print(cell(f"! {change.kind} {change.dn}: {error}", "red"), soft_wrap=True)
    if outcome.failures:
        console().print(_("%(count)d change(s) failed; the next sync retries them.")
                        % {"count": len(outcome.failures)}, style="red", markup=False)
        raise typer.Exit(1)
