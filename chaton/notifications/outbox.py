"""Sending notifications: queue a row, try it once at once, let the worker retry.

Every mail and webhook message of Chaton goes through here and the
notifications adapter (:mod:`chaton.adapters.notifications`)::

    caller's transaction ──> enqueue_mail / enqueue_webhook   (a Notification row)
                             send_on_commit(rows)              first attempt after the commit
    worker (jobs.py)     ──> drain()                           due rows, with backoff
    a page waiting on it ──> send_mail_now()                   no row (a reset link is a
                                                               credential), raises

A failed attempt is recorded on its row (``attempts``, ``last_error``) and
tried again after :data:`RETRY_DELAYS` (1 min, 5 min, 30 min, 2 h); after
:data:`MAX_ATTEMPTS` the row is marked failed, logged, and listed by
``chaton notification list --failed``. A failure never reaches the caller,
except through :func:`send_mail_now`, whose caller shows it.

Which server: mail goes to the SMTP server of Django's ``EMAIL_*`` settings
(filled from ``[mail]`` of chaton.toml) when ``EMAIL_BACKEND`` is Django's
SMTP backend, through the adapter's real client; any other backend (the file
outbox when no mail server is set, locmem in the tests) is Django's own, behind
the same interface. Webhook rows name a configuration section (``channel``)
whose ``webhook_url`` is read at each attempt. :func:`use_notifications`
puts a fake in place for tests.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from chaton.adapters.notifications import (
    Mail,
    NotificationError,
    NotificationMisconfigured,
    NotificationUnavailable,
    Notifier,
    mask,
    webhook_secrets,
)
from chaton.adapters.notifications.client import NotificationClient, Security, SmtpSettings
from chaton.core import clock, runner
from chaton.notifications.models import Kind, Notification

logger = logging.getLogger("chaton.notifications")

#: Seconds before the next attempt, after the first, second … failed attempt.
RETRY_DELAYS = (60, 5 * 60, 30 * 60, 2 * 60 * 60)
#: Attempts before a notification is given up (marked failed).
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
#: A new row waits this long for its first attempt by its caller before the worker takes it.
FIRST_ATTEMPT_SECONDS = 60
#: An attempt holds its row this long: a process that dies mid-send leaves it to the worker.
ATTEMPT_LEASE_SECONDS = 5 * 60
#: Seconds before a webhook or the mail server is given up on: a notice waits for no one.
WEBHOOK_TIMEOUT_SECONDS = 5.0
MAIL_TIMEOUT_SECONDS = 10.0
#: Rows the worker tries at one tick.
DRAIN_BATCH = 100
#: Days a sent row is kept (what went out, to whom, when), then deleted by the worker.
KEEP_SENT_DAYS = 30

_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

_injected: list[Notifier] = []


@contextmanager
def use_notifications(notifier: Notifier) -> Iterator[Notifier]:
    """Within the block, send every notification of this process through ``notifier``."""
    _injected.append(notifier)
    try:
        yield notifier
    finally:
        _injected.remove(notifier)


class DjangoMailNotifier:
    """Mail through Django's configured backend (a file outbox, locmem in the tests); webhooks
    through ``webhooks``."""

    def __init__(self, webhooks: Notifier) -> None:
        self.webhooks = webhooks

    def send_mail(self, mail: Mail) -> None:
        try:
            with get_connection() as connection:
                EmailMessage(mail.subject, mail.body, mail.sender, list(mail.recipients),
                             connection=connection).send()
        except OSError as error:
            raise NotificationUnavailable(str(error) or type(error).__name__) from None
        except Exception as error:  # a backend's own error: its message is all there is
            raise NotificationError(str(error) or type(error).__name__) from None

    def post_webhook(self, url: str, text: str) -> None:
        self.webhooks.post_webhook(url, text)


def smtp_settings() -> SmtpSettings:
    """Return the mail server of Django's ``EMAIL_*`` settings (its password registered as a
    secret, masked in every log line)."""
    password = settings.EMAIL_HOST_PASSWORD or ""
    runner.register_secret(password)
    security: Security = ("tls" if settings.EMAIL_USE_SSL
                          else "starttls" if settings.EMAIL_USE_TLS else "none")
    return SmtpSettings(host=settings.EMAIL_HOST, port=int(settings.EMAIL_PORT),
                        security=security, username=settings.EMAIL_HOST_USER or "",
                        password=password,
                        timeout=float(settings.EMAIL_TIMEOUT or MAIL_TIMEOUT_SECONDS))


def notifier() -> Notifier:
    """Return the notifier to use now: the one :func:`use_notifications` set, else the real
    client (through Django's backend for mail unless that is SMTP)."""
    if _injected:
        return _injected[-1]
    if settings.EMAIL_BACKEND == _SMTP_BACKEND:
        return NotificationClient(smtp_settings(), webhook_timeout=WEBHOOK_TIMEOUT_SECONDS)
    return DjangoMailNotifier(NotificationClient(webhook_timeout=WEBHOOK_TIMEOUT_SECONDS))


def webhook_url(channel: str) -> str:
    """Return the webhook URL of ``channel`` (``settings.CHATON.<channel>.webhook_url``), its
    secret parts registered for masking; empty when none is set."""
    section = getattr(settings.CHATON, channel, None)
    url = str(getattr(section, "webhook_url", "") or "")
    for secret in webhook_secrets(url):
        runner.register_secret(secret)
    return url


def webhook_channels() -> list[str]:
    """Return the channels a webhook row may name, from the configuration: each section
    with a ``webhook_url`` (``governance`` …), and the one monitoring posts to
    (``monitoring.webhook_channel``)."""
    config = settings.CHATON
    names = [name for name, section in vars(config).items()
             if not name.startswith("_") and "webhook_url" in getattr(section, "keys", ())]
    monitoring = getattr(config, "monitoring", None)
    channel = str(getattr(monitoring, "webhook_channel", "") or "")
    if channel and channel not in names:
        names.append(channel)
    return names


def _secrets() -> list[str]:
    """Return what no error text may show: the SMTP password and the webhooks' secret parts."""
    secrets = [settings.EMAIL_HOST_PASSWORD or ""]
    for name in webhook_channels():
        secrets += webhook_secrets(webhook_url(name))
    return [secret for secret in secrets if secret]


# -- queueing -------------------------------------------------------------------------------


def enqueue_mail(recipients: Sequence[str], subject: str, body: str, *, language: str = "",
                 source: str = "") -> Notification:
    """Queue a mail to ``recipients`` (one message, all in To); return its row.

    Within the caller's transaction: the row exists only if it commits. Pass
    the row to :func:`send_on_commit` for a first attempt at once.
    """
    return Notification.objects.create(
        kind=Kind.MAIL, recipients=list(recipients), subject=subject, body=body,
        language=language or settings.LANGUAGE_CODE, source=source[:200],
        next_attempt_at=clock.now() + dt.timedelta(seconds=FIRST_ATTEMPT_SECONDS))


def enqueue_webhook(channel: str, text: str, *, language: str = "",
                    source: str = "") -> Notification:
    """Queue ``text`` for the webhook of the configuration section ``channel``; return its row."""
    return Notification.objects.create(
        kind=Kind.WEBHOOK, channel=channel, body=text,
        language=language or settings.LANGUAGE_CODE, source=source[:200],
        next_attempt_at=clock.now() + dt.timedelta(seconds=FIRST_ATTEMPT_SECONDS))


def send_on_commit(notifications: Sequence[Notification],
                   then: Callable[[list[Attempt]], None] | None = None) -> None:
    """After the current transaction commits (at once outside one), try each of
    ``notifications``; give the outcomes to ``then``. Never raise."""
    ids = [notification.pk for notification in notifications]

    def run() -> None:
        try:
            outcomes = attempt(ids)
            if then is not None:
                then(outcomes)
        except Exception:  # a notification never breaks what asked for it
            logger.exception("notifications %s: first attempt failed", ids)

    transaction.on_commit(run)


# -- sending --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One try of one row: ``error`` None when it went out."""

    notification: Notification
    error: NotificationError | None = None
    #: Not tried: the server already failed at this batch, and the same error was recorded.
    skipped: bool = False

    @property
    def sent(self) -> bool:
        return self.error is None


def _claim(notification: Notification, now: dt.datetime) -> bool:
    """Take ``notification`` for one attempt (count it, hold it for a lease); return False when
    another process took it first or it is no longer pending."""
    taken = Notification.objects.filter(
        pk=notification.pk, attempts=notification.attempts, sent_at__isnull=True,
        failed_at__isnull=True,
    ).update(attempts=notification.attempts + 1,
             next_attempt_at=now + dt.timedelta(seconds=ATTEMPT_LEASE_SECONDS))
    if taken:
        notification.attempts += 1
    return bool(taken)


def _send(sender: Notifier, notification: Notification) -> None:
    """Send one row through ``sender``. Raise NotificationError."""
    if notification.kind == Kind.WEBHOOK:
        url = webhook_url(notification.channel)
        if not url:
            raise NotificationMisconfigured(
                f"no webhook URL is set for {notification.channel or '?'}")
        sender.post_webhook(url, notification.body)
    else:
        sender.send_mail(Mail(sender=settings.DEFAULT_FROM_EMAIL,
                              recipients=tuple(notification.recipients),
                              subject=notification.subject, body=notification.body))


def _finish(notification: Notification, error: NotificationError | None,
            now: dt.datetime) -> None:
    """Record the outcome of an attempt on its row: sent, to retry later, or failed."""
    if error is None:
        notification.sent_at, notification.next_attempt_at = now, None
        notification.last_error = ""
    else:
        notification.last_error = mask(runner.mask(str(error)), _secrets())[:2000]
        if (notification.attempts >= MAX_ATTEMPTS
                or isinstance(error, NotificationMisconfigured)):
            notification.failed_at, notification.next_attempt_at = now, None
            logger.warning("notification #%d (%s) given up after %d attempt(s): %s",
                           notification.pk, notification.source, notification.attempts,
                           notification.last_error)
        else:
            delay = RETRY_DELAYS[notification.attempts - 1]
            notification.next_attempt_at = now + dt.timedelta(seconds=delay)
            logger.info("notification #%d (%s) attempt %d failed, next in %d s: %s",
                        notification.pk, notification.source, notification.attempts, delay,
                        notification.last_error)
    notification.save(update_fields=["sent_at", "failed_at", "next_attempt_at", "last_error"])


def attempt(ids: Sequence[int]) -> list[Attempt]:
    """Try each pending row of ``ids`` once, in order; return the outcomes of those tried.

    A server found unavailable is not asked again in this call: the rows after
    it that go to the same server get the same error (an attempt counted).
    Never raise for a delivery failure.
    """
    sender = notifier()
    down: dict[tuple[str, str], NotificationError] = {}
    outcomes: list[Attempt] = []
    for notification in Notification.objects.filter(pk__in=ids).order_by("pk"):
        now = clock.now()
        if not _claim(notification, now):
            continue
        server = (notification.kind, notification.channel)
        error: NotificationError | None = down.get(server)
        skipped = error is not None
        if not skipped:
            try:
                _send(sender, notification)
            except NotificationError as caught:
                error = caught
                if isinstance(caught, NotificationUnavailable):
                    down[server] = caught
            except Exception as caught:  # a bug or an odd backend: recorded, retried
                logger.exception("notification #%d: unexpected error", notification.pk)
                error = NotificationError(type(caught).__name__)
        _finish(notification, error, clock.now())
        outcomes.append(Attempt(notification, error, skipped))
    return outcomes


def send_mail_now(recipients: Sequence[str], subject: str, body: str) -> None:
    """Send a mail at once, queueing nothing: for a page whose visitor waits for it and
    whose text must not be stored (a one-time link). Raise NotificationError."""
    runner.register_secret(settings.EMAIL_HOST_PASSWORD or "")
    notifier().send_mail(Mail(sender=settings.DEFAULT_FROM_EMAIL, recipients=tuple(recipients),
                              subject=subject, body=body))


# -- the worker -----------------------------------------------------------------------------


def due(now: dt.datetime | None = None) -> bool:
    """Return whether a pending row's next attempt is due (one cheap query)."""
    return Notification.objects.filter(sent_at__isnull=True, failed_at__isnull=True,
                                       next_attempt_at__lte=now or clock.now()).exists()


@dataclass
class DrainReport:
    sent: int = 0
    to_retry: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def drain(limit: int = DRAIN_BATCH) -> DrainReport:
    """Try the pending rows that are due, oldest first, at most ``limit``; return the counts."""
    ids = list(Notification.objects.filter(
        sent_at__isnull=True, failed_at__isnull=True, next_attempt_at__lte=clock.now(),
    ).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    report = DrainReport()
    for outcome in attempt(ids):
        if outcome.sent:
            report.sent += 1
        elif outcome.notification.failed_at is not None:
            report.failed += 1
        else:
            report.to_retry += 1
        if outcome.error is not None and not outcome.skipped:
            report.errors.append(outcome.notification.last_error)
    return report


def prune(keep_days: int = KEEP_SENT_DAYS) -> int:
    """Delete the rows sent more than ``keep_days`` ago; return how many. The failed ones stay
    until someone retries them."""
    deleted, _by_model = Notification.objects.filter(
        sent_at__lt=clock.now() - dt.timedelta(days=keep_days)).delete()
    return deleted


def pending_or_failed(*, failed_only: bool = False) -> list[Notification]:
    """Return the rows not sent (the failed ones only with ``failed_only``), oldest first."""
    rows = Notification.objects.filter(sent_at__isnull=True)
    if failed_only:
        rows = rows.filter(failed_at__isnull=False)
    return list(rows.order_by("created_at", "pk"))
