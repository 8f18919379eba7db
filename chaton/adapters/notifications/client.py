"""The real notifier: smtplib for mail, httpx for webhooks, each with a timeout.

Every error comes out as one of the adapter's exceptions, its message cleaned
of the SMTP password and of the webhook URL's secret parts.
"""

from __future__ import annotations

import email.utils
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

import httpx

from chaton.adapters.notifications import (
    Mail,
    NotificationMisconfigured,
    NotificationRefused,
    NotificationUnavailable,
    WebhookRefused,
    check_webhook_url,
    mask,
    mask_webhook_url,
    webhook_secrets,
)

Security = Literal["none", "starttls", "tls"]
#: The ways a connection to the mail server may be protected.
SECURITY_CHOICES: tuple[Security, ...] = ("none", "starttls", "tls")


class _HideUrlPaths(logging.Filter):
    """httpx logs each request's whole URL (at INFO): show it as :func:`mask_webhook_url` does,
    since a webhook URL's path is its secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_webhook_url(str(arg)) if isinstance(arg, httpx.URL) else arg
                                for arg in record.args)
        return True


if not any(isinstance(existing, _HideUrlPaths) for existing in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_HideUrlPaths())

#: Bytes of a webhook's answer that are read (and thrown away): an answer is a word or two.
WEBHOOK_ANSWER_LIMIT = 65_536


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the mail server: ``security`` "none", "starttls" (upgrade after
    connecting, port 587) or "tls" (implicit TLS, port 465); a login when ``username`` is set."""

    host: str
    port: int = 25
    security: Security = "none"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 10.0

    def __repr__(self) -> str:
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r}, "
                f"username={self.username!r}, password={'••••' if self.password else ''!r}, "
                f"timeout={self.timeout})")


def build_message(mail: Mail) -> EmailMessage:
    """Return ``mail`` as a MIME message: plain text in UTF-8, the subject on one line."""
    message = EmailMessage()
    message["Subject"] = " ".join(mail.subject.split())
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.recipients)
    message["Date"] = email.utils.formatdate(localtime=True)
    # The sender's domain, not socket.getfqdn(): that may wait on a slow resolver.
    domain = mail.sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    message.set_content(mail.body)
    return message


class NotificationClient:
    """Sends mail through ``smtp`` (None: no mail server) and posts to webhooks, giving up
    on either after its timeout."""

    def __init__(self, smtp: SmtpSettings | None = None, *,
                 webhook_timeout: float = 5.0) -> None:
        if smtp is not None and smtp.security not in SECURITY_CHOICES:
            raise NotificationMisconfigured(
                f"unknown SMTP security {smtp.security!r}: one of {', '.join(SECURITY_CHOICES)}")
        self.smtp = smtp
        self.webhook_timeout = webhook_timeout

    def __repr__(self) -> str:
        return f"NotificationClient(smtp={self.smtp!r}, webhook_timeout={self.webhook_timeout})"

    # -- mail ---------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        return [self.smtp.password] if self.smtp is not None and self.smtp.password else []

    def _connect(self, smtp: SmtpSettings) -> smtplib.SMTP:
        if smtp.security == "tls":
            return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                    context=ssl.create_default_context())
        connection = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        if smtp.security == "starttls":
            try:
                connection.starttls(context=ssl.create_default_context())
            except BaseException:
                connection.close()
                raise
        return connection

    def send_mail(self, mail: Mail) -> None:
        """See :meth:`chaton.adapters.notifications.Notifier.send_mail`."""
        smtp = self.smtp
        if smtp is None:
            raise NotificationMisconfigured("no mail server is configured")
        try:
            message = build_message(mail)
        except ValueError as error:  # a line break in an address: never a header of its own
            raise NotificationRefused(f"not a valid message: {error}") from None
        try:
            with self._connect(smtp) as connection:
                if smtp.username:
                    connection.login(smtp.username, smtp.password)
                refused = connection.send_message(message, mail.sender, list(mail.recipients))
        except smtplib.SMTPRecipientsRefused as error:
            raise NotificationRefused(
                "refused " + ", ".join(sorted(error.recipients))) from None
        except smtplib.SMTPAuthenticationError as error:
            raise NotificationRefused(
                f"login refused: {error.smtp_code} {self._text(error.smtp_error)}") from None
        except smtplib.SMTPServerDisconnected as error:
            raise NotificationUnavailable(self._clean(error)) from None
        except smtplib.SMTPResponseException as error:
            raise NotificationRefused(
                f"answered {error.smtp_code} {self._text(error.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as error:
            raise NotificationRefused(self._clean(error)) from None
        except (OSError, smtplib.SMTPException) as error:  # refused, unreachable, timed out, TLS
            raise NotificationUnavailable(self._clean(error) or type(error).__name__) from None
        if refused:
            raise NotificationRefused("refused " + ", ".join(sorted(refused)))

    def _text(self, value: bytes | str) -> str:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return mask(" ".join(text.split()), self._secrets())

    def _clean(self, error: BaseException) -> str:
        text = str(error)
        if isinstance(error, TimeoutError) and not text:
            text = "timed out"
        return mask(text, self._secrets())

    # -- webhook ------------------------------------------------------------------------

    def post_webhook(self, url: str, text: str) -> None:
        """See :meth:`chaton.adapters.notifications.Notifier.post_webhook`."""
        check_webhook_url(url)
        secrets = webhook_secrets(url)
        try:
            # trust_env off: no proxy from the environment may stand in between (and see
            # the URL); no redirect either, which could carry the text elsewhere.
            with httpx.Client(timeout=self.webhook_timeout, trust_env=False,
                              follow_redirects=False) as client, \
                    client.stream("POST", url, json={"text": text}) as response:
                received = 0
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received >= WEBHOOK_ANSWER_LIMIT:
                        break
                status = response.status_code
        except httpx.TimeoutException:
            raise NotificationUnavailable("timed out") from None
        except (httpx.HTTPError, OSError) as error:
            raise NotificationUnavailable(
                mask(str(error), secrets) or type(error).__name__) from None
        if not 200 <= status < 300:
            raise WebhookRefused(status)
