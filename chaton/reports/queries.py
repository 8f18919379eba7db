"""Reads of the reports app."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.reports.models import Format, Report, ReportFile, ReportState


def reports() -> QuerySet[Report]:
    return Report.objects.prefetch_related("files").order_by("-starts_on", "name")


def published() -> QuerySet[Report]:
    """The published reports, newest period first: what the public page lists."""
    return reports().filter(state=ReportState.PUBLISHED)


def report_by_name(name: str) -> Report:
    """Return the report called ``name``. Raise NotFound."""
    report = Report.objects.filter(name=name).first()
    if report is None:
        raise NotFound(_("No report is called %(name)s.") % {"name": name[:40]}, field="name")
    return report


def report_file(report: Report, format_name: str) -> ReportFile:
    """Return a report's built file in ``format_name``. Raise NotFound (not built yet, or an
    unknown format)."""
    found = (ReportFile.objects.filter(report=report, format=format_name).first()
             if format_name in Format.values else None)
    if found is None:
        raise NotFound(_("Report %(name)s has no %(format)s file: build it first.")
                       % {"name": report.name, "format": format_name[:8]}, field="format")
    return found
