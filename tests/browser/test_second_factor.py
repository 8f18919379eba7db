"""An administrator enrols an authenticator in a real Chromium; a password alone is then
refused administration, and a recovery code opens it once."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import Browser, Page, expect

from chaton.directory import actions

PASSWORD = "quartz willow 6630"

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _password_step(page: Page, base: str, target: str) -> None:
    page.goto(f"{base}{target}")
    page.fill("#id_username", "ines")
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")


def _code(key: bytes, step_offset: int = 0) -> str:
    generator = TOTP(key, step=30, digits=6)
    generator.time = time.time() + 30 * step_offset
    return f"{generator.token():06d}"


def test_enrolment_then_login_needs_the_code_and_a_recovery_code_works_once(
        live_server, directory, browser: Browser, page: Page) -> None:
    actions.do_create_account("ines", acting_user=None, display_name="Ines Essai",
                              email="ines@example.org", password=PASSWORD, is_admin=True)
    base = live_server.url

    # An administrator with a password only is sent to set up a second factor.
    _password_step(page, base, "/accounts/")
    expect(page).to_have_url(f"{base}/account/two-factor/?next=%2Faccounts%2F")
    expect(page.locator("main")).to_contain_text("Administrators must set up a second factor")
    page.click("text=Set up an authenticator app")
    expect(page.locator("main .qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.fill("#id_code", _code(key))
    page.click("#confirm-authenticator button[type=submit]")
    expect(page.locator("main h1")).to_have_text("Your recovery codes")
    codes = page.locator("ul.recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.click("text=I have stored them, continue")
    expect(page).to_have_url(f"{base}/accounts/")
    expect(page.locator("main h1")).to_contain_text("Accounts")

    # A new browser: the password alone opens nothing; a wrong code is refused.
    second = browser.new_context(locale="en-GB").new_page()
    _password_step(second, base, "/accounts/")
    expect(second).to_have_url(f"{base}/login/verify/?next=%2Faccounts%2F")
    second.goto(f"{base}/accounts/")
    expect(second).to_have_url(f"{base}/login/verify/?next=%2Faccounts%2F")
    second.fill("#id_code", "000000")
    second.click("#second-step button[type=submit]")
    expect(second.locator("main")).to_contain_text("This code is not valid")
    # The app's next code opens administration (the current one was used at enrolment).
    time.sleep(1.1)  # django-otp waits a second after a failure
    second.fill("#id_code", _code(key, step_offset=1))
    second.click("#second-step button[type=submit]")
    expect(second).to_have_url(f"{base}/accounts/")

    # A recovery code instead of the phone: once.
    third = browser.new_context(locale="en-GB").new_page()
    _password_step(third, base, "/accounts/")
    third.fill("#id_code", codes[0])
    third.click("#second-step button[type=submit]")
    expect(third).to_have_url(f"{base}/accounts/")
    fourth = browser.new_context(locale="en-GB").new_page()
    _password_step(fourth, base, "/accounts/")
    fourth.fill("#id_code", codes[0])
    fourth.click("#second-step button[type=submit]")
    expect(fourth.locator("main")).to_contain_text("This code is not valid")
    expect(fourth).to_have_url(f"{base}/login/verify/?next=%2Faccounts%2F")
