"""The kinds of data a plan backs up: one module each, one contract (:mod:`.base`).

Adding a kind means adding one module here with a :class:`~.base.DataSource`
subclass and its :class:`~.base.SourceParams`: :func:`kinds` finds it, and the
web form, the API schema, the CLI help and the encryption of its secrets are
built from its parameters. No list to extend, no migration
(``docs/how-to/add-a-backup-source.md``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    Param,
    ParamSpec,
    ResticClient,
    RestoreRefused,
    SourceParams,
    Verification,
    param_specs,
)
from chaton.core.errors import InvalidInput

__all__ = ["BackupContext", "BackupResult", "DataSource", "Param", "ParamSpec", "ResticClient",
           "RestoreRefused", "SourceParams", "Verification", "build", "kind_class",
           "kind_label", "kinds", "param_specs", "params_json_schema"]

#: Modules of this package that hold no kind.
_NOT_KINDS = frozenset({"base"})
_kinds: dict[str, type[DataSource]] = {}


def kinds() -> dict[str, type[DataSource]]:
    """Return every kind by its name (the value of ``Source.kind``), sorted by name.

    The first call imports each module of this package and keeps the
    :class:`DataSource` subclasses defined there that name a ``kind``. Raise
    RuntimeError when two classes claim one kind.
    """
    if not _kinds:
        found: dict[str, type[DataSource]] = {}
        for module_info in pkgutil.iter_modules(__path__):
            if module_info.name in _NOT_KINDS or module_info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{module_info.name}")
            for _name, member in inspect.getmembers(module, inspect.isclass):
                if (issubclass(member, DataSource) and member.__module__ == module.__name__
                        and not inspect.isabstract(member) and "kind" in vars(member)):
                    if member.kind in found:
                        raise RuntimeError(f"backup source kind {member.kind!r} is defined "
                                           f"twice")
                    found[member.kind] = member
        _kinds.update(sorted(found.items()))
    return dict(_kinds)


def kind_class(kind: str) -> type[DataSource]:
    """Given a kind name, return its class. Raise InvalidInput for an unknown kind."""
    known = kinds()
    try:
        return known[kind]
    except KeyError:
        raise InvalidInput(_("Unknown kind of data source “%(kind)s” (known: %(known)s).")
                           % {"kind": kind, "known": ", ".join(known)},
                           field="kind") from None


def kind_label(kind: str) -> str:
    """Given a kind name, return its label in the active language (the name itself for a
    kind no module defines any more)."""
    found = kinds().get(kind)
    return str(found.label) if found is not None else kind


def params_json_schema(kind: str) -> dict[str, Any]:
    """Given a kind, return the JSON schema of its parameters, labels and help texts in the
    active language, secret ones marked ``writeOnly``. Raise InvalidInput for an unknown kind."""
    source = kind_class(kind)
    schema: dict[str, Any] = source.Params.model_json_schema()
    schema["title"] = kind
    schema["description"] = str(source.label)
    properties: dict[str, dict[str, Any]] = schema.setdefault("properties", {})
    for spec in param_specs(source.Params):
        prop = properties.setdefault(spec.name, {})
        prop["title"] = str(spec.label)
        if spec.help:
            prop["description"] = str(spec.help)
        if spec.secret:
            prop["writeOnly"] = True
            prop["format"] = "password"
    return schema


def build(kind: str, name: str, params: Mapping[str, Any]) -> DataSource:
    """Given a kind, a name and decrypted parameters, return the data source."""
    return kind_class(kind)(name, params)
