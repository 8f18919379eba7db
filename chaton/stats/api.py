"""``/api/v1/stats``: the figures, a figure's series over a period, the samples as CSV.

Administrators only. Errors are the coded ones of ``/api/v1``: ``invalid``
(400: a bad date or step, with its ``field``), ``not_found`` (404: an unknown
figure or subject).
"""

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from chaton.core.api import ERRORS
from chaton.core.errors import NotFound
from chaton.stats import queries
from chaton.stats.figures import figure as figure_of

router = Router(tags=["stats"])


class FigureOut(Schema):
    name: str
    label: str
    unit: str
    kind: str
    subjects: list[str]


class PointOut(Schema):
    start: dt.date
    value: float | None


class SeriesOut(Schema):
    figure: str
    subject: str
    step: str
    start: dt.date
    end: dt.date
    points: list[PointOut]
    busiest_day: dt.date | None
    busiest_value: float | None


@router.get("/figures", response={200: list[FigureOut], **ERRORS},
            summary="List the figures collected, with their subjects")
def list_figures(request: HttpRequest) -> list[dict[str, Any]]:
    found = []
    for subject in queries.all_subjects():
        for name in queries.figures_for(subject):
            found.append(name)
    result = []
    for name in sorted(set(found)):
        figure = figure_of(name)
        result.append({"name": name, "label": str(figure.label), "unit": str(figure.unit),
                       "kind": figure.kind, "subjects": queries.subjects(name)})
    return result


@router.get("/series/{figure}", response={200: SeriesOut, **ERRORS},
            summary="A figure's values over a period (null: no sample, a gap)")
def get_series(request: HttpRequest, figure: str, subject: str = "chaton",
               start: str = "", end: str = "", step: str = "day") -> dict[str, Any]:
    first, last, chosen = queries.period(start, end, step)
    if subject not in queries.subjects(figure):
        raise NotFound(f"No samples of {figure} for {subject}.")
    busiest = queries.busiest_day(figure, subject, first, last)
    return {"figure": figure, "subject": subject, "step": chosen, "start": first, "end": last,
            "points": [{"start": day, "value": value}
                       for day, value in queries.series(figure, subject, first, last, chosen)],
            "busiest_day": busiest[0] if busiest else None,
            "busiest_value": busiest[1] if busiest else None}


@router.get("/samples.csv", response={200: None, **ERRORS},
            summary="The samples as CSV: figure, subject, day, value")
def samples_csv(request: HttpRequest, figure: str = "", subject: str = "", start: str = "",
                end: str = "") -> HttpResponse:
    first = queries.parse_day(start, field="start", default=dt.date.min) if start else None
    last = queries.parse_day(end, field="end", default=dt.date.max) if end else None
    text = queries.csv_text(queries.csv_rows(figure or None, subject or None, first, last))
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="chaton-stats.csv"'
    return response
