"""The demo's draft report of the current semester: created once, and it builds."""

from __future__ import annotations

import datetime as dt

import pytest

from chaton.core.demo import DemoReport
from chaton.reports import actions, demo
from chaton.reports.models import Report

pytestmark = pytest.mark.django_db


def test_the_semester_of_a_day() -> None:
    assert demo.current_semester(dt.date(2026, 12, 5)) == (
        "2026-H2", dt.date(2026, 7, 1), dt.date(2026, 12, 31))
    assert demo.current_semester(dt.date(2027, 6, 30))[0] == "2027-H1"


def test_the_demo_draft_is_made_once_and_builds(semester, admin) -> None:
    first, second = DemoReport(), DemoReport()
    demo.load(first)
    demo.load(second)
    assert len(first.created) == 1 and second.created == []
    report = Report.objects.get()
    files = actions.do_build_report(report, acting_user=admin)
    assert sorted(item.format for item in files) == ["html", "md", "pdf"]
    assert bytes(next(item for item in files if item.format == "pdf").content).startswith(b"%PDF")
