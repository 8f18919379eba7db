"""Reads of the statistics: series over a period, the busiest day, what is known."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.utils.translation import gettext as _

from chaton.core.errors import InvalidInput
from chaton.stats.figures import figure as figure_of
from chaton.stats.models import Gap, Sample

Step = Literal["day", "week", "month"]
STEPS: tuple[Step, ...] = ("day", "week", "month")


def period_start(day: dt.date, step: Step) -> dt.date:
    """Return the first day of the period of ``step`` that holds ``day`` (weeks start on Monday)."""
    if step == "week":
        return day - dt.timedelta(days=day.weekday())
    if step == "month":
        return day.replace(day=1)
    return day


def _next(start: dt.date, step: Step) -> dt.date:
    if step == "week":
        return start + dt.timedelta(days=7)
    if step == "month":
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return start + dt.timedelta(days=1)


def periods(start: dt.date, end: dt.date, step: Step) -> list[dt.date]:
    """Return the first days of the periods of ``step`` from ``start`` to ``end`` (included)."""
    if step not in STEPS:
        raise InvalidInput(_("The step must be day, week or month."), field="step")
    if end < start:
        raise InvalidInput(_("The end comes before the start."), field="end")
    found, current = [], period_start(start, step)
    while current <= end:
        found.append(current)
        current = _next(current, step)
    return found


def series(figure: str, subject: str, start: dt.date, end: dt.date,
           step: Step = "day") -> list[tuple[dt.date, float | None]]:
    """Return ``(first day of the period, value)`` for each period from ``start`` to ``end``.

    A gauge's value is its last sample in the period, a count's the sum of its
    samples; a period without any sample is None (a gap stays a gap).
    """
    starts = periods(start, end, step)
    gauge = figure_of(figure).kind == "gauge"
    values: dict[dt.date, float] = {}
    rows = (Sample.objects.filter(figure=figure, subject=subject, day__gte=start, day__lte=end)
            .order_by("day").values_list("day", "value"))
    for day, value in rows:
        key = period_start(day, step)
        values[key] = value if gauge or key not in values else values[key] + value
    return [(key, values.get(key)) for key in starts]


def busiest_day(figure: str, subject: str, start: dt.date,
                end: dt.date) -> tuple[dt.date, float] | None:
    """Return the day of the highest sample from ``start`` to ``end``, or None without any."""
    row = (Sample.objects.filter(figure=figure, subject=subject, day__gte=start, day__lte=end)
           .order_by("-value", "day").values_list("day", "value").first())
    return (row[0], row[1]) if row else None


def subjects(figure: str) -> list[str]:
    """Return the subjects that have samples of ``figure``."""
    return sorted(set(Sample.objects.filter(figure=figure).values_list("subject", flat=True)))


def figures_for(subject: str) -> list[str]:
    """Return the figures sampled for ``subject``."""
    return sorted(set(Sample.objects.filter(subject=subject).values_list("figure", flat=True)))


def all_subjects() -> list[str]:
    """Return every subject with samples, the collective's own first."""
    found = set(Sample.objects.values_list("subject", flat=True))
    return sorted(found, key=lambda subject: (subject != "chaton", subject))


def gaps(subject: str | None = None, *, start: dt.date | None = None,
         end: dt.date | None = None) -> list[Gap]:
    """Return the collections that failed, newest first."""
    chosen = Gap.objects.all()
    if subject:
        chosen = chosen.filter(subject=subject)
    if start:
        chosen = chosen.filter(day__gte=start)
    if end:
        chosen = chosen.filter(day__lte=end)
    return list(chosen[:200])


def csv_rows(figure: str | None = None, subject: str | None = None,
             start: dt.date | None = None, end: dt.date | None = None) -> list[list[str]]:
    """Return the samples as CSV rows, a header first: figure, subject, day, value."""
    chosen = Sample.objects.all()
    if figure:
        chosen = chosen.filter(figure=figure)
    if subject:
        chosen = chosen.filter(subject=subject)
    if start:
        chosen = chosen.filter(day__gte=start)
    if end:
        chosen = chosen.filter(day__lte=end)
    rows = [["figure", "subject", "day", "value"]]
    for name, who, day, value in chosen.order_by("figure", "subject", "day").values_list(
            "figure", "subject", "day", "value"):
        rows.append([name, who, day.isoformat(), f"{value:g}"])
    return rows


def parse_day(text: str | None, *, field: str, default: dt.date) -> dt.date:
    """Given ``YYYY-MM-DD`` (or nothing: ``default``), return the day; InvalidInput else."""
    if not text:
        return default
    try:
        if len(text.strip()) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(_("“%(value)s” is not a date: expected YYYY-MM-DD.")
                           % {"value": text}, field=field) from None


def period(start: str | None, end: str | None, step: str | None) -> tuple[dt.date, dt.date, Step]:
    """Return the period asked (default: the last 30 days, by day); InvalidInput when wrong."""
    from chaton.core import clock

    last = parse_day(end, field="end", default=clock.today())
    first = parse_day(start, field="start", default=last - dt.timedelta(days=29))
    chosen = step or "day"
    if chosen not in STEPS:
        raise InvalidInput(_("The step must be day, week or month."), field="step")
    if last < first:
        raise InvalidInput(_("The end comes before the start."), field="end")
    if (last - first).days > 366 * 10:
        raise InvalidInput(_("A period is at most ten years long."), field="start")
    return first, last, chosen  # type: ignore[return-value]


def csv_text(rows: list[list[str]]) -> str:
    """Return rows as CSV text (a cell that a spreadsheet would run as a formula is quoted)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([f"'{cell}" if cell[:1] in ("=", "+", "-", "@") and not
                         cell.lstrip("-").replace(".", "", 1).isdigit() else cell
                         for cell in row])
    return out.getvalue()
