"""``chaton stats``: collect a day's figures, show a figure's series, export the samples
(see :mod:`chaton.stats`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from django.utils.translation import gettext as _
from rich.table import Table

from chaton.cli.runtime import acting_user, cell, console, parse_date, setup_django

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("collect")
def collect(
    day: Annotated[str, typer.Option(help="The day to collect (YYYY-MM-DD); default: "
                                          "today.")] = "",
) -> None:
    """Collect the figures of a day: every instance, the collective's, the access log."""
    setup_django()
    from chaton.stats.actions import do_collect

    chosen = parse_date(day, field="day") if day else None
    result = do_collect(day=chosen, acting_user=acting_user())
    console().print(_("%(samples)d sample(s) for %(day)s, %(requests)d HTTP request(s) read.")
                    % {"samples": result.samples, "day": result.day.isoformat(),
                       "requests": result.requests})
    for subject, message in sorted(result.gaps.items()):
        console().print(_("Gap: %(subject)s: %(message)s") % {"subject": subject,
                                                                "message": message})


@app.command("show")
def show(
    figure: Annotated[str, typer.Argument(help="The figure, e.g. chaton.members or "
                                               "etherpad.pads.")],
    subject: Annotated[str, typer.Option(help="An instance's short name, or chaton.")] = "chaton",
    step: Annotated[str, typer.Option(help="day, week or month.")] = "day",
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD); default: 30 days "
                                            "ago.")] = "",
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD); default: today.")] = "",
) -> None:
    """Show a figure's values over a period (empty: no sample that period)."""
    setup_django()
    from chaton.core.errors import NotFound
    from chaton.stats import queries
    from chaton.stats.figures import figure as figure_of

    first, last, chosen = queries.period(start, end, step)
    if subject not in queries.subjects(figure):
        raise NotFound(_("No samples of %(figure)s for %(subject)s.")
                       % {"figure": figure, "subject": subject})
    meaning = figure_of(figure)
    table = Table(title=f"{meaning.label} — {subject}")
    table.add_column(_("Period"))
    table.add_column(str(meaning.unit) or _("Value"), justify="right")
    for day, value in queries.series(figure, subject, first, last, chosen):
        table.add_row(day.isoformat(), cell("" if value is None else f"{value:g}"))
    console().print(table)
    busiest = queries.busiest_day(figure, subject, first, last)
    if busiest:
        console().print(_("The busiest day: %(day)s (%(value)s).")
                        % {"day": busiest[0].isoformat(), "value": f"{busiest[1]:g}"})


@app.command("export")
def export(
    csv: Annotated[bool, typer.Option("--csv", help="As CSV (the only format).")] = True,
    figure: Annotated[str, typer.Option(help="Only this figure.")] = "",
    subject: Annotated[str, typer.Option(help="Only this subject.")] = "",
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "",
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD).")] = "",
) -> None:
    """Write the samples as CSV on stdout: figure, subject, day, value."""
    setup_django()
    from chaton.stats import queries

    first = parse_date(start, field="start") if start else None
    last = parse_date(end, field="end") if end else None
    sys.stdout.write(queries.csv_text(queries.csv_rows(figure or None, subject or None,
                                                       first, last)))
