"""A figure's series as an SVG line chart drawn on the server (pages and reports alike).

Gaps stay gaps: the line breaks where a period has no value. Every text is
escaped; the chart has a <title> and each point a tooltip, so it reads
without colours and prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _


def _nice_step(highest: float) -> float:
    """Return a round grid step that cuts ``highest`` into about four parts."""
    raw = max(highest / 4, 1e-9)
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _number(value: float) -> str:
    return number_format(int(value) if float(value).is_integer() else round(value, 2),
                         force_grouping=True)


def svg_chart(series: Sequence[tuple[dt.date, float | None]], *, title: str, unit: str,
              width: int = 720, height: int = 240) -> SafeString:
    """Return an inline SVG chart of ``series`` (as :func:`chaton.stats.queries.series` gives).

    Points without a value (None) break the line; a series without any value
    draws the axes and says "no data".
    """
    left, bottom, top, right = 56, 28, 24, 12
    plot_width, plot_height = width - left - right, height - top - bottom
    known = [value for _day, value in series if value is not None]
    highest = max([*known, 0.0])
    step = _nice_step(highest) if highest > 0 else 1.0
    ceiling = step * max(1, -(-highest // step))
    slot = plot_width / max(len(series) - 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
             f'viewBox="0 0 {width} {height}" width="100%"><title>{escape(title)}</title>']
    grid = 0.0
    while grid <= ceiling + 1e-9:
        y = top + plot_height - grid / ceiling * plot_height
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#d9dee3" stroke-width="1"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#5b6670">{escape(_number(grid))}</text>')
        grid += step
    runs: list[list[tuple[float, float]]] = [[]]
    labels_every = max(1, len(series) // 8)
    for index, (day, value) in enumerate(series):
        x = left + (index * slot if len(series) > 1 else plot_width / 2)
        if index % labels_every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" '
                         f'font-size="11" fill="#5b6670">{escape(day.isoformat())}</text>')
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        y = top + plot_height - value / ceiling * plot_height
        runs[-1].append((x, y))
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#2f6f9f"><title>'
                     f'{escape(day.isoformat())}: {escape(_number(value))} {escape(unit)}'
                     f'</title></circle>')
    for run in runs:
        if len(run) > 1:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(f'<polyline points="{points}" fill="none" stroke="#2f6f9f" '
                         f'stroke-width="2"/>')
    if not known:
        parts.append(f'<text x="{left + plot_width / 2:.1f}" y="{top + plot_height / 2:.1f}" '
                     f'text-anchor="middle" font-size="14" fill="#5b6670">'
                     f'{escape(_("no data"))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 -- every interpolated text is escaped above
