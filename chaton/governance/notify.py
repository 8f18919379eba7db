"""Telling people about decisions: mail and a Mattermost-compatible webhook.

Actions call :func:`schedule` inside their transaction; delivery happens after
the commit, and a failure is logged, never raised: a notification never
blocks a decision.

Events and who hears of them (the webhook, when ``governance.webhook_url`` is
set, gets every event, for the team channel)::

    event        what happened                       mail to
    proposed     a proposal opened for a vote        governance.announce_address, else
    acted        an ordinary action was taken          each elector of the open ballot
    contested    a counter-vote opened                 (acted: each voting member today,
                                                        who may open a counter-vote)
    reminder     a deadline is near                  each elector who has not voted yet
    closed       a ballot closed                     the proposer, and announce_address
    executed     the operations ran (or were undone)   when set
    failed       an operation failed

A reminder goes to the electors themselves even when there is an announce
address: a list would also nag those who voted already.

Each message carries the decision's title, its operations, the tally against
the electorate, the deadline and the link to the decision page, in the
collective's language. The messages go through the notifications queue
(:mod:`chaton.notifications.outbox`): tried once right after the commit, then
retried by the worker. The first attempt leaves one log line: the event, the
decision id, and how many mails left; for the webhook only the host is named,
since the path of an incoming webhook is its secret.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from chaton.adapters.notifications import (
    NotificationMisconfigured,
    NotificationUnavailable,
    WebhookRefused,
)
from chaton.core import clock
from chaton.notifications import outbox
from chaton.notifications.models import Kind

if TYPE_CHECKING:
    import datetime as dt

    from chaton.governance.models import Ballot, Decision, Operation
    from chaton.governance.tally import Tally

logger = logging.getLogger("chaton.governance.notify")

#: The events :func:`deliver` knows.
EVENTS = ("proposed", "acted", "contested", "reminder", "closed", "executed", "failed")
#: Characters that Markdown (as Mattermost reads it) would take as formatting within a line;
#: with the brackets escaped, no parenthesis can make a link.
_MARKDOWN_SPECIAL = "\\`*_[]<>~"


def schedule(event: str, decision: Decision) -> None:
    """After the current transaction commits, announce ``event`` about ``decision``."""
    schedule_by_id(event, decision.pk)


def schedule_by_id(event: str, decision_id: int) -> None:
    """Like :func:`schedule`, given the decision's id."""
    transaction.on_commit(lambda: deliver(event, decision_id))


@dataclass(frozen=True)
class Notice:
    """What is said about one event: a mail (subject, text) and a webhook message."""

    event: str
    decision_id: int
    subject: str
    text: str
    markdown: str
    link: str


def deliver(event: str, decision_id: int) -> None:
    """Given an event and a decision id, queue the mails and the webhook message and try
    them at once (:mod:`chaton.notifications.outbox`; the worker retries what failed).

    Never raise: every failure (unknown decision, mail server down, webhook
    refusing or silent) is logged with the event and the decision id.
    """
    try:
        notice, recipients = _prepare(event, decision_id)
    except Exception:  # a notice never blocks a decision
        logger.exception("governance notice %s #%d: cannot be written", event, decision_id)
        return
    if notice is None:
        logger.warning("governance notice %s #%d: no such decision", event, decision_id)
        return
    source = f"governance notice {event} #{decision_id}"
    webhook = bool(settings.CHATON.governance.webhook_url)
    try:
        with transaction.atomic():
            # One message per address, so that nobody sees the others' addresses.
            rows = [outbox.enqueue_mail([address], notice.subject, notice.text, source=source)
                    for address in recipients]
            if webhook:
                rows.append(outbox.enqueue_webhook("governance", notice.markdown,
                                                   source=source))
            outbox.send_on_commit(rows, then=lambda outcomes: _report(
                notice, outcomes, len(recipients), webhook))
    except Exception:  # a notice never blocks a decision
        logger.exception("governance notice %s #%d: cannot be queued", event, decision_id)


def _prepare(event: str, decision_id: int) -> tuple[Notice | None, list[str]]:
    """Given an event and a decision id, return its notice and mail recipients.

    The notice is None when the decision no longer exists. Raise ValueError
    for an unknown event.
    """
    from chaton.governance.models import Decision

    if event not in EVENTS:
        raise ValueError(f"unknown governance event {event!r}")
    decision = (Decision.objects.select_related("proposed_by")
                .filter(pk=decision_id).first())
    if decision is None:
        return None, []
    ballot = last_ballot(decision)
    with translation.override(settings.LANGUAGE_CODE):
        notice = compose(event, decision, ballot)
    return notice, recipients(event, decision, ballot)


