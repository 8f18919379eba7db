"""The public /transparency/ page in a real Chromium with JavaScript off: the register shows
only what was published, the software list and the ChatonsInfos files are linked, and the
language switches with a plain link.

The web server is pytest-django's ``live_server``; the rows are the database's.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Browser, expect

from chaton.core import clock
from chaton.services.models import Host, Instance
from chaton.transparency import actions

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]

PRIVATE = "Mailbox of camille.durand@example.org, asked by judge Martin"
PUBLIC = "Access to a mailbox; we answered that we keep no copy of mails."


def test_the_transparency_page_without_javascript(live_server, browser: Browser) -> None:
    actions.do_update_profile(acting_user=None, name="Chaton Demo",
                              description="A hosting collective of friends")
    host = Host.objects.create(name="main", docker_url="unix:///run/docker.sock",
                               is_default=True)
    Instance.objects.create(slug="pads", application="etherpad", domain="pads.example.org",
                            host=host, port=20001)
    actions.do_refresh_software_list(acting_user=None)
    shown = actions.do_add_authority_request(
        acting_user=None, received_on=clock.today() - dt.timedelta(days=30),
        authority="Court of Lyon", kind="mailbox access", asked=PRIVATE,
        answered="Nothing sent to judge Martin")
    actions.do_publish_authority_request(shown, acting_user=None, published_text=PUBLIC)
    actions.do_add_authority_request(acting_user=None, received_on=clock.today(),
                                     authority="Prefecture of Rhône", kind="identification",
                                     asked="Who is the account robin?")

    context = browser.new_context(java_script_enabled=False, locale="en-GB",
                                  viewport={"width": 390, "height": 844})
    page = context.new_page()
    response = page.goto(f"{live_server.url}/transparency/?lang=en")
    assert response is not None and response.status == 200
    expect(page.locator("h1")).to_have_text("Transparency of Chaton")
    register = page.locator("#register tr.request")
    expect(register).to_have_count(1)
    expect(register).to_contain_text("Court of Lyon")
    expect(register).to_contain_text(PUBLIC)
    content = page.content()
    for secret in ("camille", "judge Martin", "Prefecture", "robin"):
        assert secret not in content
    expect(page.locator("#software")).to_contain_text("ghcr.io/ether/etherpad")
    expect(page.locator("#statistics a", has_text="pads.properties")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.click("#statistics a >> text=pads.properties")
    assert "service.name = Etherpad (pads)" in page.content()
    page.go_back()
    page.click("text=The whole list")
    expect(page.locator("table")).to_contain_text("dpkg")
    page.goto(f"{live_server.url}/transparency/?lang=en")
    page.click("text=Français")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#register tr.request")).to_have_count(1)
