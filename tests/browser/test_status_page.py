"""The public status page in a real Chromium with JavaScript off: the bars, the incident,
the language links — what a visitor sees when a service is down.

The web server is pytest-django's ``live_server``; the probes, roll-ups and the incident
are rows of the database (what is drawn is the page, not the probing).
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Browser, expect

from chaton.core import clock
from chaton.monitoring.models import Incident, Probe, Rollup

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]


def test_the_status_page_without_javascript(live_server, browser: Browser) -> None:
    today = clock.today()
    pads = Probe.objects.create(key="instance-pads-https", name="pads", kind="http",
                                target="https://10.1.2.3/health", service="Pads", public=True,
                                state="down", last_checked_at=clock.now())
    for offset in range(60):  # 60 days of history: the 30 oldest bars have no data
        up, down = (43200.0, 43200.0) if offset == 3 else (86400.0, 0.0)
        Rollup.objects.create(probe=pads, period="day",
                              start=clock.start_of_day(today - dt.timedelta(days=offset)),
                              up_seconds=up, down_seconds=down, checks=1440)
    Incident.objects.create(probe=pads, opened_at=clock.now() - dt.timedelta(minutes=12),
                            first_error="connect to 10.1.2.3:443 refused")

    context = browser.new_context(java_script_enabled=False, locale="en-GB",
                                  viewport={"width": 390, "height": 844})
    page = context.new_page()
    response = page.goto(f"{live_server.url}/status/?lang=en")
    assert response is not None and response.status == 200
    expect(page.locator("#overall")).to_have_text("Some services are unavailable.")
    bars = page.locator("section.service ol.bars li")
    expect(bars).to_have_count(90)
    expect(page.locator("ol.bars li.none")).to_have_count(30)
    expect(page.locator("ol.bars li.down")).to_have_count(1)
    # The bars are drawn (CSS inline, no script): a down day is red, a missing one grey.
    down = page.locator("ol.bars li.down").evaluate("bar => getComputedStyle(bar).backgroundColor")
    none = page.locator("ol.bars li.none").first.evaluate(
        "bar => getComputedStyle(bar).backgroundColor")
    assert down == "rgb(207, 34, 46)" and none == "rgb(208, 215, 222)"
    width = page.locator("ol.bars li.up").first.evaluate("bar => bar.getBoundingClientRect().width")
    assert width > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("article.incident")).to_contain_text("Pads")
    expect(page.locator("article.incident")).to_contain_text("Unavailable since")
    expect(page.locator("section.service .state")).to_have_text("unavailable")
    assert "10.1.2.3" not in page.content()

    page.click("text=Français")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("section.service ol.bars li")).to_have_count(90)
    context.close()