# -- who ------------------------------------------------------------------------------------


def recipients(event: str, decision: Decision, ballot: Ballot | None) -> list[str]:
    """Given an event, its decision and the ballot it speaks of (:func:`last_ballot`),
    return the addresses to mail, each once, sorted.

    See the table of the module docstring.
    """
    from chaton.governance.models import Elector, Vote
    from chaton.members.queries import voting_members

    announce = settings.CHATON.governance.announce_address.strip()
    if ballot is not None and ballot.closed_at is not None:
        ballot = None  # only an open ballot's electors are called to vote
    addresses: set[str] = set()
    if event == "reminder":
        if ballot is not None:
            voted = Vote.objects.filter(ballot=ballot).values("person_id")
            addresses.update(Elector.objects.filter(ballot=ballot)
                             .exclude(person_id__in=voted)
                             .values_list("person__email", flat=True))
    elif event in ("closed", "executed", "failed"):
        if decision.proposed_by is not None and decision.proposed_by.email:
            addresses.add(decision.proposed_by.email)
        if announce:
            addresses.add(announce)
    elif announce:
        addresses.add(announce)
    elif ballot is not None:
        addresses.update(Elector.objects.filter(ballot=ballot)
                         .values_list("person__email", flat=True))
    else:
        addresses.update(voting_members(clock.today()).values_list("email", flat=True))
    return sorted(address for address in addresses if address)


# -- what -----------------------------------------------------------------------------------


