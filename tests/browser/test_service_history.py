"""An instance's page in a real Chromium: its history, full of long image pins and engine
messages, keeps to the page's width (no sideways scrolling) on a laptop and a phone.

The engine is an in-memory FakeEngine and the proxy a recorder (what is drawn is the
page, not the services); the web server is pytest-django's ``live_server``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser

from chaton.adapters.caddy import use_caddy
from chaton.adapters.docker import use_docker
from chaton.core import clock
from chaton.directory import actions as directory_actions
from chaton.services import actions, apply, proxy
from chaton.services.models import Deployment, DeploymentKind, Outcome
from chaton.services.tests.conftest import ADDRESS, FakeEngines, RecordedProxy
from chaton.testing.second_factor import login_with_second_factor

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]

LONG_PIN = ("registry.example.org/chaton-collective/some-application-with-a-long-name:"
            "2.14.7-alpine3.20@sha256:" + "0123456789abcdef" * 4)


@pytest.fixture
def fakes(test_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngines]:
    monkeypatch.setattr(apply, "DRAIN_SECONDS", 0)
    recorder = RecordedProxy()
    monkeypatch.setattr(proxy, "sync_proxy", recorder)
    engines = FakeEngines()
    with use_docker(engines), use_caddy(recorder.admin):
        yield engines


def test_the_history_table_keeps_to_the_page(live_server, browser: Browser, directory,
                                            fakes: FakeEngines) -> None:
    host = actions.do_create_host("box", "unix:///run/fake/docker.sock", acting_user=None,
                                  address=ADDRESS)
    instance = actions.do_create_instance("webtest", "pad.example.org", host,
                                          acting_user=None)
    for index in range(3):
        Deployment.objects.create(
            instance=instance, kind=DeploymentKind.UPGRADE, outcome=Outcome.ROLLED_BACK,
            from_image=LONG_PIN, to_image=LONG_PIN.replace("2.14.7", f"2.15.{index}"),
            message="The new version did not pass its health check: " + "x" * 150
            + " " + LONG_PIN, created_at=clock.now(), finished_at=clock.now())
    admin = directory_actions.do_create_account("camille", acting_user=None,
                                                display_name="Camille",
                                                email="camille@example.org", is_admin=True)
    client = login_with_second_factor(Client(), admin)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    for width, height in ((1280, 900), (390, 844)):
        context = browser.new_context(locale="en-GB", viewport={"width": width,
                                                                  "height": height})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session,
                              "url": live_server.url}])
        page = context.new_page()
        page.goto(f"{live_server.url}/services/instances/pad/")
        table = page.locator("table.history")
        assert table.locator("tbody tr").count() == 4
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
        card = page.locator("table.history").locator("xpath=..")
        widths = card.evaluate("element => [element.scrollWidth, element.clientWidth]")
        assert widths[0] <= widths[1], f"the history scrolls inside its card at {width}px"
        context.close()
