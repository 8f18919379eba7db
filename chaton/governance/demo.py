"""The demo collective's decisions: a short history of its governance (``chaton demo``).

Loaded by :func:`load` (``chaton demo``) once the demo persons,
accounts and groups exist. It adds the group "passwords" (the technical
passwords: members added by decision only) and four decisions::

    #1  60 days ago  extraordinary, adopted by a majority and executed: Basile gets
                     the technical passwords
    #2  40 days ago  extraordinary, rejected at its deadline: unprotect "passwords"
    #3   3 days ago  ordinary action: an account for a partner association, its
                     counter-vote window still open
    #4   2 days ago  extraordinary, open, with some votes: let Kléber vote at once

Everything goes through the governance actions, so the votes, the closes, the
executions, the audit rows and the notices are those of real use. To give the
history its dates, the clock is moved back to each of them
(:func:`chaton.core.clock.travel`) and put back after. Each decision is
created only when no decision carries its operation yet: loading the demo
twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.demo import DemoReport
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, Group, GroupKind
from chaton.governance import actions
from chaton.governance.credentials import Credential
from chaton.governance.models import Decision, Operation, Status

#: The protected group of the demo.
PASSWORDS_GROUP = "passwords"


@dataclass(frozen=True)
class DemoDecision:
    """One decision of the demo's history."""

    #: Days before today when it was proposed (or, for an ordinary action, taken).
    days_ago: int
    title: Callable[[], str]
    #: Its one operation, as ``do_propose`` and ``do_act`` take it.
    operation: dict[str, Any]
    #: The uid of the proposer; empty: the first administrator (ordinary actions).
    proposer: str
    #: (uid, "for"/"against"), cast in this order the day it opened, until a majority closes it.
    votes: tuple[tuple[str, str], ...] = ()
    ordinary: bool = False
    #: Days after opening when the ballot is settled at its deadline; None: left as it is.
    settle_after_days: int | None = None


def _decisions(today: dt.date) -> tuple[DemoDecision, ...]:
    return (
        DemoDecision(
            60, lambda: _("Give access to the technical passwords to a new tech member"),
            {"type": "group.grant", "params": {
                "group": PASSWORDS_GROUP, "account": "basile",
                "expires_on": str(today + dt.timedelta(days=300))}},
            proposer="alix",
            votes=(("alix", "for"), ("capucine", "for"), ("hortense", "against"),
                   ("eulalie", "for"), ("gaspard", "for"), ("ignace", "for"),
                   ("basile", "for"))),
        DemoDecision(
            40, lambda: _("Let administrators manage the passwords group without a vote"),
            {"type": "group.unprotect", "params": {"group": PASSWORDS_GROUP}},
            proposer="basile",
            votes=(("basile", "for"), ("alix", "against"), ("capucine", "against"),
                   ("eulalie", "for"), ("hortense", "against")),
            settle_after_days=8),
        DemoDecision(
            3, lambda: _("Open an account for the Amicale du Rutabaga Volant"),
            {"type": "account.create_for_organization", "params": {
                "organization": "rutabaga-volant", "uid": "rutabaga",
                "display_name": "Amicale du Rutabaga Volant",
                "email": "contact@rutabaga-volant.example.org"}},
            proposer="", ordinary=True),
        DemoDecision(
            2, lambda: _("Let Kléber Rutabaga vote without waiting for the voting delay"),
            {"type": "membership.waive_voting_delay", "params": {
                "person": "kleber.rutabaga@example.org"}},
            proposer="capucine",
            votes=(("capucine", "for"), ("ignace", "for"), ("gaspard", "against"))),
    )


@contextmanager
def _days_ago(days: float) -> Iterator[None]:
    """Within the block, Chaton's clock reads ``days`` before now; put back after."""
    # The offset in force (none outside tests), to whole seconds: two clock reads differ
    # by microseconds, and the offset must come back exactly as it was.
    offset = dt.timedelta(seconds=round((clock.now() - timezone.now()).total_seconds()))
    clock.travel(offset - dt.timedelta(days=days))
    try:
        yield
    finally:
        clock.travel(offset)


def _exists(operation: dict[str, Any]) -> bool:
    """Return whether a decision already carries ``operation`` (same type and params)."""
    lookups = {f"params__{key}": value for key, value in operation["params"].items()
               if key != "expires_on"}  # a date relative to the day the demo was loaded
    return Operation.objects.filter(type=operation["type"], **lookups).exists()


def _account(uid: str) -> Account | None:
    if uid:
        return Account.objects.filter(uid=uid).first()
    return Account.objects.filter(is_admin=True).order_by("pk").first()


def _load_group(created: list[str]) -> None:
    if Group.objects.filter(name=PASSWORDS_GROUP).exists():
        return
    directory_actions.do_create_group(
        PASSWORDS_GROUP, acting_user=None, kind=GroupKind.TEAM, requires_decision=True,
        description=_("Technical passwords: members added by a decision of the members"))
    created.append(_("group %(name)s") % {"name": PASSWORDS_GROUP})


def _vote(decision: Decision, votes: tuple[tuple[str, str], ...]) -> None:
    """Cast ``votes`` in order until the ballot closes (a majority closes it early)."""
    for uid, choice in votes:
        voter = Account.objects.filter(uid=uid).first()
        decision.refresh_from_db(fields=["status"])
        if voter is None or decision.status not in (Status.OPEN, Status.CONTESTED):
            continue
        try:
            actions.do_vote(decision, choice, acting_user=voter,
                            credential=Credential.demo(voter))
        except actions.NotAVoter:
            continue  # someone changed the demo's memberships: that vote is left out


def _load_decision(item: DemoDecision) -> Decision | None:
    """Write one decision of the history at its date; return it (None when its proposer is
    missing). Raise ChatonError when an action refuses it."""
    proposer = _account(item.proposer)
    if proposer is None:
        return None
    with _days_ago(item.days_ago):
        if item.ordinary:
            return actions.do_act(item.title(), [item.operation], acting_user=proposer)
        decision = actions.do_propose(item.title(), [item.operation], acting_user=proposer)
        _vote(decision, item.votes)
        actions.execute_decisions()
    if item.settle_after_days is not None:
        with _days_ago(item.days_ago - item.settle_after_days):
            actions.settle_ballots()
            actions.execute_decisions()
    decision.refresh_from_db()
    return decision


def create_demo_decisions() -> list[str]:
    """Create whatever part of the demo's governance is missing; return what was created,
    one line each (empty when it was all there).

    Needs the demo persons, accounts and organizations (:mod:`chaton.members.demo`,
    :mod:`chaton.directory.demo`);
    a decision whose proposer's account is missing is left out. Raise
    ChatonError when an action refuses a demo value (someone changed the demo
    collective in a way it cannot follow).
    """
    created: list[str] = []
    _load_group(created)
    for item in _decisions(clock.today()):
        if _exists(item.operation):
            continue
        decision = _load_decision(item)
        if decision is not None:
            created.append(_("decision #%(number)d: %(title)s (%(status)s)") % {
                "number": decision.pk, "title": decision.title,
                "status": decision.get_status_display()})
    return created


def load(report: DemoReport) -> None:
    """The governance part of ``chaton demo``: add what :func:`create_demo_decisions`
    creates to ``report``."""
    report.created.extend(create_demo_decisions())
