"""The gate: an extraordinary operation runs only from the decision that adopted it.

The apps below governance reach it through the hook in :mod:`chaton.core.gate`,
which :class:`GovernanceGate` answers (installed by ``GovernanceConfig.ready``).

Every ``do_*`` action that performs a registered operation calls
:func:`require` first, with the ``authorised_by`` it received. The web pages,
the API and the CLI never pass one, so an extraordinary change made through
them is refused with :class:`DecisionRequired`, whose message links to a new
proposal carrying that very operation. Only the executor of adopted (or, to
revert, cancelled) decisions passes the Operation row it is running.

The params are the operation's own typed ``Params`` (their ``of`` constructor
turns an action's arguments into them where the two differ): the gate finds
the operation from their class, so an action never spells a type name or a
dictionary of its own.

An effect that runs after the commit (a deployment) reports its failure with
:func:`effect_failed`: the operation becomes ``failed``, with the reason, and
a notice goes out. It never raises: it runs in ``on_commit`` callbacks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import pydantic
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext as _

from chaton.core.errors import Forbidden
from chaton.governance.models import Kind, Operation, OperationStatus, Status

if TYPE_CHECKING:
    from chaton.directory.models import Account
    from chaton.governance.operations import OperationType

logger = logging.getLogger("chaton.governance")

P = TypeVar("P", bound=pydantic.BaseModel)


class DecisionRequired(Forbidden):
    """An extraordinary operation was asked for directly; ``link`` opens a proposal for it."""

    code = "decision_required"


def proposal_link(type_name: str, params: dict[str, Any]) -> str:
    """Given an operation's type and its params as JSON values, return the path of the
    new-proposal page filled in with that operation.

    Each param is one query parameter; an object or a list goes as its JSON text,
    which the form reads back as the same value (never as Python's ``str``).
    """
    query = {"operation": type_name}
    query.update({key: _query_value(value) for key, value in params.items()})
    return f"{reverse('decision-new')}?{urlencode(query)}"


def _query_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def classify(operation: OperationType[P], params: P) -> Kind:
    """Given an operation and its validated params, return its class under the policy."""
    from chaton.governance.policy import kind_of

    return kind_of(operation.type, operation.default_kind(params))


def is_authorised(type_name: str, authorised_by: Operation | None) -> bool:
    """Return whether ``authorised_by`` is an operation of type ``type_name`` being executed
    by an adopted decision, or one being undone by a cancelled decision (whose revert may
    also perform the types it declares in ``reverts_with``)."""
    from chaton.governance import operations

    if authorised_by is None or authorised_by.pk is None:
        return False
    current = (Operation.objects.filter(pk=authorised_by.pk)
               .values_list("type", "decision__status", "status").first())
    if current is None:
        return False
    own_type, decision_status, status = current
    if decision_status == Status.ADOPTED and status == OperationStatus.PENDING:
        return own_type == type_name
    if decision_status == Status.CANCELLED and status == OperationStatus.DONE:
        return type_name == own_type or type_name in operations.get(own_type).reverts_with
    return False


def require(params: pydantic.BaseModel, authorised_by: Operation | None) -> None:
    """Given an operation's typed params, raise DecisionRequired unless the operation is
    ordinary, or authorised by a decision (``authorised_by``). The link of the error opens
    a proposal carrying that very operation."""
    from chaton.governance import operations

    operation = operations.of_params(params)
    if classify(operation, params) == Kind.ORDINARY or is_authorised(operation.type,
                                                                     authorised_by):
        return
    raise refusal(operation, params)


def refusal(operation: OperationType[P], params: P) -> DecisionRequired:
    """Return the error that sends an extraordinary operation to a proposal."""
    link = proposal_link(operation.type, params.model_dump(mode="json", exclude_none=True))
    return DecisionRequired(
        _("“%(operation)s” is an extraordinary action: it needs a decision of the members. "
          "Open a proposal instead: %(link)s")
        % {"operation": operation.describe(params), "link": link}, link=link)


def effect_failed(authorised_by: Operation | None, reason: str) -> None:
    """Record that the effect of an operation, run after its commit, failed: the operation
    is ``failed`` with ``reason``, the later ones of its decision are not run, an audit row
    and a "failed" notice follow. Without an operation (a direct action), only log.

    Never raises: it is called from ``on_commit`` callbacks.
    """
    if authorised_by is None or authorised_by.pk is None:
        return
    try:
        from chaton.governance.actions import mark_failed

        mark_failed(authorised_by.pk, reason)
    except Exception:  # the failure is logged; the operation stays as it was
        logger.exception("governance: could not record the failure of operation %s",
                         authorised_by.pk)



def _operation(authorised_by: models.Model | None) -> Operation | None:
    """Return ``authorised_by`` if it is an Operation row; anything else authorises nothing."""
    return authorised_by if isinstance(authorised_by, Operation) else None


class GovernanceGate:
    """The gate that governance installs in core (:mod:`chaton.core.gate`), from
    ``GovernanceConfig.ready``: the answers the apps below governance ask for."""

    def require(self, params: pydantic.BaseModel, authorised_by: models.Model | None) -> None:
        require(params, _operation(authorised_by))

    def is_authorised(self, params_class: type[pydantic.BaseModel],
                      authorised_by: models.Model | None) -> bool:
        from chaton.governance import operations

        return is_authorised(operations.of_params_class(params_class).type,
                             _operation(authorised_by))

    def effect_failed(self, operation_id: int, reason: str) -> None:
        try:
            operation = Operation.objects.filter(pk=operation_id).first()
        except Exception:  # the failure is logged; the operation stays as it was
            logger.exception("governance: cannot find operation %s", operation_id)
            return
        effect_failed(operation, reason)

    def proposal_link(self, params: pydantic.BaseModel) -> str:
        from chaton.governance import operations

        return proposal_link(operations.of_params(params).type,
                             params.model_dump(mode="json"))

    def act(self, title: str, operations: Sequence[pydantic.BaseModel], *,
            acting_user: Account) -> models.Model:
        from chaton.governance import operations as registry
        from chaton.governance.actions import do_act

        return do_act(title, [{"type": registry.of_params(params).type,
                               "params": params.model_dump(mode="json")}
                              for params in operations], acting_user=acting_user)

    def voting_delay_days(self) -> int:
        from chaton.governance.policy import current

        return current().voting_delay_days

    def persons_voting_now(self, person_ids: Iterable[int | None]) -> list[int]:
        from chaton.governance.queries import persons_voting_now

        return persons_voting_now(person_ids)
