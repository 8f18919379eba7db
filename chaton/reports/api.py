"""``/api/v1/reports``: the activity reports. Administrators only, but for the list of
published reports (public). Errors are the coded ones of ``/api/v1``: ``invalid`` (400: a
bad name, period, language, section or format), ``not_found`` (404), ``conflict`` (409: a
name taken; any change to a published report), ``forbidden`` (403).
"""

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from chaton.core.api import ERRORS, InputSchema, acting_account
from chaton.reports import actions, queries, render
from chaton.reports.models import Format, Report

router = Router(tags=["reports"])


class FileOut(Schema):
    format: str
    sha256: str
    size: int
    built_at: dt.datetime


class ReportOut(Schema):
    name: str
    starts_on: dt.date
    ends_on: dt.date
    language: str
    state: str
    published_at: dt.datetime | None
    sections: dict[str, str]
    files: list[FileOut]


class PublishedOut(Schema):
    name: str
    starts_on: dt.date
    ends_on: dt.date
    language: str
    published_at: dt.datetime | None
    files: list[FileOut]


class ReportIn(InputSchema):
    name: str = Field(..., examples=["A18"])
    starts_on: dt.date
    ends_on: dt.date
    language: str = Field("fr", description="fr or en")
    sections: dict[str, str] = Field(default_factory=dict,
                                     description="introduction, events, outreach, conclusion")


class ReportChangeIn(InputSchema):
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    language: str | None = None
    sections: dict[str, str] = Field(default_factory=dict)


class BuildIn(InputSchema):
    formats: list[str] = Field(default_factory=lambda: list(Format.values),
                               description="html, pdf, md")


def _out(report: Report, *, with_sections: bool = True) -> dict[str, Any]:
    files = [{"format": item.format, "sha256": item.sha256, "size": len(bytes(item.content)),
              "built_at": item.built_at} for item in report.files.all()]
    found = {"name": report.name, "starts_on": report.starts_on, "ends_on": report.ends_on,
             "language": report.language, "state": report.state,
             "published_at": report.published_at, "files": files}
    if with_sections:
        found["sections"] = report.sections
    return found


@router.get("/published", auth=None, response={200: list[PublishedOut], **ERRORS},
            summary="List the published reports (public)")
def list_published(request: HttpRequest) -> Any:
    return [_out(report, with_sections=False) for report in queries.published()]


@router.get("", response={200: list[ReportOut], **ERRORS}, summary="List the reports")
def list_reports(request: HttpRequest) -> Any:
    return [_out(report) for report in queries.reports()]


@router.post("", response={201: ReportOut, **ERRORS}, summary="Start a draft report")
def create_report(request: HttpRequest, payload: ReportIn) -> Any:
    report = actions.do_create_report(acting_user=acting_account(request),
                                      **payload.model_dump())
    return 201, _out(report)


@router.get("/{name}", response={200: ReportOut, **ERRORS}, summary="Get a report")
def get_report(request: HttpRequest, name: str) -> Any:
    return _out(queries.report_by_name(name))


@router.patch("/{name}", response={200: ReportOut, **ERRORS},
              summary="Change a draft's sections, period or language")
def change_report(request: HttpRequest, name: str, payload: ReportChangeIn) -> Any:
    report = actions.do_update_report(queries.report_by_name(name),
                                      acting_user=acting_account(request),
                                      **payload.model_dump())
    return _out(report)


@router.delete("/{name}", response={204: None, **ERRORS}, summary="Delete a draft")
def delete_report(request: HttpRequest, name: str) -> Any:
    actions.do_delete_report(queries.report_by_name(name), acting_user=acting_account(request))
    return 204, None


@router.post("/{name}/build", response={200: ReportOut, **ERRORS},
             summary="Build a draft's files from today's data")
def build_report(request: HttpRequest, name: str, payload: BuildIn | None = None) -> Any:
    report = queries.report_by_name(name)
    actions.do_build_report(report, formats=payload.formats if payload else None,
                            acting_user=acting_account(request))
    return _out(queries.report_by_name(name))


@router.post("/{name}/publish", response={200: ReportOut, **ERRORS},
             summary="Publish a report: its files are archived and never change")
def publish_report(request: HttpRequest, name: str) -> Any:
    report = actions.do_publish_report(queries.report_by_name(name),
                                       acting_user=acting_account(request))
    return _out(queries.report_by_name(report.name))


@router.get("/{name}/files/{format_name}", response={200: None, **ERRORS},
            summary="Download a report's built file")
def download(request: HttpRequest, name: str, format_name: str) -> HttpResponse:
    found = queries.report_file(queries.report_by_name(name), format_name)
    return file_response(found.report, found.format, bytes(found.content), found.sha256)


def file_response(report: Report, format_name: str, data: bytes, sha256: str, *,
                  attachment: bool = True) -> HttpResponse:
    """The HTTP answer carrying a report's file (also used by the pages)."""
    response = HttpResponse(data, content_type=render.MEDIA_TYPES[Format(format_name)])
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{report.name}.{format_name}"'
    response["Content-Security-Policy"] = render.CONTENT_SECURITY_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["ETag"] = f'"{sha256}"'
    return response