def _when(moment: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _markdown(text: str) -> str:
    """Return ``text`` as literal Markdown: formatting characters escaped, and no
    ``@channel`` mention (a zero-width space after ``@``) that would ping the team."""
    escaped = "".join(f"\\{character}" if character in _MARKDOWN_SPECIAL else character
                      for character in text)
    return escaped.replace("@", "@\u200b")


def _tally_line(tally: Tally) -> str:
    return _("For: %(for)d/%(electorate)d, against: %(against)d/%(electorate)d.") % {
        "for": tally.votes_for, "against": tally.votes_against, "electorate": tally.electorate}


def last_ballot(decision: Decision) -> Ballot | None:
    """Return the ballot a notice speaks of: the open one, else the last one opened."""
    ballots = list(decision.ballots.order_by("opened_at", "pk"))
    for ballot in ballots:
        if ballot.closed_at is None:
            return ballot
    return ballots[-1] if ballots else None


def _headline(event: str, decision: Decision, ballot: Ballot | None,
              operations: list[Operation]) -> str:
    """Return the sentence that says what happened (in the active language)."""
    from chaton.governance.models import BallotKind, OperationStatus, Status

    if event == "proposed":
        return _("%(name)s proposes a decision to the members' vote.") % {
            "name": decision.proposed_by_label}
    if event == "acted":
        return _("%(name)s took an ordinary action. Any voting member may open a counter-vote "
                 "on it.") % {"name": decision.proposed_by_label}
    if event == "contested":
        return _("A counter-vote is open on an ordinary action: if at least half of the votes "
                 "cast are against it, it is cancelled.")
    if event == "reminder":
        return _("You have not voted yet, and the vote closes soon.")
    if event == "closed":
        if ballot is None:
            return _("The vote is closed: %(status)s.") % {
                "status": decision.get_status_display()}
        if ballot.kind == BallotKind.COUNTER:
            return _("The counter-vote is closed: %(outcome)s.") % {
                "outcome": ballot.get_outcome_display()}
        return _("The vote is closed: %(outcome)s.") % {"outcome": ballot.get_outcome_display()}
    if event == "executed":
        if decision.status == Status.CANCELLED:
            return _("The cancelled action was undone where it could be.")
        if any(operation.status == OperationStatus.FAILED for operation in operations):
            return _("The decision was carried out only in part: an operation failed.")
        return _("The decision was carried out.")
    return _("An operation of the decision failed; the ones after it were not run.")


def compose(event: str, decision: Decision, ballot: Ballot | None) -> Notice:
    """Given an event, its decision and the ballot it speaks of (:func:`last_ballot`), return
    the notice, in the active language."""
    from chaton.governance.models import Kind, OperationStatus
    from chaton.governance.tally import tally_of

    collective = settings.CHATON.collective_name
    link = settings.CHATON.resolved_public_url + reverse("decision-detail",
                                                         args=[decision.pk])
    tally = tally_of(ballot) if ballot is not None else None
    operations = list(decision.operations.order_by("position"))
    headline = _headline(event, decision, ballot, operations)
    number = f"#{decision.pk}"

    subjects = {
        "proposed": _("[%(collective)s] Proposal %(number)s: %(title)s"),
        "acted": _("[%(collective)s] Action %(number)s: %(title)s"),
        "contested": _("[%(collective)s] Counter-vote on %(number)s: %(title)s"),
        "reminder": _("[%(collective)s] Reminder: vote on %(number)s: %(title)s"),
        "closed": _("[%(collective)s] Vote closed on %(number)s: %(title)s"),
        "executed": _("[%(collective)s] Carried out %(number)s: %(title)s"),
        "failed": _("[%(collective)s] Failed %(number)s: %(title)s"),
    }
    subject = subjects[event] % {"collective": collective, "number": number,
                                 "title": decision.title}
    # A subject is one line: a title never holds a newline, but a header must not either.
    subject = " ".join(subject.split())

    day = formats.date_format(clock.local_day(decision.created_at), "DATE_FORMAT")
    if decision.kind == Kind.EXTRAORDINARY:
        origin = _("Extraordinary action, proposed by %(name)s on %(day)s.") % {
            "name": decision.proposed_by_label, "day": day}
    else:
        origin = _("Ordinary action, taken by %(name)s on %(day)s.") % {
            "name": decision.proposed_by_label, "day": day}
    details: list[str] = []
    if tally is not None:
        details.append(_tally_line(tally))
    if ballot is not None and ballot.closed_at is None:
        details.append(_("Deadline: %(when)s.") % {"when": _when(ballot.closes_at)})
    elif event == "acted" and decision.counter_vote_until is not None:
        details.append(_("A counter-vote may be opened until %(when)s.")
                       % {"when": _when(decision.counter_vote_until)})
    operation_lines = []
    for operation in operations:
        line = operation.summary
        if event in ("executed", "failed") or operation.status == OperationStatus.FAILED:
            line = _("%(summary)s (%(status)s)") % {"summary": line,
                                                     "status": operation.get_status_display()}
        if operation.status == OperationStatus.FAILED and operation.message:
            line += " — " + operation.message
        operation_lines.append(line)

    text_lines = [
        _("Hello,"), "", headline, "",
        f"{number} {decision.title}",
        origin,
        "", _("Operations:"), *[f"- {line}" for line in operation_lines],
    ]
    if details:
        text_lines += ["", *details]
    text_lines += ["", _("See the decision: %(link)s") % {"link": link}, "", "-- ", collective]
    text = "\n".join(text_lines) + "\n"

    markdown_lines = [
        f"**[{number} {_markdown(decision.title)}]({link})**",
        _markdown(headline),
        *[f"- {_markdown(line)}" for line in operation_lines],
        *[_markdown(line) for line in details],
    ]
    return Notice(event=event, decision_id=decision.pk, subject=subject, text=text,
                  markdown="\n".join(markdown_lines), link=link)


# -- how ------------------------------------------------------------------------------------


def _report(notice: Notice, outcomes: list[outbox.Attempt], mails: int, webhook: bool) -> None:
    """Log the first attempt of a notice's mails and webhook message: each failure, then one
    line with how many mails left. Only the webhook's host is named, never its secret path."""
    mailed = 0
    posted: bool | None = None
    for outcome in outcomes:
        error = outcome.error
        notification = outcome.notification
        if notification.kind == Kind.WEBHOOK:
            posted = error is None
            host = _webhook_host(settings.CHATON.governance.webhook_url)
            if isinstance(error, WebhookRefused):
                logger.error("governance notice %s #%d: webhook at %s answered %d", notice.event,
                             notice.decision_id, host, error.status)
            elif isinstance(error, NotificationMisconfigured):
                logger.error("governance notice %s #%d: the webhook URL is not http(s); "
                             "nothing posted", notice.event, notice.decision_id)
            elif error is not None:
                logger.error("governance notice %s #%d: webhook at %s failed: %s", notice.event,
                             notice.decision_id, host, error)
        elif error is None:
            mailed += 1
        elif isinstance(error, NotificationUnavailable):
            if not outcome.skipped:  # the server is down: once, not once per address
                logger.error("governance notice %s #%d: mail failed: %s", notice.event,
                             notice.decision_id, error)
        else:
            logger.warning("governance notice %s #%d: mail to %s failed: %s", notice.event,
                           notice.decision_id, ", ".join(notification.recipients), error)
    if webhook and posted is None:
        posted = False  # its row was taken by another process: not known to have gone
    logger.info("governance notice %s #%d: %d of %d mail(s) sent%s", notice.event,
                notice.decision_id, mailed, mails,
                "" if not webhook else ", webhook " + ("ok" if posted else "failed"))


def _webhook_host(url: str) -> str:
    """Return what a log line may say of a webhook URL: its host, never its secret path."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "?"
