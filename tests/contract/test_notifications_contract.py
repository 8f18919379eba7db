"""The notifications adapter's contract: the same assertions against the fake and against the
real client, which talks to a real SMTP server (aiosmtpd) and a real webhook receiver, both
on free loopback ports that the test starts. The fake cannot drift from the servers."""

from __future__ import annotations

import email
import email.header
import logging
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from chaton.adapters.notifications import (
    Mail,
    NotificationMisconfigured,
    NotificationRefused,
    NotificationUnavailable,
    Notifier,
    WebhookRefused,
)
from chaton.adapters.notifications.client import NotificationClient, SmtpSettings
from chaton.adapters.notifications.fake import FakeNotifier
from chaton.core.servers import free_port
from chaton.testing.pytest_plugin import SmtpCatcher
from chaton.testing.webhook import HOOK_PATH, WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.integration

SENDER = "chaton@collectif.example.org"
#: The SMTP password of the real side: never in an error message.
PASSWORD = "smtp-pa55word-of-the-collective"
REFUSED = "nobody@collectif.example.org"


class RefusingCatcher(SmtpCatcher):
    """The suite's SMTP catcher, refusing :data:`REFUSED` as a recipient."""

    async def handle_RCPT(self, server: object, session: object, envelope: object,
                          address: str, rcpt_options: list[str]) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"


@dataclass
class Side:
    """One side of the contract: a notifier, what reached its servers, and ways to break them."""

    name: str
    notifier: Notifier
    url: str
    catcher: RefusingCatcher | None = None
    receiver: WebhookReceiver | None = None
    fake: FakeNotifier | None = None
    sent: list[tuple[list[str], str, str]] = field(default_factory=list)

    def mails(self) -> list[tuple[list[str], str, str]]:
        """Return each mail that arrived: its recipients, subject and body."""
        if self.fake is not None:
            return [(list(mail.recipients), mail.subject, mail.body) for mail in self.fake.mails]
        assert self.catcher is not None
        arrived = []
        for caught in self.catcher.messages:
            message = email.message_from_bytes(caught.content)
            subject = str(email.header.make_header(email.header.decode_header(
                message["Subject"])))
            payload = message.get_payload(decode=True)
            assert isinstance(payload, bytes)
            # Lines end in CRLF on the wire; a mail reader shows lines.
            body = payload.decode(message.get_content_charset() or "utf-8").replace("\r\n", "\n")
            arrived.append((sorted(caught.recipients), subject, body))
        return arrived

    def posts(self) -> list[tuple[str, str]]:
        """Return each webhook message that arrived: the URL's path and the text."""
        if self.fake is not None:
            return [(urllib.parse.urlsplit(post.url).path, post.text)
                    for post in self.fake.posts]
        assert self.receiver is not None
        return [(received.path, received.body["text"]) for received in self.receiver.received]

    def stop_mail_server(self) -> None:
        if self.fake is not None:
            self.fake.mail_down = True
        else:
            self.notifier = NotificationClient(SmtpSettings(
                "127.0.0.1", free_port(), username="chaton", password=PASSWORD, timeout=2))

    def stop_webhook(self) -> None:
        if self.fake is not None:
            self.fake.webhook_down = True
        else:
            self.url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"

    def webhook_answers(self, status: int) -> None:
        if self.fake is not None:
            self.fake.webhook_status = status
        else:
            assert self.receiver is not None
            self.receiver.status = status


