"""The inventory of decisions for a period, as the activity report shows it:

| ID | Object | Proposed by | Date | For | Against | Link |
|---|---|---|---|---|---|---|
| #28 | Give access to the technical passwords to … | … | 2021-03-01 | 15/15 | 0/15 | … |

Ordinary and extraordinary actions are listed in two tables. "For" and
"Against" are the votes over the electorate counted when the vote opened; an
ordinary action without a counter-vote shows "—". Rendered as Markdown, CSV or
HTML (a fragment the report embeds, or a whole page).

What members wrote (titles, names) is shown as text in every format: escaped
for HTML, written as literal Markdown (:func:`markdown_text`), and kept from
being read as a formula in CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.governance import queries
from chaton.governance.queries import DecisionRow

FORMATS = ("md", "csv", "html")
#: Sent with every inventory: an HTML one opened in the browser runs nothing and loads
#: nothing, whatever a title holds (the values are escaped besides).
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Line:
    """One decision as the inventory prints it; every value is text."""

    id: str
    title: str
    proposed_by: str
    date: str
    votes_for: str
    votes_against: str
    status: str
    link: str


@dataclass(frozen=True)
class Inventory:
    start: dt.date
    end: dt.date
    ordinary: list[Line]
    extraordinary: list[Line]


def _line(row: DecisionRow, base_url: str) -> Line:
    decision = row.decision
    tally = row.tally
    if tally is None:
        votes_for = votes_against = "—"
    else:
        votes_for = f"{tally.votes_for}/{tally.electorate}"
        votes_against = f"{tally.votes_against}/{tally.electorate}"
    return Line(
        id=f"#{decision.pk}", title=decision.title, proposed_by=decision.proposed_by_label,
        date=clock.local_day(decision.created_at).isoformat(), votes_for=votes_for,
        votes_against=votes_against, status=str(decision.get_status_display()),
        link=base_url + reverse("decision-detail", args=[decision.pk]))


def inventory(start: dt.date, end: dt.date, base_url: str | None = None) -> Inventory:
    """Given a period (both days included), return its inventory. Links start with
    ``base_url`` (default: the configured public address)."""
    base = (base_url if base_url is not None else settings.CHATON.resolved_public_url).rstrip("/")
    ordinary, extraordinary = queries.by_kind(queries.in_period(start, end))
    return Inventory(start, end, [_line(row, base) for row in ordinary],
                     [_line(row, base) for row in extraordinary])


def _headers() -> list[str]:
    return [_("ID"), _("Object"), _("Proposed by"), _("Date"), _("For"), _("Against"),
            _("Status"), _("Link")]


def _cells(line: Line) -> list[str]:
    return [line.id, line.title, line.proposed_by, line.date, line.votes_for,
            line.votes_against, line.status, line.link]


def _sections(inventory: Inventory) -> list[tuple[str, list[Line]]]:
    return [(_("Ordinary actions"), inventory.ordinary),
            (_("Extraordinary actions"), inventory.extraordinary)]


#: Characters that start Markdown syntax inside a table cell: escapes, code, emphasis, links
#: and images (``[``, ``]``; a ``(`` or ``!`` means nothing without them), strikethrough, the
#: cell's end. Each is written backslash-escaped. (Block syntax, ``#`` or ``-``, only counts
#: at the start of a line, where a cell never is.)
_MARKDOWN_PUNCTUATION = frozenset("\\`*_[]~|")
#: Raw HTML, autolinks and character references: written as entities, which every renderer
#: shows as the character itself (a backslash before ``<`` is not understood everywhere).
_MARKDOWN_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown_text(text: str) -> str:
    """Given what a member wrote, return Markdown that shows exactly that text, as text.

    Nothing in it can become markup: no raw HTML (``<script>``), no link or
    image (``[x](javascript:…)``), no emphasis; white space, newlines
    included, becomes single spaces, so that it stays inside one table row;
    a pipe is escaped so that it stays inside one cell.
    """
    escaped = []
    for character in " ".join(text.split()):
        if character in _MARKDOWN_ENTITIES:
            escaped.append(_MARKDOWN_ENTITIES[character])
        elif character in _MARKDOWN_PUNCTUATION:
            escaped.append("\\" + character)
        else:
            escaped.append(character)
    return "".join(escaped)


def _markdown_link(label: str, url: str) -> str:
    """Return a Markdown link to ``url`` (an address Chaton built), its label escaped."""
    # <…> keeps parentheses and spaces of the address inside the destination.
    destination = url.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
    return f"[{markdown_text(label)}](<{destination}>)"


def to_markdown(inventory: Inventory) -> str:
    """Return the inventory as Markdown: a title, then one table per kind."""
    out = [_("# Decisions from %(start)s to %(end)s") % {"start": inventory.start,
                                                        "end": inventory.end}, ""]
    for title, lines in _sections(inventory):
        out += [f"## {title}", ""]
        if not lines:
            out += [_("None."), ""]
            continue
        headers = _headers()
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "---|" * len(headers))
        for line in lines:
            cells = [markdown_text(cell) for cell in _cells(line)[:-1]]
            cells.append(_markdown_link(line.id, line.link).replace("|", "%7C"))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _csv_safe(text: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(inventory: Inventory) -> str:
    """Return the inventory as CSV: a "Kind" column first, then the table's columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Kind"), *_headers()])
    for title, lines in (( _("ordinary"), inventory.ordinary),
                         (_("extraordinary"), inventory.extraordinary)):
        for line in lines:
            writer.writerow([_csv_safe(cell) for cell in (title, *_cells(line))])
    return buffer.getvalue()


def to_html(inventory: Inventory, *, whole_page: bool = True) -> str:
    """Return the inventory as HTML: every value escaped; a whole page unless ``whole_page``
    is false (then a fragment to embed)."""
    title = _("Decisions from %(start)s to %(end)s") % {"start": inventory.start,
                                                       "end": inventory.end}
    parts = [f"<h1>{escape(title)}</h1>"]
    for section, lines in _sections(inventory):
        parts.append(f"<h2>{escape(section)}</h2>")
        if not lines:
            parts.append(f"<p>{escape(_('None.'))}</p>")
            continue
        head = "".join(f'<th scope="col">{escape(header)}</th>' for header in _headers())
        body = []
        for line in lines:
            cells: list[str] = [escape(cell) for cell in _cells(line)[:-1]]
            cells.append(f'<a href="{escape(line.link)}">{escape(line.link)}</a>')
            body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
                     "</table>")
    fragment = "\n".join(parts)
    if not whole_page:
        return fragment
    return (f'<!doctype html>\n<html lang="{escape(settings.LANGUAGE_CODE)}"><head>'
            f'<meta charset="utf-8"><title>{escape(title)}</title></head>'
            f"<body>\n{fragment}\n</body></html>\n")


def render(inventory: Inventory, format_name: str) -> tuple[str, str]:
    """Given an inventory and ``md``, ``csv`` or ``html``, return (content, media type).

    Raise InvalidInput for another format.
    """
    from chaton.core.errors import InvalidInput

    if format_name == "md":
        return to_markdown(inventory), "text/markdown; charset=utf-8"
    if format_name == "csv":
        return to_csv(inventory), "text/csv; charset=utf-8"
    if format_name == "html":
        return to_html(inventory), "text/html; charset=utf-8"
    raise InvalidInput(_("Unknown format “%(format)s”: choose md, csv or html.")
                       % {"format": format_name}, field="format")
