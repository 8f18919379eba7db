"""The published HTML report of a made-up semester in a real Chromium: every chart and the
infrastructure diagram are drawn (inline SVG with a size), every image loaded, nothing
refused by the page's content security policy, the sections' HTML shown as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from chaton.reports import actions
from chaton.reports.tests.conftest import (  # noqa: F401 - the fast tier's fixtures
    admin,
    draft,
    in_english,
    semester,
    tech_team,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]


def test_the_html_report_draws_every_chart(live_server, browser: Browser, semester,  # noqa: F811
                                           draft, admin) -> None:  # noqa: F811
    actions.do_update_report(draft, acting_user=admin, sections={
        "outreach": '<img src="https://tracker.example/p.png"> ![x](https://tracker.example/y)'})
    actions.do_publish_report(draft, acting_user=admin)
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(request.url))
    response = page.goto(f"{live_server.url}/reports/A18.html")
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Activity report A18"
    charts = page.locator("figure svg")
    count = charts.count()
    assert count >= 1 + 4 * 3  # the diagram, and three figures of each of the four instances
    for index in range(count):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, index
    images = page.eval_on_selector_all(
        "img", "images => images.map(image => [image.src, image.complete, image.naturalWidth])")
    assert all(complete and width > 0 for _src, complete, width in images), images
    # The section's HTML is text, its Markdown image no request to the tracker.
    assert '<img src="https://tracker.example/p.png">' in page.locator("body").inner_text()
    assert not any("tracker.example" in problem for problem in problems), problems
    assert problems == [], problems
