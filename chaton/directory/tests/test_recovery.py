"""A forgotten password by mail, and the throttles on login and reset requests.

Django's test client against the pages, the fake directory, the locmem mail outbox.
"""

import datetime as dt
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse

from chaton.adapters.ldap import normalize_dn
from chaton.adapters.notifications.fake import FakeNotifier
from chaton.core import clock, throttle
from chaton.core.models import AuditLog, ThrottleEvent
from chaton.directory import actions
from chaton.directory.models import AccountState
from chaton.notifications.models import Notification
from chaton.notifications.outbox import use_notifications

BASE = "dc=chaton,dc=test"
PASSWORD = "purple kettle 1984"
NEW_PASSWORD = "green teapot 2049"
LINK = re.compile(r"http://testserver(/password-reset/[^/\s]+/[^/\s]+/)")
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(client):
    """The test client, reading pages in English (the source language of the messages)."""
    client.cookies.load({django_settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


@pytest.fixture(autouse=True)
def _fake_directory_local_mail_english(directory, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.LANGUAGE_CODE = "en"
    yield directory
    clock.travel(dt.timedelta(0))


@pytest.fixture
def member():
    return actions.do_create_account("noa", acting_user=None, display_name="Noa Martin",
                                     email="noa@example.org", password=PASSWORD)


def request_reset(client, identifier, **extra):
    return client.post(reverse("password-reset"), {"identifier": identifier}, **extra)


def link_path(message) -> str:
    """Return the path of the one-time link in a mail."""
    [path] = LINK.findall(message.body)
    return path


def open_link_and_set(client, path, first, second=None):
    """Open a mail's link, then post the new password twice; return the post's response."""
    opened = client.get(path)
    assert opened.status_code == 302
    form_url = opened["Location"]
    assert form_url.endswith("/set-password/") and path.split("/")[-2] not in form_url
    return client.post(form_url, {"new_password1": first,
                                  "new_password2": first if second is None else second})


# -- asking for a link -----------------------------------------------------------


def test_login_page_links_to_the_forgotten_password_page(client):
    page = client.get(reverse("login")).content.decode()
    assert f'href="{reverse("password-reset")}"' in page and "Forgot your password?" in page


@pytest.mark.parametrize("identifier", ["noa", " Noa ", "noa@example.org", "NOA@Example.org"])
def test_request_by_uid_or_email_sends_one_mail_with_a_working_link(client, member, mailoutbox,
                                                                     identifier):
    response = request_reset(client, identifier)
    assert response.status_code == 302 and response["Location"] == reverse("password-reset-sent")
    [message] = mailoutbox
    assert message.to == ["noa@example.org"]
    assert "Noa Martin" in message.body and "noa" in message.body
    assert "2 hours" in message.body
    path = link_path(message)
    assert client.get(path).status_code == 302
    sent_page = client.get(response["Location"]).content.decode()
    assert "If an account matches what you typed" in sent_page

    [row] = AuditLog.objects.filter(action="account.password_reset_requested")
    assert row.target_label == "noa" and row.actor is None and row.actor_label == "anonymous"
    assert row.after == {"sent_to": "noa@example.org"}
    token = path.split("/")[-2]
    assert token not in str(row.before) + str(row.after)
    # The link is a credential: no queue row keeps it for whoever reads the database.
    assert not Notification.objects.exists()


def test_the_mail_is_in_the_collectives_language(client, member, mailoutbox, settings):
    settings.LANGUAGE_CODE = "fr"
    request_reset(client, "noa")  # the page itself in English
    [message] = mailoutbox
    assert message.subject.startswith("Choisissez un nouveau mot de passe")
    assert "Noa Martin" in message.body and "2 heures" in message.body


def test_unknown_name_gives_the_same_answer_and_no_mail(client, member, mailoutbox):
    known = request_reset(client, "noa")
    mailoutbox.clear()
    for identifier in ["nobody", "nobody@example.org", "@"]:
        unknown = request_reset(client, identifier)
        assert unknown.status_code == known.status_code == 302
        assert unknown["Location"] == known["Location"]
    assert mailoutbox == []
    assert AuditLog.objects.filter(action="account.password_reset_requested").count() == 1


def test_an_empty_request_is_an_error_on_the_form(client, mailoutbox):
    response = request_reset(client, "")
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert mailoutbox == []


def test_a_disabled_or_expired_account_gets_no_mail(client, member, mailoutbox):
    actions.do_set_state(member, AccountState.DISABLED, acting_user=None)
    assert request_reset(client, "noa")["Location"] == reverse("password-reset-sent")
    actions.do_create_account("ilan", acting_user=None, display_name="Ilan Essai",
                              email="ilan@example.org",
                              expires_at=clock.now() + dt.timedelta(days=1))
    clock.travel(dt.timedelta(days=2))
    assert request_reset(client, "ilan")["Location"] == reverse("password-reset-sent")
    assert mailoutbox == []
    assert not AuditLog.objects.filter(action="account.password_reset_requested").exists()


def test_a_mail_failure_is_said_plainly(client, member, mailoutbox):
    with use_notifications(FakeNotifier(mail_down=True)):
        response = request_reset(client, "noa")
    assert response.status_code == 200
    assert "The mail could not be sent" in response.content.decode()
    assert not AuditLog.objects.filter(action="account.password_reset_requested").exists()


# -- using the link --------------------------------------------------------------


def test_the_link_sets_the_password_in_the_database_and_the_directory(client, member,
                                                                      mailoutbox, directory):
    dn = normalize_dn(f"uid=noa,ou=people,{BASE}")
    before = directory.entries[dn]["userpassword"]
    request_reset(client, "noa")
    path = link_path(mailoutbox[0])
    form_page = client.get(client.get(path)["Location"])
    assert form_page.status_code == 200 and "<strong>noa</strong>" in form_page.content.decode()

    response = open_link_and_set(client, path, NEW_PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("login")
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD) and not member.check_password(PASSWORD)
    assert AuditLog.objects.filter(action="account.password", actor=member,
                                   target_label="noa").count() == 1
    after = directory.entries[dn]["userpassword"]
    assert after != before and after[0].startswith(b"{ARGON2}")
    assert "Your password was changed" in client.get(reverse("login")).content.decode()
    login = client.post(reverse("login"), {"username": "noa", "password": NEW_PASSWORD})
    assert login["Location"] == reverse("profile")


def test_the_link_works_once(client, member, mailoutbox):
    request_reset(client, "noa")
    path = link_path(mailoutbox[0])
    assert open_link_and_set(client, path, NEW_PASSWORD).status_code == 302
    again = client.get(path)
    assert again.status_code == 200 and "This link does not work" in again.content.decode()
    # Nor the form step in the same browser, nor in another one.
    form_url = path.rsplit("/", 2)[0] + "/set-password/"
    replay = client.post(form_url, {"new_password1": "third choice 7731",
                                    "new_password2": "third choice 7731"})
    assert "This link does not work" in replay.content.decode()
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)


def test_the_link_expires_after_two_hours(client, member, mailoutbox, monkeypatch):
    request_reset(client, "noa")
    path = link_path(mailoutbox[0])
    sent_at = default_token_generator._now()
    monkeypatch.setattr(default_token_generator, "_now",
                        lambda: sent_at + dt.timedelta(hours=1, minutes=59))
    assert client.get(path).status_code == 302
    monkeypatch.setattr(default_token_generator, "_now",
                        lambda: sent_at + dt.timedelta(hours=2, minutes=1))
    assert "This link does not work" in client.get(path).content.decode()


def test_the_link_stops_when_the_account_is_disabled(client, member, mailoutbox):
    request_reset(client, "noa")
    path = link_path(mailoutbox[0])
    actions.do_set_state(member, AccountState.DISABLED, acting_user=None)
    assert "This link does not work" in client.get(path).content.decode()


@pytest.mark.parametrize("path", ["/password-reset/Zm9v/abc-123/", "/password-reset/!!/x/",
                                  "/password-reset/OTk5OTk5/set-password/"])
def test_a_made_up_link_does_not_work(client, member, path):
    response = client.get(path)
    assert response.status_code == 200 and "This link does not work" in response.content.decode()


@pytest.mark.parametrize(("first", "second", "message"), [
    (NEW_PASSWORD, "green teapot 2050", "differ"),
    ("short", "short", "too short"),
    ("", "", "required"),
])
def test_a_bad_new_password_is_refused_and_nothing_is_kept(client, member, mailoutbox,
                                                           directory, first, second, message):
    dn = normalize_dn(f"uid=noa,ou=people,{BASE}")
    before = directory.entries[dn]["userpassword"]
    request_reset(client, "noa")
    path = link_path(mailoutbox[0])
    response = open_link_and_set(client, path, first, second)
    assert response.status_code == 200 and message in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    assert directory.entries[dn]["userpassword"] == before
    assert not AuditLog.objects.filter(action="account.password").exists()
    # The link still works for a second try.
    assert open_link_and_set(client, path, NEW_PASSWORD).status_code == 302


# -- login throttle --------------------------------------------------------------


def log_in(client, user_name, password, address="198.51.100.4"):
    return client.post(reverse("login"), {"username": user_name, "password": password},
                       REMOTE_ADDR=address)


def test_the_eleventh_login_is_refused_even_with_the_right_password(client, member):
    for _ in range(10):
        response = log_in(client, "noa", "wrong")
        assert response.status_code == 200 and "correct" in response.content.decode()
    refused = log_in(client, "noa", PASSWORD)
    assert refused.status_code == 200
    assert "Too many failed logins for this user name" in refused.content.decode()
    assert "15 minutes" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # Same lock from another address, and whatever the case of the name.
    assert "Too many" in log_in(client, "NOA", PASSWORD, address="192.0.2.9").content.decode()
    clock.travel(dt.timedelta(minutes=14))
    assert "Try again in 1 minute," in log_in(client, "noa", PASSWORD).content.decode()
    clock.travel(dt.timedelta(minutes=15, seconds=1))
    assert log_in(client, "noa", PASSWORD)["Location"] == reverse("profile")


def test_failures_spread_over_more_than_the_window_do_not_lock(client, member):
    for index in range(12):
        clock.travel(dt.timedelta(minutes=2 * index))
        log_in(client, "noa", "wrong")
    clock.travel(dt.timedelta(minutes=24))
    # Within any 15 minutes there were 8 failures: still allowed.
    assert log_in(client, "noa", PASSWORD)["Location"] == reverse("profile")


def test_a_successful_login_clears_the_user_names_count(client, member):
    for _ in range(9):
        log_in(client, "noa", "wrong")
    assert log_in(client, "noa", PASSWORD)["Location"] == reverse("profile")
    client.logout()
    for _ in range(9):
        log_in(client, "noa", "wrong")
    assert log_in(client, "noa", PASSWORD)["Location"] == reverse("profile")


def test_an_address_is_refused_after_fifty_failures(client, member):
    # 49 failures counted directly (each real one costs an argon2 hash), the 50th by the page.
    for index in range(49):
        throttle.hit(throttle.LOGIN_PER_ADDRESS, "203.0.113.7")
        assert throttle.retry_after(throttle.LOGIN_PER_ADDRESS, "203.0.113.7") is None, index
    assert "correct" in log_in(client, "someone", "guess", address="203.0.113.7").content.decode()
    refused = log_in(client, "noa", PASSWORD, address="203.0.113.7")
    assert "Too many failed logins from your network address" in refused.content.decode()
    # Another address is not concerned, and the user name itself is not locked.
    assert log_in(client, "noa", PASSWORD, address="203.0.113.8")["Location"] == reverse(
        "profile")


def test_a_password_reset_unlocks_the_user_name(client, member, mailoutbox):
    for _ in range(10):
        log_in(client, "noa", "wrong")
    request_reset(client, "noa")
    open_link_and_set(client, link_path(mailoutbox[0]), NEW_PASSWORD)
    assert log_in(client, "noa", NEW_PASSWORD)["Location"] == reverse("profile")


def test_the_throttle_never_stores_what_was_typed(client, member):
    log_in(client, "noa", "wrong", address="198.51.100.77")
    keys = list(ThrottleEvent.objects.values_list("key", flat=True))
    assert len(keys) == 2
    assert all("noa" not in key and "198.51.100.77" not in key for key in keys)


def test_old_throttle_rows_are_pruned(member):
    throttle.hit(throttle.LOGIN_PER_USER_NAME, "noa")
    clock.travel(throttle.RETENTION + dt.timedelta(minutes=1))
    throttle.hit(throttle.LOGIN_PER_USER_NAME, "noa")
    assert ThrottleEvent.objects.count() == 1


def test_client_address_trusts_forwarded_for_only_from_a_trusted_proxy(rf, settings):
    forged = rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert throttle.client_address(forged) == "192.0.2.1"
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    proxied = rf.get("/", REMOTE_ADDR="127.0.0.1",
                     HTTP_X_FORWARDED_FOR="10.9.9.9, 192.0.2.44, 127.0.0.1")
    assert throttle.client_address(proxied) == "192.0.2.44"
    ipv6 = rf.get("/", REMOTE_ADDR="2001:db8:1:2:aaaa::5")
    assert throttle.client_address(ipv6) == "2001:db8:1:2::/64"
    mapped = rf.get("/", REMOTE_ADDR="::ffff:192.0.2.8")
    assert throttle.client_address(mapped) == "192.0.2.8"


# -- reset request throttle ------------------------------------------------------


def test_at_most_five_reset_mails_an_hour_per_account(client, member, mailoutbox):
    for index in range(7):
        identifier = "noa" if index % 2 else "noa@example.org"  # both name the same account
        address = f"198.51.100.{index}"
        assert request_reset(client, identifier, REMOTE_ADDR=address)["Location"] == reverse(
            "password-reset-sent")
    assert len(mailoutbox) == 5
    clock.travel(dt.timedelta(hours=1, minutes=1))
    request_reset(client, "noa")
    assert len(mailoutbox) == 6


def test_reset_requests_from_one_address_are_limited(client, member, mailoutbox):
    for index in range(20):
        response = request_reset(client, f"nobody{index}", REMOTE_ADDR="203.0.113.50")
        assert response.status_code == 302
    refused = request_reset(client, "noa", REMOTE_ADDR="203.0.113.50")
    assert refused.status_code == 200
    assert "Too many requests from your network address" in refused.content.decode()
    assert mailoutbox == []
    assert request_reset(client, "noa", REMOTE_ADDR="203.0.113.51").status_code == 302
    assert len(mailoutbox) == 1
