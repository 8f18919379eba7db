"""``chaton notification``: the queue of mails and webhook messages (see
:mod:`chaton.notifications.outbox`).

``list`` shows what is not sent yet (``--failed``: only what was given up),
``retry`` gives a failed one a new round of attempts. The worker sends them.
"""

from __future__ import annotations

from typing import Annotated

import typer
from django.utils import timezone
from django.utils.translation import gettext as _
from rich.table import Table

from chaton.cli.runtime import acting_user, cell, console, setup_django

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("list")
def list_notifications(
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only the notifications given up after their last attempt.")] = False,
) -> None:
    """List the notifications not sent yet: to whom, how many attempts, the last error."""
    setup_django()
    from chaton.adapters.notifications import mask_webhook_url
    from chaton.notifications import outbox

    table = Table(_("id"), _("kind"), _("sent to"), _("about"), _("state"), _("attempts"),
                  _("next attempt"), _("last error"))
    for notification in outbox.pending_or_failed(failed_only=failed):
        if notification.kind == "webhook":
            to = mask_webhook_url(outbox.webhook_url(notification.channel))
        else:
            to = ", ".join(notification.recipients)
        next_at = (timezone.localtime(notification.next_attempt_at).strftime("%Y-%m-%d %H:%M")
                   if notification.next_attempt_at else "")
        table.add_row(cell(notification.pk), cell(notification.get_kind_display()), cell(to),
                      cell(notification.source), cell(_("failed") if notification.failed_at
                                                      else _("pending")),
                      cell(notification.attempts), cell(next_at), cell(notification.last_error))
    console().print(table)


@app.command("retry")
def retry_notification(
        notification_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Try a failed notification again, now and then on the usual delays."""
    setup_django()
    from chaton.core.errors import NotFound
    from chaton.notifications.actions import do_retry_notification
    from chaton.notifications.models import Notification

    notification = (Notification.objects.filter(pk=notification_id).first()
                    if 0 < notification_id < 2**63 else None)
    if notification is None:
        raise NotFound(_("No notification has this id."), field="notification")
    notification = do_retry_notification(notification, acting_user=acting_user())
    if notification.sent_at is not None:
        console().print(_("Notification %(id)d sent.") % {"id": notification.pk}, markup=False)
    else:
        console().print(_("Notification %(id)d not sent yet: %(error)s")
                        % {"id": notification.pk, "error": notification.last_error},
                        markup=False)
