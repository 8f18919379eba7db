"""An activity report written out: HTML (one self-contained page, its charts inline),
PDF (that page through WeasyPrint) and Markdown.

The sections people write are Markdown, rendered safely: raw HTML is shown as
text, links keep only http(s) and mailto addresses, images are not drawn
(nothing is loaded from elsewhere, in the browser or in the PDF).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from markdown_it import MarkdownIt

from chaton.reports.content import Content, gather
from chaton.reports.models import SECTIONS, Format, Report

#: Sent with the HTML report: it runs nothing and loads nothing from elsewhere.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MEDIA_TYPES = {Format.HTML: "text/html; charset=utf-8", Format.PDF: "application/pdf",
               Format.MD: "text/markdown; charset=utf-8"}
_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _markdown() -> MarkdownIt:
    # No raw HTML, no images (a picture from elsewhere would tell it who reads the report).
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")

    def validate(url: str) -> bool:
        return url.strip().lower().startswith(_SAFE_SCHEMES) or url.startswith("#")

    parser.validateLink = validate  # type: ignore[method-assign]
    return parser


def markdown_to_html(text: str) -> SafeString:
    """Given Markdown people wrote, return HTML where nothing they wrote is markup of its own."""
    return mark_safe(_markdown().render(text or ""))  # noqa: S308 - raw HTML is escaped


def section_title(name: str) -> str:
    titles = {"introduction": _("Introduction"), "events": _("Events"),
              "outreach": _("Outreach"), "conclusion": _("Conclusion")}
    return titles.get(name, name)


def _title(report: Report) -> str:
    return _("Activity report %(name)s") % {"name": report.name}


def _drills_sentence(content: Content) -> str:
    backups = content.backups
    if backups is None or not backups.drills:
        return _("Restores tested: none in the period.")
    if not backups.drills_failed:
        return ngettext("Restores tested: %(count)d, passed.",
                        "Restores tested: %(count)d, all passed.",
                        backups.drills) % {"count": backups.drills}
    return _("Restores tested: %(count)d, %(failed)d failed.") % {
        "count": backups.drills, "failed": backups.drills_failed}


def to_html(report: Report, content: Content | None = None) -> str:
    """Return the report as one HTML page in its language."""
    with translation.override(report.language):
        content = content or gather(report)
        sections = {name: markdown_to_html(report.sections.get(name, ""))
                    for name in SECTIONS if str(report.sections.get(name, "")).strip()}
        return render_to_string("reports/document.html", {
            "report": report, "content": content, "title": _title(report),
            "collective": content.collective, "draft": not report.is_published,
            "sections": sections, "drills_sentence": _drills_sentence(content),
            "diagram": mark_safe(content.diagram),  # noqa: S308 - drawn by services.diagram
            "decisions": [(_("Ordinary actions"), content.ordinary),
                          (_("Extraordinary actions"), content.extraordinary)]})


def to_pdf(report: Report, content: Content | None = None, *, html: str | None = None) -> bytes:
    """Return the report as PDF (A4, its charts as vectors)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    page = html if html is not None else to_html(report, content)
    # Nothing is fetched: the charts are inline, and no address in the page is followed.
    fetcher = URLFetcher(allowed_protocols=["data"], timeout=1)
    pdf = HTML(string=page, url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def _md_cell(text: object) -> str:
    from chaton.governance.export import markdown_text

    return markdown_text(str(text))


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return [*out, ""]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def to_markdown(report: Report, content: Content | None = None) -> str:
    """Return the report as Markdown: the sections people wrote as they wrote them, the
    figures as tables (no charts)."""
    with translation.override(report.language):
        content = content or gather(report)
        written = {name: str(report.sections.get(name, "")).strip() for name in SECTIONS}
        out = [f"# {_title(report)}", "",
               f"{content.collective} — " + _("from %(start)s to %(end)s")
               % {"start": report.starts_on, "end": report.ends_on}, ""]
        if written["introduction"]:
            out += [f"## {section_title('introduction')}", "", written["introduction"], ""]
        out += [f"## {_('The team')}", ""]
        for team in content.teams:
            out += [f"### {_md_cell(team.name)}", "", ", ".join(_md_cell(name)
                                                               for name in team.members), ""]
        if not content.teams:
            out += [_("No team group in the directory."), ""]
        members = content.members
        assert members is not None
        out += [f"## {_('Members')}", "",
                _("On %(date)s: %(total)s members, %(natural)s natural persons and %(legal)s "
                  "legal persons.") % {"date": report.ends_on, "total": members.total,
                                       "natural": members.natural, "legal": members.legal}, ""]
        out += _md_table(["", _("regular"), _("support"), _("Total")], [
            [_("Natural persons"), str(members.natural_regular), str(members.natural_support),
             str(members.natural)],
            [_("Legal persons"), str(members.legal_regular), str(members.legal_support),
             str(members.legal)]])
        out += [_("Memberships started in the period: %(joined)s; ended: %(left)s.")
                % {"joined": members.joined, "left": members.left} + " "
                + _("Dues received: %(count)s payments, %(total)s EUR.")
                % {"count": members.dues_count, "total": f"{members.dues_total:.2f}"}, ""]
        out += [f"## {_('Services')}", "",
                _("Instances running at the end of the period: %(count)s.")
                % {"count": content.running}, ""]
        for title, lines in ((_("Opened in the period"), content.opened),
                             (_("Closed in the period"), content.closed)):
            out += [f"### {title}", ""]
            if lines:
                out += _md_table([_("Instance"), _("Application"), _("Address"), _("For"),
                                  _("Date")],
                                 [[line.name, line.application, line.domain, line.holder,
                                   line.day.isoformat()] for line in lines])
            else:
                out += [_("None."), ""]
        out += [f"## {_('Decisions')}", ""]
        for title, decisions in ((_("Ordinary actions"), content.ordinary),
                                 (_("Extraordinary actions"), content.extraordinary)):
            out += [f"### {title}", ""]
            if not decisions:
                out += [_("None."), ""]
                continue
            out.append("| " + " | ".join([_("ID"), _("Object"), _("Proposed by"), _("Date"),
                                         _("For"), _("Against"), _("Link")]) + " |")
            out.append("|" + "---|" * 7)
            for line in decisions:
                cells = [_md_cell(getattr(line, name)) for name in
                         ("id", "title", "proposed_by", "date", "votes_for", "votes_against")]
                link = str(getattr(line, "link")).replace(" ", "%20").replace("|", "%7C")
                out.append("| " + " | ".join(cells) + f" | <{link}> |")
            out.append("")
        out += [f"## {_('Usage')}", ""]
        if content.figures:
            rows = []
            for figure in content.figures:
                busiest = (f"{figure.busiest[0]} ({_number(figure.busiest[1])})"
                           if figure.busiest else "—")
                value = (_("no data") if figure.value is None
                         else f"{_number(figure.value)} {figure.unit}")
                rows.append([figure.subject, figure.label, value, busiest])
            out += _md_table([_("Service"), _("Figure"), _("Value"), _("Busiest day")], rows)
        else:
            out += [_("no data"), ""]
        for warning in content.warnings:
            out.append(f"- {_md_cell(warning)}")
        if content.warnings:
            out.append("")
        backups = content.backups
        assert backups is not None
        out += [f"## {_('Backups and restore drills')}", "",
                _("Backups made: %(count)s (%(failed)s failed).")
                % {"count": backups.backups, "failed": backups.backups_failed}, "",
                _drills_sentence(content), ""]
        out += [f"## {_('Uptime and incidents')}", ""]
        if content.uptime:
            out += _md_table([_("Service"), _("Uptime"), _("Incidents")], [
                [line.service, _("no data") if line.uptime is None else f"{line.uptime:.2f} %",
                 ", ".join(f"{incident.opened} ({incident.duration})"
                           for incident in line.incidents) or _("none")]
                for line in content.uptime])
        else:
            out += [_("no data"), ""]
        for name in ("events", "outreach", "conclusion"):
            if written[name]:
                out += [f"## {section_title(name)}", "", written[name], ""]
        return "\n".join(out)


@dataclass(frozen=True)
class Built:
    format: str
    content: bytes
    sha256: str


def build(report: Report, formats: list[str]) -> list[Built]:
    """Return the report written in each of ``formats`` (facts gathered once)."""
    with translation.override(report.language):
        content = gather(report)
    built = []
    html: str | None = None
    for name in formats:
        if name == Format.MD:
            data = to_markdown(report, content).encode()
        else:
            html = html if html is not None else to_html(report, content)
            data = html.encode() if name == Format.HTML else to_pdf(report, html=html)
        built.append(Built(name, data, hashlib.sha256(data).hexdigest()))
    return built
