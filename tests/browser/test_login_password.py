"""A person logs in and changes their password in a real Chromium; the real slapd agrees.

The web server is pytest-django's ``live_server`` (on 127.0.0.1), the directory
the session's managed slapd, the browser Debian's Chromium driven by
Playwright's sync API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from chaton.adapters.ldap.client import LdapDirectory
from chaton.core import clock
from chaton.directory import actions, reconcile
from chaton.members import actions as member_actions

BASE = "dc=chaton,dc=test"
OLD_PASSWORD = "violet harbour 1871"
NEW_PASSWORD = "amber lighthouse 2203"
SCREENSHOT = Path("/tmp/chaton-profile.png")

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # English pages: the assertions below read the source strings.
    context = browser.new_context(locale="en-GB", viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_login_then_change_password_binds_in_slapd(live_server, ldap_directory: LdapDirectory,
                                                    page: Page) -> None:
    reconcile.sync_all()
    person = member_actions.do_create_person("Romane Essai", "romane@example.org",
                                             acting_user=None)
    account = actions.do_create_account(
        "romane", acting_user=None, display_name="Romane Essai", email="romane@example.org",
        password=OLD_PASSWORD, person=person,
        expires_at=clock.now() + dt.timedelta(days=365))
    tech = actions.do_create_group("tech", acting_user=None, description="Tech team")
    actions.do_add_to_group(tech, account, acting_user=None)
    account_dn = f"uid=romane,ou=people,{BASE}"
    # The account is in slapd already (the action synced on commit): the old password binds.
    assert ldap_directory.check_password(account_dn, OLD_PASSWORD)

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/")
    page.fill("#id_username", "romane")
    page.fill("#id_password", OLD_PASSWORD)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/me/")
    expect(page.locator("main h1")).to_have_text("Romane Essai")
    expect(page.locator("main")).to_contain_text("romane@example.org")
    expect(page.locator("main")).to_contain_text("Tech team")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("text=Change my password")
    expect(page).to_have_url(f"{live_server.url}/me/password/")
    page.fill("#id_old_password", OLD_PASSWORD)
    page.fill("#id_new_password1", NEW_PASSWORD)
    page.fill("#id_new_password2", NEW_PASSWORD)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/me/")
    expect(page.locator(".messages")).to_contain_text("Your password was changed.")

    checker = LdapDirectory(ldap_directory.url)
    assert checker.check_password(account_dn, NEW_PASSWORD)
    assert not checker.check_password(account_dn, OLD_PASSWORD)
    # Still logged in after the change, and the new password logs in again.
    page.reload()
    expect(page).to_have_url(f"{live_server.url}/me/")
    page.click("header form button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/login/")
    page.fill("#id_username", "romane")
    page.fill("#id_password", NEW_PASSWORD)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/me/")
