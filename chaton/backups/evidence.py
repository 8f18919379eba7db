"""A drill's evidence, stored language-neutral and read in the reader's language.

A drill is recorded by the worker (in the collective's language) and read by
anyone, in theirs: what it compared and what it found are stored as *items*,
``{"code": "table_rows", "params": {"table": "public.item"}}``, and turned
into text only when shown (:func:`text`). A parameter may itself be an item
(the ``what`` of a difference). A plain string (a drill recorded before
items) is shown as it is.

The codes and their messages are :data:`MESSAGES`, to which each kind of
data source adds its own (``DataSource.evidence_codes``, through
:func:`register`); :func:`of_error` makes the item of a failure, following
:func:`chaton.backups.errors.describe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from chaton.adapters import restic
from chaton.core import runner

Item = dict[str, Any]

#: Every code an item can have, and its message (``%(name)s`` are its parameters).
MESSAGES: dict[str, str | Promise] = {
    # what is compared
    "sqlite_integrity": _("SQLite integrity check"),
    "entries": _("entry count"),
    "dns": _("DNs"),
    "entries_content": _("entries' content"),
    "dump_complete": _("dump complete"),
    "tables": _("tables"),
    "table_rows": _("rows of %(table)s"),
    "table_checksum": _("checksum of %(table)s"),
    "files": _("file count"),
    "bytes": _("bytes"),
    "key_well_formed": _("a well-formed key"),
    "key_id": _("key id"),
    "file_contents": _("content of every file against its SHA-256 (restic "
                       "restore --verify)"),
    # what is found
    "difference": _("%(what)s: expected %(expected)s, found %(found)s"),
    "all_matched": _("Everything compared matched."),
    "no_backup": _("Source %(source)s has no successful backup yet."),
    "check_failed": _("The repository check run with the drill failed: %(error)s"),
    "interrupted": _("Interrupted: the process running it stopped before the end."),
    # why it failed (see errors.describe)
    "no_space": _("No space left on the repository's disk: %(detail)s"),
    "wrong_password": _("Wrong repository password: it opens no key of the repository."),
    "repository_missing": _("There is no initialised restic repository at this location."),
    "repository_locked": _("The repository is locked by another restic process: %(detail)s"),
    "repository_unreachable": _("The repository cannot be reached: %(detail)s"),
    "corrupt": _("Damaged data in the repository: %(detail)s"),
    "timeout": _("restic took too long and was stopped: %(detail)s"),
    "source_failed": _("The data source failed: %(detail)s"),
    "error": "%(detail)s",
}

_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (restic.NoSpace, "no_space"), (restic.WrongPassword, "wrong_password"),
    (restic.RepositoryMissing, "repository_missing"),
    (restic.RepositoryLocked, "repository_locked"),
    (restic.RepositoryUnreachable, "repository_unreachable"),
    (restic.CorruptRepository, "corrupt"), (restic.ResticTimeout, "timeout"),
    (restic.SourceFailed, "source_failed"),
)


def register(codes: Mapping[str, str | Promise]) -> None:
    """Add a kind's own codes and messages to :data:`MESSAGES`. Raise ValueError for a code
    that already means something else."""
    for code, message in codes.items():
        if code in MESSAGES and MESSAGES[code] != message:
            raise ValueError(f"evidence code {code!r} is already defined")
        MESSAGES[code] = message


def _known(code: Any) -> bool:
    """Return whether ``code`` has a message, once every kind has added its own."""
    if not isinstance(code, str):
        return False
    if code not in MESSAGES:
        from chaton.backups.sources import kinds

        kinds()  # importing each kind's module registers its codes
    return code in MESSAGES


def item(code: str, **params: Any) -> Item:
    """Given a code of :data:`MESSAGES` and its parameters, return the item. Raise KeyError
    for an unknown code (a typo must not reach the database)."""
    if not _known(code):
        raise KeyError(f"unknown evidence code {code!r}")
    return {"code": code, "params": params}


def of_error(error: BaseException, limit: int = 4000) -> Item:
    """Given the exception a drill failed with, return its item (secrets masked)."""
    detail = runner.mask(str(error).strip())[:limit] or type(error).__name__
    for kind, code in _ERRORS:
        if isinstance(error, kind):
            return item(code, detail=detail)
    return item("error", detail=detail)


def text(value: Any) -> str:
    """Given an item (or a plain string), return it as text in the active language."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping) or not _known(value.get("code")):
        return str(value)
    params = {name: text(param) if isinstance(param, Mapping) else param
              for name, param in (value.get("params") or {}).items()}
    template = str(MESSAGES[value["code"]])
    try:
        return template % params if params or "%(" in template else template
    except (KeyError, TypeError, ValueError):
        return template
