"""The gate's hook: how the apps below governance ask it whether a privileged change may run.

Governance sits above the directory, the members and the services, yet their
``do_*`` actions must ask it before a privileged change. So the question is
asked here, in core, and governance answers it:

- each of those apps defines the typed params of its gated changes in its
  ``gated.py`` (on :class:`StrictParams`), the very ``Params`` of the matching
  governance operation;
- a gated action calls :func:`require` with them and the ``authorised_by`` it
  received (the governance ``Operation`` row being executed, seen from below as
  an :data:`Authorisation`);
- governance installs the object that decides (:func:`install`, from
  ``GovernanceConfig.ready``): ``chaton.governance.gate.GovernanceGate``.

No app below governance imports it, and none spells an operation's type name.
Without an installed gate every call raises :class:`GateMissing`: a privileged
change never runs unchecked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

import pydantic
from django.db import models

if TYPE_CHECKING:
    from chaton.directory.models import Account

logger = logging.getLogger("chaton.core.gate")

#: What authorises a gated change: the governance ``Operation`` row being executed.
Authorisation: TypeAlias = models.Model


class StrictParams(pydantic.BaseModel):
    """Base of every Params model: unknown keys refused, strings stripped, no coercion."""

    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class GateMissing(RuntimeError):
    """No gate is installed: the governance app is not loaded."""


class Gate(Protocol):
    """What the apps below governance ask of it; governance installs the implementation."""

    def require(self, params: pydantic.BaseModel, authorised_by: Authorisation | None) -> None:
        """Raise DecisionRequired unless the operation of ``params`` is ordinary or
        ``authorised_by`` is a decision's operation of that type being executed."""

    def is_authorised(self, params_class: type[pydantic.BaseModel],
                      authorised_by: Authorisation | None) -> bool:
        """Return whether ``authorised_by`` is a decision's operation of the type whose
        params are ``params_class``, being executed (or reverted)."""

    def effect_failed(self, operation_id: int, reason: str) -> None:
        """Mark the operation ``operation_id`` failed with ``reason``. Never raise."""

    def proposal_link(self, params: pydantic.BaseModel) -> str:
        """Return the path of the new-proposal page filled in with this operation."""

    def act(self, title: str, operations: Sequence[pydantic.BaseModel], *,
            acting_user: Account) -> models.Model:
        """Take an ordinary action of ``operations`` (run at once, announced, open to a
        counter-vote) and return its decision. Raise as ``do_act``."""

    def voting_delay_days(self) -> int:
        """Return the days of membership before a person votes, under the current policy."""

    def persons_voting_now(self, person_ids: Iterable[int | None]) -> list[int]:
        """Return those of ``person_ids`` who have a vote on a ballot still open."""


_installed: list[Gate] = []


def install(gate: Gate) -> None:
    """Make ``gate`` the one that answers (governance calls it once, from ``ready``)."""
    _installed[:] = [gate]


def installed() -> Gate:
    """Return the installed gate. Raise GateMissing when there is none."""
    if not _installed:
        raise GateMissing("no gate is installed: add chaton.governance to INSTALLED_APPS")
    return _installed[0]


def require(params: pydantic.BaseModel, authorised_by: Authorisation | None) -> None:
    """Given a gated change's typed params, raise DecisionRequired (403
    ``decision_required``, with a link to a proposal) unless it may run now."""
    installed().require(params, authorised_by)


def is_authorised(params_class: type[pydantic.BaseModel],
                  authorised_by: Authorisation | None) -> bool:
    """Return whether ``authorised_by`` is a decision's operation with params of
    ``params_class``, being executed."""
    return installed().is_authorised(params_class, authorised_by)


def effect_failed(operation_id: int | None, reason: str) -> None:
    """Record that the effect of the operation ``operation_id``, run after its commit,
    failed; without an operation (a direct action), do nothing. Never raise."""
    if operation_id is None:
        return
    try:
        installed().effect_failed(operation_id, reason)
    except Exception:  # the failure is logged; the operation stays as it was
        logger.exception("gate: could not record the failure of operation %s", operation_id)


def proposal_link(params: pydantic.BaseModel) -> str:
    """Return the path of the new-proposal page filled in with the operation of ``params``."""
    return installed().proposal_link(params)


def act(title: str, operations: Sequence[pydantic.BaseModel], *,
        acting_user: Account) -> models.Model:
    """Take an ordinary action of ``operations`` and return its decision."""
    return installed().act(title, operations, acting_user=acting_user)


def voting_delay_days() -> int:
    """Return the days of membership before a person votes, under the current policy."""
    return installed().voting_delay_days()


def persons_voting_now(person_ids: Iterable[int | None]) -> list[int]:
    """Return those of ``person_ids`` who have a vote on a ballot still open."""
    return installed().persons_voting_now(person_ids)
