"""Decisions announced by mail (a real SMTP server) and on a Mattermost-compatible webhook (a
real HTTP receiver); a dead mail server or webhook never stops a decision."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from pytest_django import Settings

from chaton.adapters.ldap.fake import FakeDirectory
from chaton.core import clock, worker
from chaton.core.servers import free_port
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, Group, GroupMembership
from chaton.governance import actions
from chaton.governance.models import OperationStatus, Status
from chaton.members import actions as members_actions
from chaton.notifications import outbox
from chaton.notifications.models import Notification
from chaton.testing.pytest_plugin import SmtpCatcher
from chaton.testing.voters import own_session, recorded_at_start
from chaton.testing.webhook import HOOK_PATH, WebhookReceiver, webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PUBLIC_URL = "https://chaton.collectif.example.org"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """Yield a webhook receiver on a free loopback port, in a thread; stopped after."""
    with webhook_receiver(free_port()) as receiver:
        yield receiver


@pytest.fixture
def announced(settings: Settings, monkeypatch: pytest.MonkeyPatch, smtp_catcher: SmtpCatcher,
              webhook: WebhookReceiver) -> tuple[SmtpCatcher, WebhookReceiver]:
    """Point the mail at the SMTP catcher and the team channel at the webhook receiver."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_catcher.port
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "chaton@collectif.example.org"
    settings.LANGUAGE_CODE = "en"
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", webhook.url)
    monkeypatch.setattr(django_settings.CHATON.governance, "announce_address", "")
    monkeypatch.setattr(django_settings.CHATON, "public_url", PUBLIC_URL)
    return smtp_catcher, webhook


@dataclass
class Collective:
    admin: Account
    voters: list[Account]
    passwords: Group


@pytest.fixture
def collective(directory: FakeDirectory) -> Iterator[Collective]:
    """Three voting members with accounts, an administrator, a group needing a decision."""
    admin = directory_actions.do_create_account("gerance", acting_user=None, display_name="Gérance",
                                                email="gerance@example.org", is_admin=True)
    voters = []
    for uid, name in (("anouk", "Anouk Pelote"), ("barnabe", "Barnabé Grelot"),
                      ("celeste", "Céleste Rognon")):
        person = members_actions.do_create_person(name, f"{uid}@example.org", acting_user=None)
        recorded_at_start(members_actions.do_start_membership(
            person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=90)))
        voters.append(directory_actions.do_create_account(
            uid, acting_user=None, display_name=name, email=f"{uid}@members.example.org",
            person=person))
    passwords = directory_actions.do_create_group("passwords", acting_user=None,
                                                  requires_decision=True)
    try:
        yield Collective(admin, voters, passwords)
    finally:
        clock.travel(dt.timedelta(0))


def grant(uid: str) -> list[dict[str, object]]:
    return [{"type": "group.grant", "params": {"group": "passwords", "account": uid}}]


def subject_of(content: bytes) -> str:
    message = email.message_from_bytes(content)
    return str(email.header.make_header(email.header.decode_header(message["Subject"])))


def body_of(content: bytes) -> str:
    payload = email.message_from_bytes(content).get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_a_proposal_is_mailed_to_each_elector_and_posted_to_the_channel(
        announced: tuple[SmtpCatcher, WebhookReceiver], collective: Collective) -> None:
    catcher, webhook = announced
    anouk = collective.voters[0]
    decision = actions.do_propose("Give *Anouk* the technical passwords @channel",
                                  grant("anouk"), acting_user=anouk)

    # One message per elector (nobody sees the others' addresses), to the person's address.
    assert sorted(recipient for caught in catcher.messages for recipient in caught.recipients) \
        == ["anouk@example.org", "barnabe@example.org", "celeste@example.org"]
    assert all(len(caught.recipients) == 1 for caught in catcher.messages)
    content = catcher.messages[0].content
    assert subject_of(content) == (f"[Chaton] Proposal #{decision.pk}: Give *Anouk* the "
                                   f"technical passwords @channel")
    body = body_of(content)
    link = f"{PUBLIC_URL}/decisions/{decision.pk}/"
    assert "add anouk to the group passwords" in body
    assert "For: 0/3, against: 0/3." in body
    assert "Deadline:" in body
    assert link in body

    [posted] = webhook.received
    assert posted.path == HOOK_PATH
    assert posted.content_type == "application/json"
    text = posted.body["text"]
    assert f"[#{decision.pk} Give \\*Anouk\\* the technical passwords @\u200bchannel]({link})" \
        in text
    assert "For: 0/3, against: 0/3." in text


