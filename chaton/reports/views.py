"""The reports' pages: for administrators the list, a new draft, its sections, build,
preview, download and publication; for everyone the published reports."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chaton.core.errors import ChatonError, NotFound
from chaton.core.views import admin_required, posted, show_error, signed_in
from chaton.reports import actions, queries
from chaton.reports import render as writer
from chaton.reports.api import file_response
from chaton.reports.forms import ReportForm, SectionsForm
from chaton.reports.models import SECTIONS, Format, Report


def _report(name: str) -> Report:
    try:
        return queries.report_by_name(name)
    except NotFound as error:
        raise Http404(str(error)) from None


def public_list(request: HttpRequest) -> HttpResponse:
    return render(request, "reports/public_list.html", {"reports": queries.published()})


def public_file(request: HttpRequest, name: str, format_name: str) -> HttpResponse:
    report = _report(name)
    if not report.is_published or format_name not in Format.values:
        raise Http404(_("No published report is called %(name)s.") % {"name": name[:40]})
    try:
        found = queries.report_file(report, format_name)
    except NotFound as error:
        raise Http404(str(error)) from None
    return file_response(report, format_name, bytes(found.content), found.sha256,
                         attachment=format_name != Format.HTML)


@admin_required
def admin_list(request: HttpRequest) -> HttpResponse:
    form = ReportForm(posted(request))
    if form.is_bound and form.is_valid():
        try:
            report = actions.do_create_report(acting_user=signed_in(request), **form.cleaned_data)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("Draft report %(name)s created.") % {"name": report.name})
            return redirect("report-admin-detail", report.name)
    return render(request, "reports/admin_list.html",
                  {"reports": queries.reports(), "form": form})


@admin_required
def admin_detail(request: HttpRequest, name: str) -> HttpResponse:
    report = _report(name)
    initial = {"starts_on": report.starts_on, "ends_on": report.ends_on,
               "language": report.language, **report.sections}
    form = SectionsForm(posted(request), initial=initial)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_update_report(report, acting_user=signed_in(request),
                                     starts_on=data["starts_on"], ends_on=data["ends_on"],
                                     language=data["language"],
                                     sections={key: data[key] for key in SECTIONS})
        except ChatonError as error:
            if report.is_published:  # the form is not shown: say it above the page
                messages.error(request, str(error))
            show_error(form, error)
        else:
            messages.success(request, _("Report %(name)s saved.") % {"name": report.name})
            return redirect("report-admin-detail", report.name)
    return render(request, "reports/admin_detail.html",
                  {"report": report, "form": form, "files": list(report.files.all())})


@admin_required
@require_POST
def admin_build(request: HttpRequest, name: str) -> HttpResponse:
    report = _report(name)
    try:
        actions.do_build_report(report, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Report %(name)s built.") % {"name": report.name})
    return redirect("report-admin-detail", report.name)


@admin_required
@require_POST
def admin_publish(request: HttpRequest, name: str) -> HttpResponse:
    report = _report(name)
    try:
        actions.do_publish_report(report, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Report %(name)s published.") % {"name": report.name})
    return redirect("report-admin-detail", report.name)


@admin_required
def admin_preview(request: HttpRequest, name: str) -> HttpResponse:
    """The report as HTML: a published one as archived, a draft from today's data."""
    report = _report(name)
    if report.is_published:
        found = queries.report_file(report, Format.HTML)
        return file_response(report, Format.HTML, bytes(found.content), found.sha256,
                             attachment=False)
    html = writer.to_html(report).encode()
    return file_response(report, Format.HTML, html, "", attachment=False)


@admin_required
def admin_download(request: HttpRequest, name: str, format_name: str) -> HttpResponse:
    report = _report(name)
    try:
        found = queries.report_file(report, format_name)
    except NotFound as error:
        raise Http404(str(error)) from None
    return file_response(report, found.format, bytes(found.content), found.sha256)
