"""The registry of operations: typed, serialisable changes that decisions authorise.

One module of this package per operation; each defines a subclass of
:class:`OperationType` and decorates it with :func:`register`::

    @register
    class GrantGroup(OperationType):
        type = "group.grant"
        label = gettext_lazy("Add an account to a group")
        Params = GrantGroupParams          # a pydantic model: the serialised form

        def default_kind(self, params): ...   # ordinary or extraordinary
        def describe(self, params): ...       # one sentence for people
        def check(self, params): ...          # raise InvalidInput/NotFound before anything runs
        def apply(self, params, *, acting_user, authorised_by): ...  # returns what revert needs
        def revert(self, params, result, *, acting_user, authorised_by): ...

``apply`` and ``revert`` run inside the executor's transaction and call the
ordinary ``do_*`` actions, passing ``authorised_by`` (the Operation row) so
that gated actions let them through. Both must be idempotent: running one
twice leaves the same state as running it once.
"""

from __future__ import annotations

import builtins
import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, ClassVar

import pydantic
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from chaton.core.errors import InvalidInput, NotFound
from chaton.governance.models import Kind

if TYPE_CHECKING:
    from chaton.directory.models import Account
    from chaton.governance.models import Operation


class NotRevertible(Exception):
    """The operation cannot be undone; the message says why (for people)."""


class OperationType:
    """The contract of one operation type; see the module docstring."""

    type: ClassVar[str]
    label: ClassVar[str | Promise]
    Params: ClassVar[builtins.type[pydantic.BaseModel]]
    #: Whether :meth:`revert` can undo it (a counter-vote that cancels it reverts it).
    revertible: ClassVar[bool] = True
    #: The other gated operations :meth:`revert` performs (adding back what was removed …).
    reverts_with: ClassVar[tuple[str, ...]] = ()

    def default_kind(self, params: Any) -> Kind:
        """Given validated params, return the class this operation has unless the policy says."""
        return Kind.EXTRAORDINARY

    def describe(self, params: Any) -> str:
        raise NotImplementedError

    def check(self, params: Any) -> None:
        """Given validated params, raise InvalidInput or NotFound if it cannot run now."""

    def apply(self, params: Any, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        raise NotImplementedError

    def revert(self, params: Any, result: dict[str, Any], *, acting_user: Account | None,
               authorised_by: Operation) -> None:
        raise NotRevertible(_("This operation cannot be undone automatically."))


_registry: dict[str, OperationType] = {}


def register(cls: type[OperationType]) -> type[OperationType]:
    """Class decorator: add an operation type to the registry (one instance, by its ``type``)."""
    if cls.type in _registry:
        raise RuntimeError(f"operation type {cls.type!r} is registered twice")
    _registry[cls.type] = cls()
    return cls


def _load() -> None:
    if not _registry:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")


def all_types() -> list[OperationType]:
    """Return every registered operation type, by type name."""
    _load()
    return [_registry[name] for name in sorted(_registry)]


def get(type_name: str) -> OperationType:
    """Given a type name such as ``group.grant``, return its operation. Raise InvalidInput."""
    _load()
    try:
        return _registry[type_name]
    except KeyError:
        raise InvalidInput(_("Unknown operation “%(type)s”.") % {"type": type_name},
                           field="type") from None


def parse(type_name: str, params: dict[str, Any]) -> tuple[OperationType, pydantic.BaseModel]:
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


def params_schema(operation: OperationType) -> dict[str, Any]:
    """Return the JSON schema of an operation's params (for the API and the forms)."""
    return operation.Params.model_json_schema()


class StrictParams(pydantic.BaseModel):
    """Base of every Params model: unknown keys refused, strings stripped, no coercion."""

    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def not_found(message: str | Promise, field: str) -> NotFound:
    return NotFound(message, field=field)
