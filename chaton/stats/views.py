"""The statistics pages, for administrators: every subject's figures over a period, one
figure's chart with its busiest day, the gaps, the CSV export."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from chaton.core.errors import InvalidInput
from chaton.core.views import admin_required
from chaton.stats import queries
from chaton.stats.charts import svg_chart
from chaton.stats.figures import figure as figure_of
from chaton.stats.models import CHATON


def _period(request: HttpRequest) -> tuple[queries.Step, str, tuple[object, ...]]:
    """Return the step, an error to show (empty: none) and the period's dates."""
    try:
        start, end, step = queries.period(request.GET.get("start"), request.GET.get("end"),
                                          request.GET.get("step"))
        return step, "", (start, end)
    except InvalidInput as error:
        start, end, step = queries.period(None, None, None)
        return step, str(error), (start, end)


@admin_required
def overview(request: HttpRequest) -> HttpResponse:
    step, error, (start, end) = _period(request)
    subjects = queries.all_subjects()
    subject = request.GET.get("subject") or (subjects[0] if subjects else CHATON)
    chosen = request.GET.get("figure", "")
    names = queries.figures_for(subject)
    charts = []
    for name in names if not chosen else [name for name in names if name == chosen]:
        figure = figure_of(name)
        points = queries.series(name, subject, start, end, step)  # type: ignore[arg-type]
        busiest = queries.busiest_day(name, subject, start, end)  # type: ignore[arg-type]
        charts.append({"name": name, "label": figure.label, "unit": figure.unit,
                       "busiest": busiest, "points": points,
                       "known": sum(1 for _day, value in points if value is not None),
                       "chart": svg_chart(points, title=str(figure.label),
                                          unit=str(figure.unit))})
    return render(request, "stats/overview.html", {
        "subjects": subjects, "subject": subject, "figures": names, "figure": chosen,
        "charts": charts, "start": start, "end": end, "step": step, "error": error,
        "steps": [("day", _("day")), ("week", _("week")), ("month", _("month"))],
        "gaps": queries.gaps(subject, start=start, end=end)})  # type: ignore[arg-type]


@admin_required
def export(request: HttpRequest) -> HttpResponse:
    _step, _error, (start, end) = _period(request)
    rows = queries.csv_rows(request.GET.get("figure") or None,
                            request.GET.get("subject") or None, start, end)  # type: ignore[arg-type]
    response = HttpResponse(queries.csv_text(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="chaton-stats.csv"'
    return response
