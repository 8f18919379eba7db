"""The notifications adapter: mail over SMTP, and messages to a Mattermost/Slack-compatible
incoming webhook. The only code that talks to a mail server or a chat server.

A small interface, :class:`Notifier`, one real client
(:class:`chaton.adapters.notifications.client.NotificationClient`: smtplib with
none, STARTTLS or implicit TLS, a login and a timeout; httpx for the webhook,
with a timeout) and one in-memory fake
(:class:`chaton.adapters.notifications.fake.FakeNotifier`). Nothing here imports
Django: the queue, the retries and the settings live in :mod:`chaton.notifications`.

Secrets stay out of sight: the SMTP password never appears in a repr or an
error message, and a webhook URL, whose path is its secret, is shown as
:func:`mask_webhook_url` gives it (``https://host/hooks/••••``).

Exceptions::

    NotificationError(Exception)
    ├── NotificationUnavailable(ConnectionError)  the server is down, unreachable or too slow
    ├── NotificationRefused(ValueError)           the server answered no: an address, the
    │   └── WebhookRefused                          login, the message; a webhook's status
    └── NotificationMisconfigured(ValueError)     no mail server, a URL that is not http(s)
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Protocol

#: What stands for the secret part of a webhook URL wherever it is shown.
MASK = "••••"


class NotificationError(Exception):
    """Base of every error this adapter raises; its message never holds a secret."""


class NotificationUnavailable(NotificationError, ConnectionError):
    pass


class NotificationRefused(NotificationError, ValueError):
    pass


class WebhookRefused(NotificationRefused):
    """The webhook answered with a status that is not 2xx."""

    def __init__(self, status: int) -> None:
        super().__init__(f"answered {status}")
        self.status = status


class NotificationMisconfigured(NotificationError, ValueError):
    pass


@dataclass(frozen=True)
class Mail:
    """One message: the same text to each of ``recipients`` (all in its To header)."""

    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str


class Notifier(Protocol):
    """What Chaton needs to tell people something."""

    def send_mail(self, mail: Mail) -> None:
        """Hand ``mail`` to the mail server.

        Raise NotificationUnavailable (server down, too slow), NotificationRefused
        (an address, the login or the message refused), NotificationMisconfigured
        (no mail server).
        """
        ...

    def post_webhook(self, url: str, text: str) -> None:
        """POST ``{"text": text}`` as JSON to the incoming webhook at ``url``.

        Raise NotificationUnavailable (unreachable, timed out), WebhookRefused
        (not 2xx), NotificationMisconfigured (not an http(s) URL).
        """
        ...


def check_webhook_url(url: str) -> urllib.parse.SplitResult:
    """Return the parts of ``url``. Raise NotificationMisconfigured unless it is http(s)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotificationMisconfigured("the webhook URL is not http(s)")
    return parts


def mask_webhook_url(url: str) -> str:
    """Return what may be shown of a webhook URL: its scheme, host and first path segment,
    the rest as ``••••`` (``https://chat.example.org/hooks/••••``)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    segments = [segment for segment in parts.path.split("/") if segment]
    kept = f"/{segments[0]}" if len(segments) > 1 else ""
    return f"{parts.scheme or '?'}://{host}{kept}/{MASK}"


def webhook_secrets(url: str) -> list[str]:
    """Return the parts of a webhook URL that must be masked in any text: the URL itself,
    its path and its query (where Slack-like services may put a token)."""
    parts = urllib.parse.urlsplit(url)
    return [secret for secret in (url, parts.path, parts.query)
            if secret and len(secret) > 1]


def mask(text: str, secrets: list[str]) -> str:
    """Return ``text`` with each of ``secrets`` (longest first) replaced by ``••••``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text
