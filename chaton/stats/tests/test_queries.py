"""Series over a period by day, week and month (gauges take their last sample, counts their
sum), gaps kept as gaps, the busiest day; the SVG chart breaks its line at a gap."""

from __future__ import annotations

import datetime as dt

import pytest

from chaton.core import clock
from chaton.core.errors import InvalidInput
from chaton.stats import queries
from chaton.stats.charts import svg_chart
from chaton.stats.models import Sample

pytestmark = pytest.mark.django_db


def sample(figure: str, subject: str, day: dt.date, value: float) -> None:
    Sample.objects.create(figure=figure, subject=subject, day=day, value=value,
                          collected_at=clock.now())


def test_a_count_sums_and_a_gauge_keeps_its_last_sample_per_period():
    for day, value in ((1, 10), (2, 20), (8, 5), (31, 7)):
        sample("http.requests", "pad", dt.date(2026, 3, day), value)
        sample("etherpad.pads", "pad", dt.date(2026, 3, day), value)
    start, end = dt.date(2026, 3, 1), dt.date(2026, 4, 5)
    assert queries.series("http.requests", "pad", start, end, "month") == [
        (dt.date(2026, 3, 1), 42.0), (dt.date(2026, 4, 1), None)]
    assert queries.series("etherpad.pads", "pad", start, end, "month") == [
        (dt.date(2026, 3, 1), 7.0), (dt.date(2026, 4, 1), None)]
    weeks = queries.series("http.requests", "pad", start, dt.date(2026, 3, 15), "week")
    # 2026-03-01 is a Sunday: its week starts on Monday 23 February.
    assert weeks == [(dt.date(2026, 2, 23), 10.0), (dt.date(2026, 3, 2), 25.0),
                     (dt.date(2026, 3, 9), None)]


def test_a_service_opened_mid_year_has_empty_leading_cells_and_gaps_stay_gaps():
    sample("etherpad.pads", "pad", dt.date(2026, 6, 10), 3)
    sample("etherpad.pads", "pad", dt.date(2026, 6, 12), 5)
    days = queries.series("etherpad.pads", "pad", dt.date(2026, 6, 8), dt.date(2026, 6, 12))
    assert [value for _day, value in days] == [None, None, 3.0, None, 5.0]
    year = queries.series("etherpad.pads", "pad", dt.date(2026, 1, 1), dt.date(2026, 12, 31),
                          "month")
    assert [value for _day, value in year][:5] == [None] * 5 and year[5][1] == 5.0


def test_the_busiest_day_and_a_period_with_no_data():
    for day, value in ((1, 282), (2, 838), (3, 838), (4, 12)):
        sample("mattermost.posts", "chat", dt.date(2026, 5, day), value)
    assert queries.busiest_day("mattermost.posts", "chat", dt.date(2026, 5, 1),
                               dt.date(2026, 5, 31)) == (dt.date(2026, 5, 2), 838.0)
    assert queries.busiest_day("mattermost.posts", "chat", dt.date(2025, 1, 1),
                               dt.date(2025, 1, 31)) is None
    empty = queries.series("mattermost.posts", "chat", dt.date(2025, 1, 1), dt.date(2025, 1, 3))
    assert [value for _day, value in empty] == [None, None, None]
    assert queries.subjects("mattermost.posts") == ["chat"]
    assert queries.figures_for("chat") == ["mattermost.posts"]


@pytest.mark.parametrize(("start", "end", "step", "field"), [
    ("2026-13-01", "", "day", "start"), ("", "31/12/2026", "day", "end"),
    ("2026-05-02", "2026-05-01", "day", "end"), ("", "", "year", "step")])
def test_a_bad_period_is_an_input_error_naming_its_field(start, end, step, field):
    with pytest.raises(InvalidInput) as raised:
        queries.period(start, end, step)
    assert raised.value.field == field


def test_the_chart_breaks_its_line_at_a_gap_and_says_when_there_is_no_data():
    days = [dt.date(2026, 6, day) for day in range(1, 7)]
    chart = svg_chart(list(zip(days, [1.0, 2.0, None, 4.0, 5.0, None], strict=True)),
                      title="Pads <b>", unit="pads")
    assert chart.startswith("<svg") and chart.count("<polyline") == 2
    assert "Pads &lt;b&gt;" in chart and "<b>" not in chart
    assert "no data" not in chart
    empty = svg_chart([(day, None) for day in days], title="Pads", unit="pads")
    assert "no data" in empty and "<polyline" not in empty


def test_csv_quotes_what_a_spreadsheet_would_run():
    text = queries.csv_text([["figure", "subject"], ["=HYPERLINK(1)", "-3"]])
    assert "'=HYPERLINK(1)" in text and ",-3" in text
