"""Writes on the notifications queue that people ask for (queueing itself is
:mod:`chaton.notifications.outbox`, called inside other actions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.core import audit, clock
from chaton.core.errors import Conflict
from chaton.notifications import outbox
from chaton.notifications.models import Notification

if TYPE_CHECKING:
    from chaton.directory.models import Account


def do_retry_notification(notification: Notification, *,
                          acting_user: Account | None) -> Notification:
    """Give a failed notification a new round of attempts, the first one right after the
    commit; return it. Raise Conflict unless it failed."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification.pk)
        if notification.failed_at is None:
            raise Conflict(_("Only a notification that failed can be retried."),
                           field="notification")
        before = {"attempts": notification.attempts, "last_error": notification.last_error}
        notification.failed_at = None
        notification.attempts = 0
        notification.next_attempt_at = clock.now()
        notification.save(update_fields=["failed_at", "attempts", "next_attempt_at"])
        audit.record("notification.retried", notification, acting_user=acting_user,
                     actor_label=None if acting_user else "cli", before=before,
                     after={"source": notification.source})
        outbox.send_on_commit([notification])
    notification.refresh_from_db()
    return notification
