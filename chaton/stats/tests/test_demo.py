"""The demo's year of statistics: the collective's real curve from its tables, once."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from chaton.core import clock, registry
from chaton.core.demo import DemoReport
from chaton.members.models import Membership
from chaton.stats import queries
from chaton.stats.models import Sample

pytestmark = pytest.mark.django_db


def load_demo() -> DemoReport:
    """Load the demo's parts (not its first backup, which has its own tests)."""
    report = DemoReport()
    for loader in registry.demo_loaders():
        if loader.__module__ != "chaton.backups.demo":
            loader(report)
    return report


def test_the_demo_has_a_year_of_figures_drawn_from_its_members(directory, english):
    started = time.monotonic()
    report = load_demo()
    elapsed = time.monotonic() - started
    assert any("days of statistics" in line for line in report.created)
    yesterday = clock.today() - dt.timedelta(days=1)
    year = queries.series("chaton.members", "chaton", yesterday - dt.timedelta(days=364),
                          yesterday)
    assert all(value is not None for _day, value in year)
    assert year[-1][1] == Membership.objects.current(yesterday).count()
    assert year[0][1] < year[-1][1]  # members joined during the year
    www = [subject for subject in queries.subjects("http.requests") if subject != "chaton"]
    assert www and queries.busiest_day("http.requests", www[0], year[0][0], yesterday)
    count = Sample.objects.count()
    load_demo()
    assert Sample.objects.count() == count
    assert elapsed < 60
