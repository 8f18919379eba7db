"""``chaton report``: the activity reports (see :mod:`chaton.reports`).

``new`` starts a draft over a period, ``build`` writes its files from today's
data (``--output`` also saves one on disk), ``publish`` archives them for good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from django.utils.translation import gettext as _
from rich.table import Table

from chaton.cli.runtime import acting_user, cell, console, parse_date, setup_django

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("new")
def new(name: Annotated[str, typer.Argument(help="A short name, such as A18.")],
        start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
        end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
        language: Annotated[str, typer.Option(help="fr or en.")] = "fr") -> None:
    """Start a draft report over a period."""
    setup_django()
    from chaton.reports.actions import do_create_report

    report = do_create_report(name=name, starts_on=parse_date(start, field="from"),
                              ends_on=parse_date(end, field="to"), language=language,
                              acting_user=acting_user())
    console().print(_("Draft report %(name)s created: %(start)s → %(end)s.")
                    % {"name": report.name, "start": report.starts_on, "end": report.ends_on})


@app.command("build")
def build(name: Annotated[str, typer.Argument(help="The report's name.")],
          formats: Annotated[list[str] | None, typer.Option(
              "--format", help="html, pdf or md (repeat; default: all three).")] = None,
          output: Annotated[Path | None, typer.Option(
              help="A directory to save the built files in, as NAME.FORMAT.")] = None) -> None:
    """Build a draft's files from today's data."""
    setup_django()
    from chaton.reports.actions import do_build_report
    from chaton.reports.queries import report_by_name

    files = do_build_report(report_by_name(name), formats=formats or None,
                            acting_user=acting_user())
    table = Table(_("File"), _("Size"), "SHA-256")
    for item in files:
        data = bytes(item.content)
        table.add_row(cell(f"{name}.{item.format}"), cell(len(data)), cell(item.sha256))
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
            (output / f"{name}.{item.format}").write_bytes(data)
    console().print(table)


@app.command("publish")
def publish(name: Annotated[str, typer.Argument(help="The report's name.")]) -> None:
    """Publish a report: built one last time, archived, listed publicly, never changed."""
    setup_django()
    from chaton.reports.actions import do_publish_report
    from chaton.reports.queries import report_by_name

    report = do_publish_report(report_by_name(name), acting_user=acting_user())
    console().print(_("Report %(name)s published.") % {"name": report.name})


@app.command("list")
def list_reports() -> None:
    """List the reports."""
    setup_django()
    from chaton.reports.queries import reports

    table = Table(_("Report"), _("From"), _("To"), _("Language"), _("State"))
    for report in reports():
        table.add_row(cell(report.name), cell(report.starts_on), cell(report.ends_on),
                      cell(report.language), cell(report.get_state_display()))
    console().print(table)