@pytest.fixture(params=["fake", "real"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    """Yield the fake side, then the real one (its SMTP server and webhook receiver running)."""
    if request.param == "fake":
        fake = FakeNotifier(refused={REFUSED})
        yield Side("fake", fake, f"http://127.0.0.1:1{HOOK_PATH}", fake=fake)
        return
    catcher = RefusingCatcher(free_port())
    catcher.start()
    try:
        with webhook_receiver(free_port()) as receiver:
            client = NotificationClient(SmtpSettings("127.0.0.1", catcher.port, timeout=5),
                                        webhook_timeout=2)
            yield Side("real", client, receiver.url, catcher=catcher, receiver=receiver)
    finally:
        catcher.stop()


SUBJECT = "Assemblée générale : ordre du jour « budget »"
BODY = "Bonjour Anaïs,\n\nL'assemblée se tient jeudi à 19 h.\n\n-- \nChaton\n"


def mail(*recipients: str) -> Mail:
    return Mail(sender=SENDER, recipients=recipients, subject=SUBJECT, body=BODY)


def test_a_mail_reaches_its_recipients_with_its_subject_and_text(side: Side) -> None:
    side.notifier.send_mail(mail("anais@example.org", "basile@example.org"))
    assert side.mails() == [(["anais@example.org", "basile@example.org"], SUBJECT, BODY)]


def test_a_refused_address_is_refused_and_the_others_get_the_mail(side: Side) -> None:
    with pytest.raises(NotificationRefused, match=REFUSED) as raised:
        side.notifier.send_mail(mail("anais@example.org", REFUSED))
    assert isinstance(raised.value, ValueError)
    assert [recipients for recipients, _subject, _body in side.mails()] == [
        ["anais@example.org"]]
    with pytest.raises(NotificationRefused):
        side.notifier.send_mail(mail(REFUSED))
    assert len(side.mails()) == 1


def test_a_mail_server_that_is_down_is_unavailable(side: Side) -> None:
    side.stop_mail_server()
    with pytest.raises(NotificationUnavailable) as raised:
        side.notifier.send_mail(mail("anais@example.org"))
    assert isinstance(raised.value, ConnectionError)
    assert PASSWORD not in str(raised.value)
    assert side.mails() == []


def test_a_webhook_gets_the_text_as_json_and_no_log_line_shows_its_path(
        side: Side, caplog: pytest.LogCaptureFixture) -> None:
    text = "**[#12 Des mots de passe](https://chaton.example.org/decisions/12/)**\n- *ajout*"
    with caplog.at_level(logging.DEBUG):
        side.notifier.post_webhook(side.url, text)
    assert side.posts() == [(HOOK_PATH, text)]
    assert not any("s3cr3t" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("status", [500, 404, 302])
def test_a_webhook_that_answers_an_error_or_a_redirect_is_refused_without_its_secret(
        side: Side, status: int) -> None:
    side.webhook_answers(status)
    with pytest.raises(WebhookRefused) as raised:
        side.notifier.post_webhook(side.url, "hello")
    assert raised.value.status == status
    assert str(raised.value) == f"answered {status}"
    assert isinstance(raised.value, NotificationRefused)


def test_a_webhook_that_is_down_is_unavailable_without_its_secret(side: Side) -> None:
    side.stop_webhook()
    with pytest.raises(NotificationUnavailable) as raised:
        side.notifier.post_webhook(side.url, "hello")
    assert "s3cr3t" not in str(raised.value)
    assert side.posts() == []


@pytest.mark.parametrize("url", ["ftp://chat.example.org/hooks/abc", "file:///etc/passwd",
                                 "/hooks/abc", ""])
def test_a_webhook_url_that_is_not_http_is_refused_before_anything_leaves(
        side: Side, url: str) -> None:
    with pytest.raises(NotificationMisconfigured):
        side.notifier.post_webhook(url, "hello")
    assert side.posts() == []


# -- the real client only: what time and TLS do -------------------------------------------


def test_a_silent_webhook_is_given_up_after_its_timeout() -> None:
    with webhook_receiver(free_port()) as receiver:
        receiver.delay = 2.0
        client = NotificationClient(webhook_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(NotificationUnavailable, match=r"^timed out$"):
            client.post_webhook(receiver.url, "hello")
        assert time.monotonic() - started < 1.5


def test_starttls_against_a_server_without_it_is_refused_and_sends_nothing(
        smtp_catcher: SmtpCatcher) -> None:
    # The catcher offers no STARTTLS: a client told to use it must not fall back to plain text.
    client = NotificationClient(SmtpSettings("127.0.0.1", smtp_catcher.port, security="starttls",
                                             username="chaton", password=PASSWORD, timeout=5))
    with pytest.raises(NotificationRefused) as raised:
        client.send_mail(mail("anais@example.org"))
    assert PASSWORD not in str(raised.value)
    assert smtp_catcher.messages == []


def test_implicit_tls_against_a_plain_server_fails_and_sends_nothing(
        smtp_catcher: SmtpCatcher) -> None:
    client = NotificationClient(SmtpSettings("127.0.0.1", smtp_catcher.port, security="tls",
                                             timeout=3))
    with pytest.raises(NotificationUnavailable):
        client.send_mail(mail("anais@example.org"))
    assert smtp_catcher.messages == []


def test_a_login_the_server_cannot_take_is_refused_without_the_password(
        smtp_catcher: SmtpCatcher) -> None:
    client = NotificationClient(SmtpSettings("127.0.0.1", smtp_catcher.port, username="chaton",
                                             password=PASSWORD, timeout=5))
    with pytest.raises(NotificationRefused) as raised:
        client.send_mail(mail("anais@example.org"))
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(client)
    assert smtp_catcher.messages == []


def test_a_line_break_in_a_subject_never_makes_a_header_of_its_own(
        smtp_catcher: SmtpCatcher) -> None:
    client = NotificationClient(SmtpSettings("127.0.0.1", smtp_catcher.port, timeout=5))
    client.send_mail(Mail(sender=SENDER, recipients=("anais@example.org",),
                          subject="Hello\r\nBcc: eve@example.org", body="Body\n"))
    [caught] = smtp_catcher.messages
    assert caught.recipients == ["anais@example.org"]
    message = email.message_from_bytes(caught.content)
    assert message["Bcc"] is None and message["Subject"] == "Hello Bcc: eve@example.org"
    with pytest.raises(NotificationRefused):
        client.send_mail(Mail(sender=SENDER, recipients=("anais@example.org\r\nBcc: eve@x.org",),
                              subject="Hello", body="Body\n"))
    assert len(smtp_catcher.messages) == 1
