"""The queue of notifications: one row per message to send, kept once sent or given up."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from chaton.core import clock


class Kind(models.TextChoices):
    MAIL = "mail", _("mail")
    WEBHOOK = "webhook", _("webhook")


class Notification(models.Model):
    """A mail or a webhook message, with its delivery so far.

    Pending while neither ``sent_at`` nor ``failed_at`` is set; the worker tries
    it again from ``next_attempt_at``. A webhook row names its ``channel`` (the
    configuration section whose ``webhook_url`` it goes to), never the URL,
    whose path is a secret: nothing secret is stored here.
    """

    kind = models.CharField(max_length=16, choices=Kind.choices)
    #: A webhook's configuration section ("governance"); empty for a mail.
    channel = models.CharField(max_length=64, blank=True)
    #: A mail's addresses (all in its To header); empty for a webhook.
    recipients = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField()
    #: The language the text was written in.
    language = models.CharField(max_length=16, blank=True)
    #: What asked for it, for people and logs ("governance notice proposed #12").
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    #: Why the last attempt failed (no secret: the adapter's messages are masked).
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    #: Set when the attempts are used up or retrying cannot help: visible, never retried.
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["sent_at", "failed_at", "next_attempt_at"],
                                name="notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.source})"

    @property
    def state(self) -> str:
        """Return "sent", "failed" or "pending"."""
        if self.sent_at is not None:
            return "sent"
        if self.failed_at is not None:
            return "failed"
        return "pending"
