"""The registry of operations: typed, serialisable changes that decisions authorise.

One module of this package per operation; each defines a subclass of
:class:`OperationType` and decorates it with :func:`register`::

    @register
    class GrantGroup(OperationType[GrantGroupParams]):
        type = "group.grant"
        label = gettext_lazy("Add an account to a group")
        Params = GrantGroupParams          # a pydantic model: the serialised form

        def default_kind(self, params): ...   # ordinary or extraordinary
        def describe(self, params): ...       # one sentence for people
        def check(self, params): ...          # the action's own validate_*: one rule, one place
        def apply(self, params, *, acting_user, authorised_by): ...  # returns what revert needs
        def revert(self, params, result, *, acting_user, authorised_by): ...

``check`` calls the validation the ``do_*`` action itself runs (a
``validate_*`` function beside the action), never a copy of its rules. The
``Params`` of an operation that gates an action of a lower app (directory,
members, services) live in that app's ``gated.py``: the action builds them
(with their ``of`` constructor where its arguments differ from them) and hands
them to :func:`chaton.core.gate.require`, the hook that
:class:`chaton.governance.gate.GovernanceGate` answers; it finds the operation
from the class of the params.

``apply`` and ``revert`` run inside the executor's transaction and call the
ordinary ``do_*`` actions, passing ``authorised_by`` (the Operation row) so
that gated actions let them through. Both must be idempotent: running one
twice leaves the same state as running it once. An effect that happens after
the commit (a deployment) reports back through
:func:`chaton.core.gate.effect_failed`: the operation is then ``failed``
with the reason, and an administrator may retry it.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pydantic
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from chaton.core.errors import ChatonError, InvalidInput, NotFound
from chaton.core.gate import StrictParams as StrictParams
from chaton.governance.models import Kind

if TYPE_CHECKING:
    from chaton.directory.models import Account
    from chaton.governance.models import Operation


class NotRevertible(Exception):
    """The operation cannot be undone; the message says why (for people)."""


P = TypeVar("P", bound=pydantic.BaseModel)


class OperationType(Generic[P]):
    """The contract of one operation type, generic over its ``Params``; see the module
    docstring."""

    type: ClassVar[str]
    label: ClassVar[str | Promise]
    Params: builtins.type[P]
    #: Whether :meth:`revert` can undo it (a counter-vote that cancels it reverts it).
    revertible: ClassVar[bool] = True
    #: The other gated operations :meth:`revert` performs (adding back what was removed …).
    reverts_with: ClassVar[tuple[str, ...]] = ()

    def default_kind(self, params: P) -> Kind:
        """Given validated params, return the class this operation has unless the policy says."""
        return Kind.EXTRAORDINARY

    def describe(self, params: P) -> str:
        raise NotImplementedError

    def check(self, params: P) -> None:
        """Given validated params, raise InvalidInput or NotFound if it cannot run now: the
        ``validate_*`` of the action that ``apply`` calls."""

    def apply(self, params: P, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        raise NotImplementedError

    def revert(self, params: P, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        raise NotRevertible(_("This operation cannot be undone automatically."))


_registry: dict[str, OperationType[Any]] = {}
_by_params: dict[builtins.type[pydantic.BaseModel], OperationType[Any]] = {}

T = TypeVar("T", bound=OperationType[Any])


def register(cls: builtins.type[T]) -> builtins.type[T]:
    """Class decorator: add an operation type to the registry (one instance, by its ``type``).

    Each operation has a Params class of its own: the gate finds the operation from it.
    """
    if cls.type in _registry:
        raise RuntimeError(f"operation type {cls.type!r} is registered twice")
    if cls.Params in _by_params:
        raise RuntimeError(f"params {cls.Params.__name__} serve two operations")
    instance = cls()
    _registry[cls.type] = instance
    _by_params[cls.Params] = instance
    return cls


_loaded: list[bool] = []


def _load() -> None:
    """Import every operation module once (an action may have imported one of them alone)."""
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _loaded.append(True)


def all_types() -> list[OperationType[Any]]:
    """Return every registered operation type, by type name."""
    _load()
    return [_registry[name] for name in sorted(_registry)]


def get(type_name: str) -> OperationType[Any]:
    """Given a type name such as ``group.grant``, return its operation. Raise InvalidInput."""
    _load()
    try:
        return _registry[type_name]
    except KeyError:
        raise InvalidInput(_("Unknown operation “%(type)s”.") % {"type": type_name},
                           field="type") from None


def of_params(params: P) -> OperationType[P]:
    """Given an operation's typed params, return the operation they belong to."""
    _load()
    operation = _by_params.get(type(params))
    if operation is None:
        raise TypeError(f"{type(params).__name__} are the params of no operation")
    return operation


def of_params_class(params_class: builtins.type[pydantic.BaseModel]) -> OperationType[Any]:
    """Given the class of an operation's params, return the operation. Raise TypeError."""
    _load()
    operation = _by_params.get(params_class)
    if operation is None:
        raise TypeError(f"{params_class.__name__} are the params of no operation")
    return operation


def parse(type_name: str,
          params: dict[str, Any]) -> tuple[OperationType[Any], pydantic.BaseModel]:
    """Given a type name and raw params, return the operation and its validated params.

    Raise InvalidInput naming the first bad field, or NotFound for an unknown
    group, account, membership … (the operation's :meth:`~OperationType.check`).
    """
    operation = get(type_name)
    if not isinstance(params, dict):
        raise InvalidInput(_("The parameters of an operation must be an object."),
                           field="params")
    try:
        parsed = operation.Params.model_validate(params)
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        location = ".".join(str(part) for part in problem.get("loc", ())) or None
        raise InvalidInput(_("%(operation)s: invalid value for “%(field)s”: %(problem)s") % {
            "operation": operation.label, "field": location or "?",
            "problem": problem.get("msg", "")}, field=location) from None
    operation.check(parsed)
    return operation, parsed


def params_schema(operation: OperationType[Any]) -> dict[str, Any]:
    """Return the JSON schema of an operation's params (for the API and the forms)."""
    return operation.Params.model_json_schema()


@contextlib.contextmanager
def fields_as_params(names: Mapping[str, str]) -> Iterator[None]:
    """Within it, an error of an action that names one of its arguments (``expires_at``)
    names the operation's param instead (``expires_on``): what a form shows it next to."""
    try:
        yield
    except ChatonError as error:
        if error.field is not None and error.field in names:
            error.field = names[error.field]
        raise


def not_found(message: str | Promise, field: str) -> NotFound:
    return NotFound(message, field=field)
