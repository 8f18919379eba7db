"""The gate: an extraordinary operation runs only from the decision that adopted it.

Every ``do_*`` action that performs a registered operation calls
:func:`require` first, with the ``authorised_by`` it received. The web pages,
the API and the CLI never pass one, so an extraordinary change made through
them is refused with :class:`DecisionRequired`, whose message links to a new
proposal carrying that very operation. Only the executor of adopted (or, to
revert, cancelled) decisions passes the Operation row it is running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext as _

from chaton.core.errors import Forbidden
from chaton.governance.models import Kind, Operation, OperationStatus, Status

if TYPE_CHECKING:
    from chaton.governance.operations import OperationType


class DecisionRequired(Forbidden):
    """An extraordinary operation was asked for directly; ``link`` opens a proposal for it."""

    code = "decision_required"


def proposal_link(type_name: str, params: dict[str, Any]) -> str:
    """Return the path of the new-proposal page, filled in with one operation."""
    query = {"operation": type_name}
    query.update({key: "" if value is None else str(value) for key, value in params.items()})
    return f"{reverse('decision-new')}?{urlencode(query)}"


def classify(operation: OperationType, params: Any) -> Kind:
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


def require(type_name: str, params: dict[str, Any], authorised_by: Operation | None) -> None:
    """Raise DecisionRequired unless the operation is ordinary, or authorised by a decision.

    ``params`` are the operation's serialised params; they also fill the link.
    """
    from chaton.governance import operations

    operation = operations.get(type_name)
    parsed = operation.Params.model_validate(params)
    if classify(operation, parsed) == Kind.ORDINARY or is_authorised(type_name, authorised_by):
        return
    link = proposal_link(type_name, params)
    raise DecisionRequired(
        _("“%(operation)s” is an extraordinary action: it needs a decision of the members. "
          "Open a proposal instead: %(link)s")
        % {"operation": operation.describe(parsed), "link": link}, link=link)
