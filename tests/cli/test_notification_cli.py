"""``chaton notification``: what was not sent, and a new round for what failed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from rich.console import Console
from typer.testing import CliRunner

from chaton.adapters.notifications.fake import FakeNotifier
from chaton.cli import runtime
from chaton.cli.app import app
from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.notifications import outbox
from chaton.notifications.models import Notification

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("english")]

HOOK = "https://chat.collectif.example.org/hooks/xq7-s3cr3t-t0ken"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNotifier]:
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", HOOK)
    # Wide enough for every column on one line.
    monkeypatch.setattr(runtime, "_console", Console(width=300, highlight=False, soft_wrap=True))
    notifier = FakeNotifier(mail_down=True, webhook_status=500)
    with outbox.use_notifications(notifier):
        yield notifier


def cli(*arguments: str) -> Any:
    return CliRunner().invoke(app, list(arguments))


def given_up(row: Notification) -> None:
    Notification.objects.filter(pk=row.pk).update(failed_at=clock.now(), next_attempt_at=None,
                                                  attempts=outbox.MAX_ATTEMPTS)


def test_the_list_shows_what_was_not_sent_and_never_a_webhook_secret(
        fake: FakeNotifier) -> None:
    with transaction.atomic():
        mail = outbox.enqueue_mail(["anouk@example.org"], "Hello", "Body\n",
                                   source="expiry notice anouk")
        hook = outbox.enqueue_webhook("governance", "**hello**",
                                      source="governance notice proposed #3")
        outbox.send_on_commit([mail, hook])
    given_up(hook)

    listed = cli("notification", "list")
    assert listed.exit_code == 0, listed.output
    assert "anouk@example.org" in listed.stdout and "expiry notice anouk" in listed.stdout
    assert "https://chat.collectif.example.org/hooks/••••" in listed.stdout
    assert "answered 500" in listed.stdout
    assert "s3cr3t" not in listed.stdout
    failed = cli("notification", "list", "--failed")
    assert "expiry notice anouk" not in failed.stdout and "#3" in failed.stdout


def test_retry_gives_a_failed_notification_a_new_round_and_is_audited(
        fake: FakeNotifier) -> None:
    with transaction.atomic():
        row = outbox.enqueue_mail(["anouk@example.org"], "Hello", "Body\n")
        outbox.send_on_commit([row])
    refused = cli("notification", "retry", str(row.pk))
    assert refused.exit_code == 2 and "Only a notification that failed" in refused.output
    given_up(row)
    fake.mail_down = False
    retried = cli("notification", "retry", str(row.pk))
    assert retried.exit_code == 0, retried.output
    assert f"Notification {row.pk} sent." in retried.stdout
    row.refresh_from_db()
    assert row.state == "sent" and len(fake.mails) == 1
    assert AuditLog.objects.filter(action="notification.retried").count() == 1
    missing = cli("notification", "retry", "999999")
    assert missing.exit_code == 2 and "No notification has this id." in missing.output
    clock.travel(dt.timedelta(0))
