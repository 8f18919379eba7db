"""Every write of the reports app: a new draft, its sections, its build, its publication.

Each ``do_*`` runs in one transaction with an audit row and takes the acting
account keyword-only. Only administrators write reports. A published report is
archived: its files were built once, at publication, and nothing changes it
afterwards — every action here refuses it (Conflict), whatever the interface.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.core import audit, clock
from chaton.core.errors import Conflict, Forbidden, InvalidInput
from chaton.reports import render
from chaton.reports.models import SECTIONS, Format, Language, Report, ReportFile, ReportState

if TYPE_CHECKING:
    from chaton.directory.models import Account

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
#: The longest section people may write (characters).
SECTION_MAX_LENGTH = 50_000
REPORT_FIELDS = ["name", "starts_on", "ends_on", "language", "state"]


def _require_admin(acting_user: Account | None) -> None:
    if acting_user is not None and not acting_user.is_admin:
        raise Forbidden(_("Only administrators write activity reports."))


def _require_draft(report: Report) -> None:
    if report.is_published:
        raise Conflict(_("Report %(name)s is published: it can no longer change.")
                       % {"name": report.name}, field="state")


def clean_period(starts_on: dt.date | None, ends_on: dt.date | None) -> tuple[dt.date, dt.date]:
    if starts_on is None:
        raise InvalidInput(_("Give the first day of the period."), field="starts_on")
    if ends_on is None:
        raise InvalidInput(_("Give the last day of the period."), field="ends_on")
    if ends_on < starts_on:
        raise InvalidInput(_("The period ends before it starts."), field="ends_on")
    return starts_on, ends_on


def clean_sections(sections: dict[str, Any]) -> dict[str, str]:
    """Return the sections checked: known names, text, not too long. Raise InvalidInput."""
    cleaned = {}
    for name, text in sections.items():
        if name not in SECTIONS:
            raise InvalidInput(_("Unknown section “%(name)s”: choose among %(names)s.")
                               % {"name": name, "names": ", ".join(SECTIONS)}, field="sections")
        if not isinstance(text, str):
            raise InvalidInput(_("A section is Markdown text."), field=name)
        if len(text) > SECTION_MAX_LENGTH:
            raise InvalidInput(_("A section holds at most %(count)d characters.")
                               % {"count": SECTION_MAX_LENGTH}, field=name)
        cleaned[name] = text.replace("\r\n", "\n")
    return cleaned


def do_create_report(*, name: str, starts_on: dt.date | None, ends_on: dt.date | None,
                     language: str = Language.FR, sections: dict[str, Any] | None = None,
                     acting_user: Account | None) -> Report:
    """Create a draft report over a period. Raise InvalidInput, Conflict (the name is
    taken), Forbidden."""
    _require_admin(acting_user)
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InvalidInput(_("A report's name is a short name such as A18 (letters, digits, "
                             "- and _)."), field="name")
    starts_on, ends_on = clean_period(starts_on, ends_on)
    if language not in Language.values:
        raise InvalidInput(_("The language is fr or en."), field="language")
    cleaned = clean_sections(sections or {})
    with transaction.atomic():
        if Report.objects.select_for_update().filter(name=name).exists():
            raise Conflict(_("A report called %(name)s exists already.") % {"name": name},
                           field="name")
        report = Report.objects.create(name=name, starts_on=starts_on, ends_on=ends_on,
                                       language=language, sections=cleaned,
                                       created_by=acting_user)
        audit.record("report.create", report, acting_user=acting_user,
                     after=audit.snapshot(report, REPORT_FIELDS))
    return report


def _locked(report: Report) -> Report:
    locked = Report.objects.select_for_update().get(pk=report.pk)
    _require_draft(locked)
    return locked


def do_update_report(report: Report, *, acting_user: Account | None,
                     sections: dict[str, Any] | None = None,
                     starts_on: dt.date | None = None, ends_on: dt.date | None = None,
                     language: str | None = None) -> Report:
    """Change a draft's sections (those given), period or language. Its built files are
    dropped: they no longer say what it says. Raise Conflict for a published report."""
    _require_admin(acting_user)
    _require_draft(report)
    cleaned = clean_sections(sections or {})
    if language is not None and language not in Language.values:
        raise InvalidInput(_("The language is fr or en."), field="language")
    with transaction.atomic():
        locked = _locked(report)
        before = {**audit.snapshot(locked, REPORT_FIELDS), "sections": sorted(locked.sections)}
        new_start, new_end = clean_period(starts_on or locked.starts_on,
                                          ends_on or locked.ends_on)
        locked.starts_on, locked.ends_on = new_start, new_end
        locked.language = language or locked.language
        locked.sections = {**locked.sections, **cleaned}
        locked.save()
        locked.files.all().delete()
        audit.record("report.update", locked, acting_user=acting_user, before=before,
                     after={**audit.snapshot(locked, REPORT_FIELDS),
                            "sections": sorted(cleaned)})
    return locked


def _store(report: Report, formats: list[str]) -> list[ReportFile]:
    built_at = clock.now()
    files = []
    for item in render.build(report, formats):
        stored, _created = ReportFile.objects.update_or_create(
            report=report, format=item.format,
            defaults={"content": item.content, "sha256": item.sha256, "built_at": built_at})
        files.append(stored)
    return files


def clean_formats(formats: list[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(formats or Format.values))
    for name in chosen:
        if name not in Format.values:
            raise InvalidInput(_("Unknown format “%(format)s”: choose html, pdf or md.")
                               % {"format": name}, field="format")
    return chosen


def do_build_report(report: Report, *, formats: list[str] | None = None,
                    acting_user: Account | None) -> list[ReportFile]:
    """Build a draft's files (all formats by default) from today's data and keep them.
    Raise Conflict for a published report (its files never change)."""
    _require_admin(acting_user)
    chosen = clean_formats(formats)
    _require_draft(report)
    with transaction.atomic():
        locked = _locked(report)
        files = _store(locked, chosen)
        audit.record("report.build", locked, acting_user=acting_user,
                     after={"files": {item.format: item.sha256 for item in files}})
    return files


def do_publish_report(report: Report, *, acting_user: Account | None) -> Report:
    """Build the report in every format one last time, archive the files with their
    SHA-256 and publish it: it is listed on the public page and never changes again.
    Raise Conflict if it is published already."""
    _require_admin(acting_user)
    _require_draft(report)
    with transaction.atomic():
        locked = _locked(report)
        locked.state = ReportState.PUBLISHED
        locked.published_at = clock.now()
        files = _store(locked, list(Format.values))
        locked.save(update_fields=["state", "published_at"])
        audit.record("report.publish", locked, acting_user=acting_user,
                     before={"state": ReportState.DRAFT},
                     after={"state": locked.state,
                            "files": {item.format: item.sha256 for item in files}})
    return locked


def do_delete_report(report: Report, *, acting_user: Account | None) -> None:
    """Delete a draft. Raise Conflict for a published report (it stays archived)."""
    _require_admin(acting_user)
    _require_draft(report)
    with transaction.atomic():
        locked = _locked(report)
        audit.record("report.delete", locked, acting_user=acting_user,
                     before=audit.snapshot(locked, REPORT_FIELDS))
        locked.delete()
