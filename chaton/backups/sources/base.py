"""The contract every data source keeps: back up, restore, verify.

A data source kind is one module of this package with one subclass of
:class:`DataSource`, listed in :data:`chaton.backups.sources.KINDS`. Each
instance is built from a :class:`~chaton.backups.models.Source` row's name and
its (decrypted) parameters, and knows how to:

- :meth:`~DataSource.backup`: put a consistent copy into the repository,
  streamed where it can be (no clear copy on disk), and return the snapshot
  with a *fingerprint*: what the data looked like (rows and checksums, entries,
  files), recorded to be compared later;
- :meth:`~DataSource.restore_to`: restore a snapshot to a scratch place;
- :meth:`~DataSource.restore_in_place`: put a snapshot back where it came
  from, or refuse and say why (:meth:`~DataSource.in_place_refusal`);
- :meth:`~DataSource.drill`: restore a snapshot into a throwaway server or
  directory and compare it with the fingerprint (a :class:`Verification`).

Sources speak to restic through the :class:`ResticClient` protocol, which both
the real client and the unit tests' fake satisfy.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from django.utils.functional import Promise
from django.utils.translation import gettext as _

from chaton.adapters.restic import (
    BackupProgress,
    BackupSummary,
)
from chaton.adapters.restic import (
    ResticClient as ResticClient,  # the protocol lives in the adapter; sources name it here
)
from chaton.backups import evidence
from chaton.core.errors import InvalidInput


@dataclass(frozen=True)
class BackupContext:
    """Where and how a source backs up: the client, the snapshot's tags and host, and when."""

    restic: ResticClient
    tags: Sequence[str]
    host: str
    #: The snapshot's time (a made-up calendar in tests); None: now.
    time: dt.datetime | None = None
    progress: Callable[[BackupProgress], None] | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class BackupResult:
    """A source's snapshot and what it holds."""

    snapshot_id: str
    files_new: int
    files_changed: int
    bytes_added: int
    bytes_processed: int
    fingerprint: dict[str, Any]

    @classmethod
    def of(cls, summary: BackupSummary, fingerprint: dict[str, Any]) -> BackupResult:
        return cls(snapshot_id=summary.snapshot_id, files_new=summary.files_new,
                   files_changed=summary.files_changed, bytes_added=summary.bytes_added,
                   bytes_processed=summary.bytes_processed, fingerprint=fingerprint)


@dataclass
class Verification:
    """A restored copy compared with its fingerprint: what was compared, and whether it matched.

    ``compared`` and ``differences`` are evidence items (codes and parameters,
    see :mod:`chaton.backups.evidence`): a drill is read in the reader's language.
    """

    compared: list[evidence.Item] = field(default_factory=list)
    expected: dict[str, Any] = field(default_factory=dict)
    found: dict[str, Any] = field(default_factory=dict)
    #: One item per difference; empty when everything matched.
    differences: list[evidence.Item] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.differences

    def compare(self, code: str, expected: Any, found: Any, **params: Any) -> None:
        """Record that what ``code`` (with ``params``) names was compared; note a difference
        when the values differ. Raise KeyError for an unknown code."""
        what = evidence.item(code, **params)
        self.compared.append(what)
        if expected != found:
            self.differences.append(evidence.item(
                "difference", what=what, expected=_short(expected), found=_short(found)))

    @property
    def lines(self) -> list[str]:
        """The differences as text, in the active language."""
        return [evidence.text(difference) for difference in self.differences]

    @property
    def labels(self) -> list[str]:
        """What was compared as text, in the active language."""
        return [evidence.text(compared) for compared in self.compared]


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


class RestoreRefused(Exception):
    """An in-place restore this source will not do; the message says why and what to do."""


class DataSource(ABC):
    """One kind of data to back up. Subclasses set ``kind``, ``label`` and the methods."""

    #: The value of Source.kind.
    kind: ClassVar[str]
    label: ClassVar[str | Promise]
    #: Parameters stored encrypted (passwords).
    secret_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, params: Mapping[str, Any]) -> None:
        """Given the source's name and its decrypted, cleaned parameters, prepare; touch nothing."""
        self.name = name
        self.params = dict(params)

    @classmethod
    @abstractmethod
    def clean_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Given parameters typed by someone, return them checked and normalised.

        Raise InvalidInput naming the faulty parameter.
        """

    @property
    def filename(self) -> str:
        """The name of the file a streamed backup has in its snapshot."""
        return f"{self.name}.{self.extension}"

    #: The streamed file's extension.
    extension: ClassVar[str] = "dump"

    def secrets(self) -> list[str]:
        """Return the secret values of the parameters, to mask in logs."""
        return [str(self.params[name]) for name in self.secret_params if self.params.get(name)]

    @abstractmethod
    def backup(self, context: BackupContext) -> BackupResult:
        """Back up the source into one snapshot; return it with its fingerprint.

        Raise ResticError (SourceFailed when the source itself failed: an
        unreachable database, a missing directory), and PostgresError and the
        like for the source's own servers.
        """

    def restore_to(self, restic: ResticClient, snapshot_id: str, target: Path) -> str:
        """Restore the snapshot under the directory ``target``; return where the data is.

        Raise ResticError.
        """
        restic.restore(snapshot_id, target, include=[f"/{self.filename}"])
        return str(target / self.filename)

    def in_place_refusal(self) -> str | None:
        """Return why this source will not be restored in place, or None when it can be."""
        return None

    @abstractmethod
    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        """Put the snapshot back where the data came from; return what was done.

        Raise RestoreRefused when :meth:`in_place_refusal` says no, ResticError.
        """

    @abstractmethod
    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        """Restore the snapshot into ``scratch`` (a server or a directory there) and compare.

        Return the verification; a mismatch is a failed verification, not an
        exception. Raise ResticError when the data cannot be read back
        (CorruptRepository for damaged data) and the servers' errors.
        """

    # -- helpers for subclasses --------------------------------------------------

    @staticmethod
    def require_text(params: Mapping[str, Any], key: str, *, default: str | None = None) -> str:
        """Return ``params[key]`` as stripped text. Raise InvalidInput when missing or not text."""
        value = params.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(_("The parameter “%(name)s” is required.") % {"name": key},
                               field=key)
        if any(character in value for character in "\n\r\0"):
            raise InvalidInput(_("The parameter “%(name)s” must be on one line.")
                               % {"name": key}, field=key)
        return value.strip()

    @staticmethod
    def optional_text(params: Mapping[str, Any], key: str, default: str = "") -> str:
        """Return ``params[key]`` as text, or ``default``. Raise InvalidInput for a non-text."""
        value = params.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str) or any(character in value for character in "\n\r\0"):
            raise InvalidInput(_("The parameter “%(name)s” must be text on one line.")
                               % {"name": key}, field=key)
        return value.strip()

    @staticmethod
    def port(params: Mapping[str, Any], key: str, default: int) -> int:
        """Return ``params[key]`` as a TCP port. Raise InvalidInput otherwise."""
        value = params.get(key, default)
        try:
            port = int(value)
        except (TypeError, ValueError):
            port = 0
        if isinstance(value, bool) or not 0 < port < 65536:
            raise InvalidInput(_("The parameter “%(name)s” must be a port number (1 to 65535).")
                               % {"name": key}, field=key)
        return port

    @staticmethod
    def reject_unknown(params: Mapping[str, Any], known: Iterable[str]) -> None:
        """Raise InvalidInput when ``params`` holds a key this kind does not know."""
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InvalidInput(_("Unknown parameter(s): %(names)s.")
                               % {"names": ", ".join(unknown)}, field=unknown[0])