def test_announce_address_reminders_and_the_close(
        announced: tuple[SmtpCatcher, WebhookReceiver], collective: Collective,
        monkeypatch: pytest.MonkeyPatch) -> None:
    catcher, webhook = announced
    monkeypatch.setattr(django_settings.CHATON.governance, "announce_address",
                        "membres@collectif.example.org")
    anouk, barnabe, _celeste = collective.voters
    decision = actions.do_propose("Passwords for Barnabé", grant("barnabe"), acting_user=anouk)
    assert [caught.recipients for caught in catcher.messages] == [
        ["membres@collectif.example.org"]]

    actions.do_vote(decision, "for", acting_user=anouk, credential=own_session(anouk))
    catcher.messages.clear()
    # Two days before the deadline: only those who have not voted are reminded, personally.
    clock.travel(dt.timedelta(days=6))
    assert actions.send_reminders() != []
    assert sorted(caught.recipients[0] for caught in catcher.messages) == [
        "barnabe@example.org", "celeste@example.org"]
    assert subject_of(catcher.messages[0].content).startswith(
        f"[Chaton] Reminder: vote on #{decision.pk}")
    assert "For: 1/3, against: 0/3." in body_of(catcher.messages[0].content)

    catcher.messages.clear()
    actions.do_vote(decision, "for", acting_user=barnabe,
                    credential=own_session(barnabe))  # 2 of 3: adopted at once
    actions.execute_decisions()
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED and decision.executed_at is not None
    # The close and the execution go to the proposer and the announce address.
    subjects = sorted((subject_of(caught.content), caught.recipients[0])
                      for caught in catcher.messages)
    assert subjects == [
        (f"[Chaton] Carried out #{decision.pk}: Passwords for Barnabé",
         "anouk@members.example.org"),
        (f"[Chaton] Carried out #{decision.pk}: Passwords for Barnabé",
         "membres@collectif.example.org"),
        (f"[Chaton] Vote closed on #{decision.pk}: Passwords for Barnabé",
         "anouk@members.example.org"),
        (f"[Chaton] Vote closed on #{decision.pk}: Passwords for Barnabé",
         "membres@collectif.example.org"),
    ]
    executed = next(body_of(caught.content) for caught in catcher.messages
                    if "Carried out" in subject_of(caught.content))
    assert "add barnabe to the group passwords (done)" in executed
    assert "For: 2/3, against: 0/3." in executed
    assert [posted.body["text"].splitlines()[1] for posted in webhook.received] == [
        "Anouk Pelote proposes a decision to the members' vote.",
        "You have not voted yet, and the vote closes soon.",
        "The vote is closed: adopted.",
        "The decision was carried out.",
    ]


def test_an_ordinary_action_goes_to_every_voting_member(
        announced: tuple[SmtpCatcher, WebhookReceiver], collective: Collective) -> None:
    catcher, webhook = announced
    organization = members_actions.do_create_organization(
        "Les Amis du Panais", "bureau@panais.example.org", acting_user=None, slug="panais")
    decision = actions.do_act("An account for the parsnip friends", [
        {"type": "account.create_for_organization",
         "params": {"organization": organization.slug, "uid": "panais",
                    "display_name": "Les Amis du Panais", "email": "bureau@panais.example.org"}}],
        acting_user=collective.admin)
    assert sorted(caught.recipients[0] for caught in catcher.messages) == [
        "anouk@example.org", "barnabe@example.org", "celeste@example.org"]
    body = body_of(catcher.messages[0].content)
    assert "create the account panais for panais" in body
    assert "A counter-vote may be opened until" in body
    assert f"[Chaton] Action #{decision.pk}: An account for the parsnip friends" == \
        subject_of(catcher.messages[0].content)
    [posted] = webhook.received
    assert "Gérance took an ordinary action." in posted.body["text"]

    catcher.messages.clear()
    actions.do_open_counter_vote(decision, acting_user=collective.voters[1])
    assert len(catcher.messages) == 3
    assert "For: 0/3, against: 0/3." in body_of(catcher.messages[0].content)
    assert subject_of(catcher.messages[0].content).startswith(
        f"[Chaton] Counter-vote on #{decision.pk}")


