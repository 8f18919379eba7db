"""Fixtures of the reports' fast tier: an administrator, a member, the tech team, a made-up
semester (2018-06-21 → 2019-01-09, as "A18")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

START = dt.date(2018, 6, 21)
END = dt.date(2019, 1, 9)


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def admin(directory: Any) -> Any:
    from chaton.directory import actions

    return actions.do_create_account("wren", acting_user=None, display_name="Wren Admin",
                                     email="wren@example.org", is_admin=True)


@pytest.fixture
def member(directory: Any) -> Any:
    from chaton.directory import actions

    return actions.do_create_account("mallory", acting_user=None, display_name="Mallory",
                                     email="mallory@example.org")


@pytest.fixture
def tech_team(admin: Any) -> Any:
    from chaton.directory import actions

    group = actions.do_create_group("tech", acting_user=None, description="The tech team")
    actions.do_add_to_group(group, admin, acting_user=None)
    return group


@pytest.fixture
def semester(tech_team: Any) -> Any:
    from chaton.testing.semester import semester

    return semester(START, END, gap_subject="matt-02")


@pytest.fixture
def draft(admin: Any) -> Any:
    from chaton.reports.actions import do_create_report

    return do_create_report(name="A18", starts_on=START, ends_on=END, language="en",
                            sections={"introduction": "We **grew** this semester.",
                                      "events": "- a workshop\n- a *fair*"},
                            acting_user=admin)
