"""The notifications queue with the adapter's fake: the first attempt after the commit, the
retries with backoff, the row given up and visible, the secrets that never show."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from chaton.adapters.notifications import (
    Mail,
    NotificationError,
    mask_webhook_url,
)
from chaton.adapters.notifications.client import NotificationClient, SmtpSettings
from chaton.adapters.notifications.fake import FakeNotifier
from chaton.core import clock, worker
from chaton.notifications import jobs, outbox
from chaton.notifications.models import Notification
from chaton.project.config import GovernanceConfig, MailConfig, Section

pytestmark = pytest.mark.django_db(transaction=True)

HOOK = "https://chat.collectif.example.org/hooks/xq7-s3cr3t-t0ken"


@pytest.fixture
def fake() -> Iterator[FakeNotifier]:
    notifier = FakeNotifier()
    with outbox.use_notifications(notifier):
        yield notifier
    clock.travel(dt.timedelta(0))


def queue_mail(subject: str = "Hello") -> Notification:
    with transaction.atomic():
        row = outbox.enqueue_mail(["anouk@example.org"], subject, "Body\n", source="test")
        outbox.send_on_commit([row])
    row.refresh_from_db()
    return row


def later(seconds: float) -> None:
    """Move Chaton's clock ``seconds`` further than it is."""
    clock.travel(clock.now() - dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


def test_a_mail_is_sent_right_after_the_commit_and_kept_as_sent(fake: FakeNotifier,
                                                                 settings) -> None:
    settings.DEFAULT_FROM_EMAIL = "chaton@collectif.example.org"
    row = queue_mail("Your access expires")
    assert fake.mails == [Mail("chaton@collectif.example.org", ("anouk@example.org",),
                               "Your access expires", "Body\n")]
    assert row.state == "sent" and row.attempts == 1 and row.last_error == ""
    later(3 * 3600)
    assert not outbox.due()
    assert outbox.drain().sent == 0
    assert len(fake.mails) == 1  # never twice


def test_nothing_is_queued_or_sent_when_the_callers_transaction_rolls_back(
        fake: FakeNotifier) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        row = outbox.enqueue_mail(["anouk@example.org"], "Hello", "Body\n")
        outbox.send_on_commit([row])
        raise RuntimeError("the action failed")
    assert not Notification.objects.exists()
    assert fake.mails == []


def test_a_failed_mail_is_retried_with_backoff_then_given_up_and_visible(
        fake: FakeNotifier, caplog: pytest.LogCaptureFixture) -> None:
    fake.mail_down = True
    row = queue_mail()  # the caller goes on: nothing raised
    assert row.state == "pending" and row.attempts == 1
    assert "Connection refused" in row.last_error
    for attempts, delay in enumerate(outbox.RETRY_DELAYS, start=2):
        later(delay - 5)
        assert outbox.drain() == outbox.DrainReport()  # not due yet
        later(10)
        report = outbox.drain()
        row.refresh_from_db()
        assert row.attempts == attempts
    assert report.failed == 1 and row.state == "failed" and row.next_attempt_at is None
    assert outbox.pending_or_failed(failed_only=True) == [row]
    assert any("given up after 5 attempt(s)" in record.getMessage()
               for record in caplog.records)
    later(10 * 3600)
    fake.mail_down = False
    assert outbox.drain().sent == 0 and fake.mails == []  # a failed row stays failed


def test_a_mail_the_server_takes_later_goes_once(fake: FakeNotifier) -> None:
    fake.mail_down = True
    row = queue_mail()
    fake.mail_down = False
    later(61)
    assert outbox.drain().sent == 1
    row.refresh_from_db()
    assert row.state == "sent" and row.attempts == 2 and row.last_error == ""
    assert len(fake.mails) == 1


@pytest.mark.usefixtures("english")
def test_the_worker_drains_the_queue_in_its_long_lane(fake: FakeNotifier) -> None:
    assert "chaton.notifications.jobs" in worker.job_modules()
    assert "notifications.send" in jobs.LONG_JOBS
    fake.mail_down = True
    queue_mail()
    schedule = worker.Schedule()
    assert [name for name, _job in jobs.due_jobs(schedule)] == ["notifications.prune"]
    assert jobs.due_jobs(schedule) == []  # its first retry is a minute away
    fake.mail_down = False
    later(61)
    [(_name, job)] = jobs.due_jobs(schedule)
    result = job()
    assert result is not None and result.ok
    assert str(result) == "notifications.send: 1 sent, 0 to retry, 0 given up"
    assert len(fake.mails) == 1


def test_a_server_found_down_is_not_asked_again_for_the_rest_of_the_batch(
        fake: FakeNotifier) -> None:
    fake.mail_down = True
    outcomes: list[outbox.Attempt] = []
    with transaction.atomic():
        rows = [outbox.enqueue_mail([f"voter{index}@example.org"], "Hello", "Body\n")
                for index in range(3)]
        outbox.send_on_commit(rows, then=outcomes.extend)
    assert [outcome.skipped for outcome in outcomes] == [False, True, True]
    assert all(outcome.notification.attempts == 1 for outcome in outcomes)


def test_a_webhook_row_names_its_channel_and_never_stores_the_url(
        fake: FakeNotifier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", HOOK)
    with transaction.atomic():
        row = outbox.enqueue_webhook("governance", "**done**")
        outbox.send_on_commit([row])
    assert [(post.url, post.text) for post in fake.posts] == [(HOOK, "**done**")]
    stored = Notification.objects.filter(pk=row.pk).values().get()
    assert not any("s3cr3t" in str(value) for value in stored.values())


def test_a_webhook_with_no_url_is_given_up_at_once(fake: FakeNotifier,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", "")
    with transaction.atomic():
        row = outbox.enqueue_webhook("governance", "**done**")
        outbox.send_on_commit([row])
    row.refresh_from_db()
    assert row.state == "failed" and "no webhook URL" in row.last_error


class LeakyNotifier:
    """A notifier whose errors quote what they were given, secrets included (as a careless
    library's would): the queue must mask them all the same."""

    def send_mail(self, mail: Mail) -> None:
        raise NotificationError(f"login chaton:{django_settings.EMAIL_HOST_PASSWORD} refused")

    def post_webhook(self, url: str, text: str) -> None:
        raise NotificationError(f"POST {url} failed")


def test_a_secret_never_reaches_the_queue_or_the_logs(
        settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    settings.EMAIL_HOST_PASSWORD = "smtp-pa55word-of-the-collective"
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", HOOK)
    with caplog.at_level(logging.INFO), outbox.use_notifications(LeakyNotifier()), \
            transaction.atomic():
        rows = [outbox.enqueue_mail(["anouk@example.org"], "Hello", "Body\n"),
                outbox.enqueue_webhook("governance", "hello")]
        outbox.send_on_commit(rows)
    errors = list(Notification.objects.values_list("last_error", flat=True))
    assert len(errors) == 2 and all("failed" in error or "refused" in error for error in errors)
    texts = errors + [record.getMessage() for record in caplog.records]
    for secret in ("smtp-pa55word", "s3cr3t", HOOK):
        assert not any(secret in text for text in texts), secret


class TeamConfig(Section):
    """A section of the configuration with a webhook of its own."""

    webhook_url: str = ""


def test_the_webhook_of_the_monitoring_channel_is_masked_whatever_section_it_is(
        settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The channels come from the configuration, not a list in the code: monitoring's alerts
    posted to a section other than governance keep that section's URL out of every error
    and log line, the mail's included."""
    hook = "https://chat.collectif.example.org/hooks/team-7f3-t0ken"
    team = TeamConfig()
    team.webhook_url = hook
    monkeypatch.setattr(django_settings.CHATON, "team", team, raising=False)
    monkeypatch.setattr(django_settings.CHATON.monitoring, "webhook_channel", "team")
    assert {"governance", "team"} <= set(outbox.webhook_channels())

    class QuotingNotifier(LeakyNotifier):
        def send_mail(self, mail: Mail) -> None:
            raise NotificationError(f"relay refused; see {hook}")

    with caplog.at_level(logging.INFO), outbox.use_notifications(QuotingNotifier()), \
            transaction.atomic():
        rows = [outbox.enqueue_mail(["anouk@example.org"], "Down: pads", "Body\n"),
                outbox.enqueue_webhook("team", "Down: pads")]
        outbox.send_on_commit(rows)
    errors = list(Notification.objects.values_list("last_error", flat=True))
    assert len(errors) == 2 and all(error for error in errors)
    texts = errors + [record.getMessage() for record in caplog.records]
    for secret in ("team-7f3-t0ken", "/hooks/team-7f3"):
        assert not any(secret in text for text in texts), secret


def test_a_channel_monitoring_names_without_a_section_is_listed_and_never_sent(
        fake: FakeNotifier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(django_settings.CHATON.monitoring, "webhook_channel", "nowhere")
    assert outbox.webhook_channels()[-1] == "nowhere"
    with transaction.atomic():
        row = outbox.enqueue_webhook("nowhere", "Down: pads")
        outbox.send_on_commit([row])
    row.refresh_from_db()
    assert row.state == "failed" and "no webhook URL" in row.last_error and not fake.posts


def test_secrets_are_masked_in_reprs_and_what_is_shown_of_a_webhook() -> None:
    assert mask_webhook_url(HOOK) == "https://chat.collectif.example.org/hooks/••••"
    assert mask_webhook_url("http://127.0.0.1:8065/x") == "http://127.0.0.1:8065/••••"
    settings = SmtpSettings("mail.example.org", 587, "starttls", "chaton", "pa55word")
    assert "pa55word" not in repr(settings)
    assert "pa55word" not in repr(NotificationClient(settings))
    mail = MailConfig()
    mail.smtp_password = "pa55word"
    governance = GovernanceConfig()
    governance.webhook_url = HOOK
    assert "pa55word" not in repr(mail) and "s3cr3t" not in repr(governance)


def test_the_password_reset_mail_goes_now_and_is_never_queued(fake: FakeNotifier) -> None:
    outbox.send_mail_now(["anouk@example.org"], "Choose a new password",
                         "http://testserver/password-reset/MQ/abc-token/\n")
    assert len(fake.mails) == 1
    assert not Notification.objects.exists()
    fake.mail_down = True
    with pytest.raises(NotificationError):
        outbox.send_mail_now(["anouk@example.org"], "Choose a new password", "link\n")


@pytest.mark.usefixtures("english")
def test_sent_rows_are_deleted_after_a_month_and_failed_ones_stay(fake: FakeNotifier) -> None:
    sent = queue_mail("sent")
    fake.mail_down = True
    failed = queue_mail("failed")
    Notification.objects.filter(pk=failed.pk).update(failed_at=clock.now())
    later(29 * 86400)
    assert jobs.prune_sent() is None
    later(31 * 86400)
    result = jobs.prune_sent()
    assert result is not None and str(result) == (
        "notifications.prune: 1 sent notification(s) deleted")
    assert list(Notification.objects.values_list("pk", flat=True)) == [failed.pk]
    assert sent.pk != failed.pk
