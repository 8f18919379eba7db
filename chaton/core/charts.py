"""Small SVG charts drawn on the server: no JavaScript, readable in any browser and in print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]
    color: str


def stacked_bars(labels: Sequence[str], series: Sequence[Series], *, title: str,
                 width: int = 720, height: int = 240) -> SafeString:
    """Return an inline SVG bar chart: one bar per label, one colored segment per series.

    Every text is escaped; the chart has a <title> and a legend so it reads
    without colors too.
    """
    left, bottom, top, right = 36, 28, 24, 8
    plot_width, plot_height = width - left - right, height - top - bottom
    totals = [sum(item.values[index] for item in series) for index in range(len(labels))]
    highest = max([*totals, 1])
    step = max(1, -(-highest // 4))  # about four grid lines
    scale = plot_height / (step * -(-highest // step))
    slot = plot_width / max(len(labels), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
             f'viewBox="0 0 {width} {height}" width="100%"><title>{escape(title)}</title>']
    for value in range(0, highest + step, step):
        y = top + plot_height - value * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#d9dee3" stroke-width="1"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#5b6670">{value}</text>')
    for index, label in enumerate(labels):
        x = left + index * slot + slot * 0.15
        y = top + plot_height
        tooltip = ", ".join(f"{item.label}: {item.values[index]}" for item in series)
        for item in series:
            size = item.values[index] * scale
            y -= size
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{size:.1f}" fill="{item.color}">'
                         f'<title>{escape(label)} — {escape(tooltip)}</title></rect>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - 10}" text-anchor="middle" '
                     f'font-size="11" fill="#5b6670">{escape(label)}</text>')
    legend_x = left
    for item in series:
        parts.append(f'<rect x="{legend_x}" y="6" width="10" height="10" fill="{item.color}"/>'
                     f'<text x="{legend_x + 14}" y="15" font-size="12" fill="#1f2a33">'
                     f'{escape(item.label)}</text>')
        legend_x += 24 + 8 * len(item.label)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 -- every interpolated text is escaped above
