"""Three members decide, in a real Chromium, to add someone to a protected group; the
worker then carries the decision out in the real slapd.

The web server is pytest-django's ``live_server`` (on 127.0.0.1), the directory
the session's managed slapd, the browser Debian's Chromium driven by
Playwright's sync API. Each member uses a browser context of their own.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.core import clock
from chaton.directory import actions, reconcile
from chaton.directory.models import Account
from chaton.governance.actions import execute_decisions
from chaton.governance.models import Decision, Status
from chaton.members import actions as member_actions
from chaton.testing.voters import recorded_at_start

BASE = "dc=chaton,dc=test"
PASSWORD = "copper meadow 5521"
SCREENSHOT = Path("/tmp/chaton-decision.png")

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]


def _member(uid: str) -> None:
    """Create a voting member: a person who joined 60 days ago, with an account."""
    person = member_actions.do_create_person(f"Essai {uid.title()}", f"{uid}@example.org",
                                             acting_user=None)
    recorded_at_start(member_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=60)))
    actions.do_create_account(uid, acting_user=None, display_name=f"Essai {uid.title()}",
                              email=f"{uid}@example.org", password=PASSWORD, person=person,
                              # Each voter chose their own (one set for them would not vote).
                              password_by_owner=True)


def _signed_in_page(browser: Browser, base_url: str, uid: str) -> Page:
    # English pages: the assertions below read the source strings.
    context = browser.new_context(locale="en-GB", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", uid)
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{base_url}/me/")
    return page


def test_members_vote_a_protected_access_and_the_worker_grants_it(
        live_server, ldap_directory: LdapDirectory, browser: Browser) -> None:
    reconcile.sync_all()
    for uid in ("alba", "basile", "cyan"):
        _member(uid)
    actions.do_create_account("kim", acting_user=None, display_name="Kim Nouvelle",
                              email="kim@example.org")
    actions.do_create_group("passwords", acting_user=None, description="Technical passwords",
                            requires_decision=True)
    base_url = live_server.url
    until = (clock.today() + dt.timedelta(days=180)).isoformat()

    proposer = _signed_in_page(browser, base_url, "alba")
    proposer.click("header nav >> text=Decisions")
    expect(proposer).to_have_url(f"{base_url}/decisions/")
    proposer.click("main >> text=Propose")
    proposer.select_option("#id_operation", "group.grant")
    proposer.click("main form button[type=submit]")
    expect(proposer.locator("fieldset.operation legend")).to_contain_text(
        "Add an account to a group")
    proposer.fill("#id_title", "Give Kim the technical passwords")
    proposer.fill("#id_op0-group", "passwords")
    proposer.fill("#id_op0-account", "kim")
    proposer.fill("#id_op0-expires_on", until)
    proposer.click("text=Put to the vote")
    expect(proposer.locator(".messages")).to_contain_text("is open to the vote")
    decision = Decision.objects.get()
    detail_url = f"{base_url}/decisions/{decision.pk}/"
    expect(proposer).to_have_url(detail_url)
    expect(proposer.locator(".ballot .tally")).to_have_text("for 0/3, against 0/3")

    for uid in ("basile", "cyan"):
        voter = _signed_in_page(browser, base_url, uid)
        voter.goto(detail_url)
        voter.click("button:has-text('Vote for')")
        expect(voter.locator(".messages")).to_contain_text("Your vote “for” is recorded.")
        if uid == "cyan":
            # Two of three: a majority of the electorate, the proposal closes at once.
            expect(voter.locator(".messages")).to_contain_text("The vote is over: adopted")
        voter.context.close()
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED

    execute_decisions()
    proposer.reload()
    expect(proposer.locator(".ballot .tally")).to_have_text("for 2/3, against 0/3")
    expect(proposer.locator("main table .badge")).to_have_text("done")
    proposer.screenshot(path=str(SCREENSHOT), full_page=True)
    group_dn = normalize_dn(f"cn=passwords,ou=groups,{BASE}")
    entry = ldap_directory.read([group_dn], ["member"])[group_dn]
    assert f"uid=kim,ou=people,{BASE}".encode() in entry["member"]


def test_a_password_set_for_the_member_does_not_vote_until_they_set_their_own(
        live_server, ldap_directory: LdapDirectory, browser: Browser, mailoutbox) -> None:
    """dora's account was made with a password the administrator chose. Signed in with it,
    dora sees why the vote buttons are missing, has the link mailed, chooses a password
    from it, and votes."""
    from chaton.governance import actions as governance_actions

    reconcile.sync_all()
    for uid in ("alba", "basile"):
        _member(uid)
    person = member_actions.do_create_person("Essai Dora", "dora@example.org",
                                             acting_user=None)
    recorded_at_start(member_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=60)))
    actions.do_create_account("dora", acting_user=None, display_name="Essai Dora",
                              email="dora@example.org", password=PASSWORD, person=person)
    actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    actions.do_create_account("kim", acting_user=None, display_name="Kim Nouvelle",
                              email="kim@example.org")
    decision = governance_actions.do_propose(
        "Give Kim the technical passwords",
        [{"type": "group.grant", "params": {"group": "passwords", "account": "kim"}}],
        acting_user=Account.objects.get(uid="alba"))
    base_url = live_server.url
    detail_url = f"{base_url}/decisions/{decision.pk}/"

    page = _signed_in_page(browser, base_url, "dora")
    page.goto(detail_url)
    expect(page.locator(".password-not-own")).to_contain_text(
        "You cannot vote with this password")
    expect(page.locator("button:has-text('Vote for')")).to_have_count(0)
    mailoutbox.clear()
    page.click("button:has-text('Mail me the link')")
    expect(page).to_have_url(detail_url)
    expect(page.locator(".messages")).to_contain_text("We mailed a link to dora@example.org")
    [mail] = mailoutbox
    link = next(word for word in mail.body.split() if "/password-reset/" in word)
    page.context.clear_cookies()
    page.goto(base_url + link[link.index("/password-reset/"):])
    own = "dora's very own 8803"
    page.fill("#id_new_password1", own)
    page.fill("#id_new_password2", own)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{base_url}/login/")
    page.fill("#id_username", "dora")
    page.fill("#id_password", own)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(f"{base_url}/me/")
    page.goto(detail_url)
    page.click("button:has-text('Vote against')")
    expect(page.locator(".messages")).to_contain_text("Your vote “against” is recorded.")
    assert list(decision.ballots.get().votes.values_list("account__uid", "choice")) == [
        ("dora", "against")]
