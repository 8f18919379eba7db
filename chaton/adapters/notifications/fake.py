"""An in-memory notifier for the fast tests: it keeps what it was given, and can be told to
fail the way the real servers do."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chaton.adapters.notifications import (
    Mail,
    NotificationRefused,
    NotificationUnavailable,
    WebhookRefused,
    check_webhook_url,
)


@dataclass(frozen=True)
class Posted:
    url: str
    text: str


@dataclass
class FakeNotifier:
    """Keeps each mail in :attr:`mails` and each webhook message in :attr:`posts`.

    ``mail_down`` and ``webhook_down`` make the server unreachable;
    ``refused`` addresses are refused by the mail server; ``webhook_status``
    is what the webhook answers.
    """

    mails: list[Mail] = field(default_factory=list)
    posts: list[Posted] = field(default_factory=list)
    mail_down: bool = False
    webhook_down: bool = False
    refused: set[str] = field(default_factory=set)
    webhook_status: int = 200

    def send_mail(self, mail: Mail) -> None:
        """See :meth:`chaton.adapters.notifications.Notifier.send_mail`."""
        if self.mail_down:
            raise NotificationUnavailable("[Errno 111] Connection refused")
        # As a mail server does: the accepted addresses get the mail, the refused are named.
        accepted = tuple(address for address in mail.recipients if address not in self.refused)
        if accepted:
            self.mails.append(replace(mail, recipients=accepted))
        refused = sorted(set(mail.recipients) & self.refused)
        if refused:
            raise NotificationRefused("refused " + ", ".join(refused))

    def post_webhook(self, url: str, text: str) -> None:
        """See :meth:`chaton.adapters.notifications.Notifier.post_webhook`."""
        check_webhook_url(url)
        if self.webhook_down:
            raise NotificationUnavailable("[Errno 111] Connection refused")
        if not 200 <= self.webhook_status < 300:
            raise WebhookRefused(self.webhook_status)
        self.posts.append(Posted(url, text))
