"""The form that adds a data source, in a real Chromium: each kind's parameters show only once
that kind is chosen (one generic CSS rule, whatever the kinds), and the chosen kind's
parameters are the ones saved."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Browser

from chaton.adapters.restic import use_restic
from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions
from chaton.backups.models import Source
from chaton.backups.sources import kinds
from chaton.directory import actions as directory_actions
from chaton.testing.second_factor import login_with_second_factor

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def fake_restic() -> Iterator[FakeRestic]:
    fake = FakeRestic(password=PASSWORD, repository_password=PASSWORD)
    with use_restic(lambda repository: fake):
        yield fake


def test_only_the_chosen_kind_s_parameters_show_and_are_saved(
        live_server, browser: Browser, directory, fake_restic: FakeRestic) -> None:
    repository = actions.do_create_repository("offsite", kind="local", location="/srv/repo",
                                              password=PASSWORD, acting_user=None)
    actions.do_create_plan("nightly", repository, acting_user=None)
    admin = directory_actions.do_create_account("camille", acting_user=None,
                                                display_name="Camille",
                                                email="camille@example.org", is_admin=True)
    client = login_with_second_factor(Client(), admin)
    context = browser.new_context(locale="en-GB")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                          "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])
    page = context.new_page()
    page.goto(live_server.url + reverse("backup-source-add", args=["nightly"]))

    for kind in kinds():
        assert page.locator(f"fieldset.kinds-{kind} input[name='kind']").is_visible()
    assert not page.locator("[name='postgres-database']").is_visible()
    assert not page.locator("[name='paths-paths']").is_visible()

    page.locator("fieldset.kinds-postgres input[name='kind']").check()
    assert page.locator("[name='postgres-database']").is_visible()
    assert not page.locator("[name='paths-paths']").is_visible()
    assert page.locator("[name='postgres-password']").get_attribute("type") == "password"

    page.locator("[name='name']").fill("shop")
    page.locator("[name='postgres-database']").fill("shop")
    page.locator("[name='postgres-password']").fill("pg-secret-value")
    page.locator("fieldset.kinds-paths input[name='kind']").check()
    assert page.locator("[name='paths-paths']").is_visible()
    assert not page.locator("[name='postgres-database']").is_visible()
    page.locator("[name='paths-paths']").fill("/srv/pads\n/srv/files")
    page.get_by_role("button", name="Add").click()
    page.wait_for_url(live_server.url + reverse("backup-plan", args=["nightly"]))

    source = Source.objects.get(name="shop")
    assert source.kind == "paths"
    assert source.params == {"paths": ["/srv/pads", "/srv/files"], "exclude": []}
    context.close()
