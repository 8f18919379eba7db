"""Expiry notices reach a real SMTP server; a dead one does not stop the expiry."""

from __future__ import annotations

import datetime as dt
import email

import pytest

from chaton.adapters.ldap import use_ldap
from chaton.adapters.ldap.fake import FakeDirectory
from chaton.core import clock, worker
from chaton.directory import actions
from chaton.directory.expiry import process_expiries
from chaton.notifications.models import Notification
from chaton.testing.pytest_plugin import SmtpCatcher, free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smtp_settings(settings, smtp_catcher: SmtpCatcher) -> SmtpCatcher:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_catcher.port
    settings.DEFAULT_FROM_EMAIL = "chaton@collectif.example.org"
    return smtp_catcher


def test_expiry_notice_is_mailed_in_the_collectives_language(smtp_settings: SmtpCatcher,
                                                              settings) -> None:
    settings.LANGUAGE_CODE = "fr"
    with use_ldap(FakeDirectory(), "dc=chaton,dc=test"):
        account = actions.do_create_account("gil", acting_user=None, display_name="Gil Essai",
                                            email="gil@example.org")
        tech = actions.do_create_group("tech", acting_user=None)
        actions.do_add_to_group(tech, account, acting_user=None,
                                expires_at=clock.now() + dt.timedelta(days=3))
        report = process_expiries()
    assert report.notices_sent == 1
    [caught] = smtp_settings.messages
    assert caught.recipients == ["gil@example.org"]
    message = email.message_from_bytes(caught.content)
    subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
    assert subject.startswith("Votre accès à tech expire le")
    body = message.get_payload(decode=True).decode()
    assert "Gil Essai" in body


def test_unreachable_mail_server_does_not_stop_expiry(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    settings.EMAIL_TIMEOUT = 2
    with use_ldap(FakeDirectory(), "dc=chaton,dc=test"):
        actions.do_create_account("hal", acting_user=None, display_name="Hal",
                                  email="hal@example.org",
                                  expires_at=clock.now() + dt.timedelta(days=2))
        report = process_expiries()
        assert report.notices_failed == 1
        clock.travel(dt.timedelta(days=3))
        try:
            report = process_expiries()
        finally:
            clock.travel(dt.timedelta(0))
    assert report.expired_accounts == ["hal"]


def test_a_notice_the_mail_server_missed_is_sent_by_the_worker_once_it_is_back(
        settings, caplog) -> None:
    port = free_port()  # nothing listens there yet
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_TIMEOUT = 2
    settings.EMAIL_HOST_PASSWORD = "smtp-pa55word-of-the-collective"
    settings.DEFAULT_FROM_EMAIL = "chaton@collectif.example.org"
    settings.LANGUAGE_CODE = "en"
    with use_ldap(FakeDirectory(), "dc=chaton,dc=test"):
        actions.do_create_account("ines", acting_user=None, display_name="Ines Essai",
                                  email="ines@example.org",
                                  expires_at=clock.now() + dt.timedelta(days=2))
        assert process_expiries().notices_failed == 1
        [row] = Notification.objects.all()
        assert row.state == "pending" and row.attempts == 1
        assert process_expiries().notices_failed == 0  # queued once, not again
        catcher = SmtpCatcher(port)
        catcher.start()
        try:
            clock.travel(dt.timedelta(seconds=61))
            results = worker.run_once()
        finally:
            catcher.stop()
            clock.travel(dt.timedelta(0))
    assert any(line.startswith("notifications.send: 1 sent") for line in results), results
    [caught] = catcher.messages
    assert caught.recipients == ["ines@example.org"]
    row.refresh_from_db()
    assert row.state == "sent" and row.attempts == 2
    texts = [record.getMessage() for record in caplog.records] + [row.last_error]
    assert not any("pa55word" in text for text in texts)
