"""What the report says, from a made-up semester; and bad input: no data, a service opened
mid-period, a figure with gaps, an end before the start."""

from __future__ import annotations

import datetime as dt

import pytest

from chaton.core.errors import InvalidInput
from chaton.reports import render
from chaton.reports.actions import do_create_report
from chaton.reports.content import gather
from chaton.reports.tests.conftest import END, START

pytestmark = pytest.mark.django_db


def test_the_semester_in_figures(semester, draft) -> None:
    content = gather(draft)
    assert [team.members for team in content.teams] == [["Wren Admin"]]
    members = content.members
    assert (members.natural, members.legal, members.total) == (28, 2, 30)
    assert (members.natural_support, members.legal_regular) == (5, 2)
    assert members.joined == 2 + 2  # one in ten natural persons, and the two partners
    assert (members.dues_count, members.dues_total) == (30, 300)
    # The partner association's two instances opened in the period, for it.
    assert [(line.name, line.holder) for line in content.opened] == [
        ("cast-04", "Partner association 1"), ("next-03", "Partner association 1")]
    assert content.running == 4
    assert len(content.ordinary) + len(content.extraordinary) == 12
    assert [line.votes_for for line in content.extraordinary][:2] == ["13/15", "14/15"]
    assert content.ordinary[0].votes_for == "15/15"
    assert content.backups.drills == 12 and content.backups.drills_failed == 0
    uptime = {line.service: line for line in content.uptime}
    assert len(uptime["ethe-01"].incidents) == 2
    assert 99 < uptime["ethe-01"].uptime < 100
    assert "<svg" in content.diagram


def test_a_service_opened_mid_period_has_no_leading_gap(semester, draft) -> None:
    content = gather(draft)
    posts = next(line for line in content.figures
                 if (line.subject, line.figure) == ("cast-04", "castopod.hits"))
    assert posts.series[0][1] is None  # the empty leading cells of the chart
    assert posts.missing_days == 0
    assert not any("cast-04" in warning for warning in content.warnings)


def test_a_figure_with_gaps_is_a_warning_never_a_failure(semester, draft) -> None:
    from chaton.stats.models import Gap

    Gap.objects.create(subject="matt-02", day=START + dt.timedelta(days=100),
                       collector="mattermost", message="connection refused",
                       noted_at=dt.datetime(2018, 10, 1, tzinfo=dt.UTC))
    content = gather(draft)
    assert any("matt-02" in warning and "7 day(s)" in warning for warning in content.warnings)
    assert any("collector mattermost" in warning for warning in content.warnings)
    html = render.to_html(draft, content)
    assert "Warnings" in html


def test_a_period_without_data_says_no_data(admin) -> None:
    report = do_create_report(name="empty", starts_on=dt.date(2030, 1, 1),
                              ends_on=dt.date(2030, 6, 30), language="en", acting_user=admin)
    html = render.to_html(report)
    assert html.count("no data") >= 3
    assert "Restores tested: none in the period." in html
    markdown = render.to_markdown(report)
    assert "0 members" in markdown


def test_an_end_before_the_start_is_refused(admin) -> None:
    with pytest.raises(InvalidInput) as raised:
        do_create_report(name="bad", starts_on=END, ends_on=START, acting_user=admin)
    assert raised.value.field == "ends_on"


def test_written_sections_are_markdown_and_never_markup() -> None:
    html = render.markdown_to_html(
        "<script>alert(1)</script> [x](javascript:alert(1)) **ok** <img src=x onerror=y> "
        "![pixel](https://tracker.example/p.png)")
    assert "<script" not in html and "<img" not in html and "href" not in html
    assert "<strong>ok</strong>" in html and "&lt;script&gt;" in html


def test_the_markdown_report(semester, draft) -> None:
    text = render.to_markdown(draft)
    assert text.startswith("# Activity report A18")
    assert "On 2019-01-09: 30 members, 28 natural persons and 2 legal persons." in text
    assert "We **grew** this semester." in text
    assert "| 15/15 | 0/15 |" in text
    assert "Restores tested: 12, all passed." in text
