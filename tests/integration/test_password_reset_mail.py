"""A forgotten password, end to end: the mail reaches a real SMTP server, the new password
binds in a real slapd."""

from __future__ import annotations

import email
import re
from email.message import Message

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from chaton.adapters.ldap.client import LdapDirectory
from chaton.directory import actions, reconcile
from chaton.testing.pytest_plugin import BASE_DN, SmtpCatcher

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

OLD_PASSWORD = "purple kettle 1984"
NEW_PASSWORD = "green teapot 2049"


@pytest.fixture
def smtp_settings(settings, smtp_catcher: SmtpCatcher) -> SmtpCatcher:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_catcher.port
    settings.DEFAULT_FROM_EMAIL = "chaton@collectif.example.org"
    settings.LANGUAGE_CODE = "fr"
    return smtp_catcher


def text_of(message: Message) -> str:
    """Return the decoded text body of a caught mail."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def test_reset_link_from_a_real_mail_sets_a_password_that_binds_in_slapd(
        client, smtp_settings: SmtpCatcher, ldap_directory: LdapDirectory) -> None:
    reconcile.sync_all()
    actions.do_create_account("sacha", acting_user=None, display_name="Sacha Essai",
                              email="sacha@example.org", password=OLD_PASSWORD)
    account_dn = f"uid=sacha,ou=people,{BASE_DN}"
    assert ldap_directory.check_password(account_dn, OLD_PASSWORD)

    client.cookies.load({django_settings.LANGUAGE_COOKIE_NAME: "en"})
    response = client.post(reverse("password-reset"), {"identifier": "sacha@example.org"})
    assert response["Location"] == reverse("password-reset-sent")
    [caught] = smtp_settings.messages
    assert caught.recipients == ["sacha@example.org"]
    message = email.message_from_bytes(caught.content)
    subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
    assert subject.startswith("Choisissez un nouveau mot de passe")
    body = text_of(message)
    assert "Sacha Essai" in body
    [path] = re.findall(r"http://testserver(/password-reset/\S+/)", body)

    form_url = client.get(path)["Location"]
    response = client.post(form_url, {"new_password1": NEW_PASSWORD,
                                      "new_password2": NEW_PASSWORD})
    assert response["Location"] == reverse("login")

    # check_password binds on a connection of its own: the password slapd now holds.
    assert ldap_directory.check_password(account_dn, NEW_PASSWORD)
    assert not ldap_directory.check_password(account_dn, OLD_PASSWORD)
    # The same link, used again, no longer works.
    assert "This link does not work" in client.get(path).content.decode()