def test_a_failing_webhook_and_a_dead_mail_server_never_block_a_decision(
        announced: tuple[SmtpCatcher, WebhookReceiver], collective: Collective,
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    _catcher, webhook = announced
    webhook.status = 500
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    anouk, barnabe, celeste = collective.voters
    with caplog.at_level(logging.INFO, logger="chaton.governance.notify"):
        decision = actions.do_propose("Passwords for Céleste", grant("celeste"),
                                      acting_user=anouk)
        assert decision.status == Status.OPEN
        actions.do_vote(decision, "for", acting_user=anouk, credential=own_session(anouk))
        actions.do_vote(decision, "against", acting_user=celeste, credential=own_session(celeste))
        actions.do_vote(decision, "for", acting_user=barnabe, credential=own_session(barnabe))
        [operation] = actions.execute_decisions()
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED and decision.executed_at is not None
    assert operation.status == OperationStatus.DONE
    assert GroupMembership.objects.filter(group=collective.passwords,
                                          account=celeste).exists()
    assert len(webhook.received) == 3  # proposed, closed, executed: each tried
    messages = [record.getMessage() for record in caplog.records]
    assert f"governance notice proposed #{decision.pk}: webhook at 127.0.0.1 answered 500" \
        in messages
    assert any(message.startswith(f"governance notice closed #{decision.pk}: mail failed:")
               for message in messages)
    assert f"governance notice executed #{decision.pk}: 0 of 1 mail(s) sent, webhook failed" \
        in messages
    assert not any("s3cr3t" in message for message in messages)


def test_an_unreachable_or_silent_webhook_is_given_up_quickly(
        announced: tuple[SmtpCatcher, WebhookReceiver], collective: Collective,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    catcher, webhook = announced
    monkeypatch.setattr(outbox, "WEBHOOK_TIMEOUT_SECONDS", 0.3)
    webhook.delay = 1.5
    anouk = collective.voters[0]
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="chaton.governance.notify"):
        silent = actions.do_propose("Passwords for Anouk", grant("anouk"), acting_user=anouk)
        assert time.monotonic() - started < 1.2
        monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url",
                            f"http://127.0.0.1:{free_port()}{HOOK_PATH}")
        refused = actions.do_propose("Passwords for Barnabé", grant("barnabe"),
                                     acting_user=anouk)
    assert len(catcher.messages) == 6  # the mails left all the same
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith(f"governance notice proposed #{silent.pk}: webhook at "
                                  "127.0.0.1 failed: timed out") for message in messages), messages
    assert any(message.startswith(f"governance notice proposed #{refused.pk}: webhook at "
                                  "127.0.0.1 failed:") for message in messages)
    assert not any("s3cr3t" in message for message in messages)


# -- the queue: what failed is retried by the worker ----------------------------------------


def later(seconds: float) -> None:
    """Move Chaton's clock ``seconds`` further than it is."""
    clock.travel(clock.now() - dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


def test_a_webhook_that_is_down_gets_the_notice_from_the_worker_once_it_is_back(
        announced: tuple[SmtpCatcher, WebhookReceiver], collective: Collective,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    catcher, _webhook = announced
    port = free_port()  # nothing listens there yet
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url",
                        f"http://127.0.0.1:{port}{HOOK_PATH}")
    anouk = collective.voters[0]
    with caplog.at_level(logging.INFO):
        decision = actions.do_propose("Passwords for Anouk", grant("anouk"), acting_user=anouk)
        assert decision.status == Status.OPEN  # the action succeeded
        assert len(catcher.messages) == 3  # the mails left at once
        [row] = Notification.objects.filter(kind="webhook")
        assert row.state == "pending" and row.attempts == 1
        with webhook_receiver(port) as back:
            assert worker.run_once() is not None
            assert back.received == []  # its retry is a minute away
            later(61)
            results = worker.run_once()
        assert any(line.startswith("notifications.send: 1 sent") for line in results), results
    [posted] = back.received
    assert posted.path == HOOK_PATH and f"#{decision.pk}" in posted.body["text"]
    row.refresh_from_db()
    assert row.state == "sent" and row.attempts == 2
    assert len(catcher.messages) == 3  # the mails were not sent again
    texts = [record.getMessage() for record in caplog.records]
    assert "s3cr3t" not in row.last_error and not any("s3cr3t" in text for text in texts)


def test_a_mail_server_that_is_down_gets_the_notices_from_the_worker_once_it_is_back(
        announced: tuple[SmtpCatcher, WebhookReceiver], collective: Collective,
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    _catcher, webhook = announced
    port = free_port()  # nothing listens there yet
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_PASSWORD = "smtp-pa55word-of-the-collective"
    anouk = collective.voters[0]
    with caplog.at_level(logging.INFO):
        decision = actions.do_propose("Passwords for Anouk", grant("anouk"), acting_user=anouk)
        assert decision.status == Status.OPEN
        assert len(webhook.received) == 1  # the channel heard of it at once
        rows = Notification.objects.filter(kind="mail")
        assert [row.state for row in rows] == ["pending"] * 3
        catcher = SmtpCatcher(port)
        catcher.start()
        try:
            later(61)
            results = worker.run_once()
        finally:
            catcher.stop()
    assert any(line.startswith("notifications.send: 3 sent") for line in results), results
    assert sorted(caught.recipients[0] for caught in catcher.messages) == [
        "anouk@example.org", "barnabe@example.org", "celeste@example.org"]
    assert subject_of(catcher.messages[0].content).startswith(f"[Chaton] Proposal #{decision.pk}")
    assert len(webhook.received) == 1
    texts = [record.getMessage() for record in caplog.records]
    texts += [row.last_error for row in Notification.objects.all()]
    assert not any("pa55word" in text or "s3cr3t" in text for text in texts)
