"""The reports' part of ``chaton demo``: the draft report of the current semester, with an
introduction to rewrite. ``chaton report build <name>`` then writes it from the demo's
data; loading again changes nothing."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.demo import DemoReport


def current_semester(today: dt.date) -> tuple[str, dt.date, dt.date]:
    """Given a day, return its half-year: a name such as ``2026-H2``, its first and last day."""
    if today.month <= 6:
        return f"{today.year}-H1", dt.date(today.year, 1, 1), dt.date(today.year, 6, 30)
    return f"{today.year}-H2", dt.date(today.year, 7, 1), dt.date(today.year, 12, 31)


def load(report: DemoReport) -> None:
    """Create the draft report of the current semester unless it exists."""
    from chaton.reports.actions import do_create_report
    from chaton.reports.models import Report

    name, start, end = current_semester(clock.today())
    if Report.objects.filter(name=name).exists():
        return
    language = "en" if settings.CHATON.language == "en" else "fr"
    introduction = (_("This semester the collective welcomed new members and opened "
                      "services for partner associations.") + "\n\n"
                    + _("*Edit this text on the report's page before publishing.*"))
    do_create_report(name=name, starts_on=start, ends_on=end, language=language,
                     sections={"introduction": introduction}, acting_user=None)
    report.created.append(_("the draft activity report %(name)s (build it with: chaton report "
                            "build %(name)s)") % {"name": name})
