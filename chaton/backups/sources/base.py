"""The contract every data source keeps: back up, restore, verify.

A data source kind is one module of this package with one subclass of
:class:`DataSource` (found there by :func:`chaton.backups.sources.kinds`). Its
parameters are a pydantic model, :class:`SourceParams`, whose fields carry a
:class:`Param` (label, help text, secret or not, one value per line): the web
form, the API schema, the CLI help and the encryption of secrets are built
from it. Each instance is built from a :class:`~chaton.backups.models.Source`
row's name and its (decrypted) parameters, and knows how to:

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
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

import pydantic
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

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


# -- parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """How a parameter of a kind is presented, put in its field's ``Annotated[...]``.

    ``label`` and ``help`` are translatable (``gettext_lazy``); a ``secret``
    parameter is stored encrypted, masked as ``***`` and typed in a password
    field; a list parameter takes one value per line in the form and a
    repeated ``--param`` on the command line.
    """

    label: str | Promise
    help: str | Promise = ""
    secret: bool = False


class ParamError(ValueError):
    """A parameter refused by a validator of a :class:`SourceParams`, naming the parameter.

    A field validator may raise a plain ValueError (the field is known); a
    model validator raises this one to name the field it blames.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class SourceParams(BaseModel):
    """The parameters of a kind: subclass it with one annotated field per parameter.

    Unknown parameters are refused. :meth:`DataSource.clean_params` validates
    with it and stores ``model_dump(exclude_none=True)``: a field whose value
    is None is left out of what is stored.
    """

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as the form, the API schema and the CLI see it."""

    name: str
    label: str | Promise
    help: str | Promise
    #: ``text``, ``integer``, ``boolean`` or ``lines`` (a list of text).
    shape: str
    secret: bool
    required: bool
    default: Any


def _shape(annotation: Any) -> str:
    """Given a field's annotation, return the shape of its values."""
    if get_origin(annotation) in (Union, types.UnionType):
        remaining = [arg for arg in get_args(annotation) if arg is not type(None)]
        annotation = remaining[0] if len(remaining) == 1 else str
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if get_origin(annotation) is list:
        return "lines"
    return "text"


def param_specs(model: type[SourceParams]) -> list[ParamSpec]:
    """Given a kind's Params model, return its parameters in their declared order."""
    specs = []
    for name, info in model.model_fields.items():
        presentation = next((item for item in info.metadata if isinstance(item, Param)),
                            Param(label=name))
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        specs.append(ParamSpec(name=name, label=presentation.label, help=presentation.help,
                               shape=_shape(info.annotation), secret=presentation.secret,
                               required=info.is_required(), default=default))
    return specs


def secret_fields(model: type[SourceParams]) -> tuple[str, ...]:
    """Given a kind's Params model, return the names of its secret parameters."""
    return tuple(spec.name for spec in param_specs(model) if spec.secret)


def invalid_params(error: pydantic.ValidationError) -> InvalidInput:
    """Given the model's refusal, return it as InvalidInput naming the first faulty parameter."""
    problems = error.errors()
    unknown = sorted(str(problem["loc"][0]) for problem in problems
                     if problem["type"] == "extra_forbidden" and problem["loc"])
    if unknown:
        return InvalidInput(_("Unknown parameter(s): %(names)s.") % {"names": ", ".join(unknown)},
                            field=unknown[0])
    problem = problems[0]
    name = str(problem["loc"][0]) if problem["loc"] else None
    cause = (problem.get("ctx") or {}).get("error")
    if isinstance(cause, ParamError):
        return InvalidInput(cause.message, field=cause.field or name)
    if isinstance(cause, ValueError):
        return InvalidInput(str(cause), field=name)
    if problem["type"] == "missing":
        return InvalidInput(_("The parameter “%(name)s” is required.") % {"name": name},
                            field=name)
    return InvalidInput(_("The parameter “%(name)s” is not valid: %(error)s")
                        % {"name": name, "error": problem["msg"]}, field=name)


def _one_line(value: str) -> str:
    if any(character in value for character in "\n\r\0"):
        raise ValueError(_("A parameter must be text on one line."))
    return value.strip()


def _required(value: str) -> str:
    if not value:
        raise ValueError(_("This parameter is required."))
    return value


def _port(value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if isinstance(value, bool) or not 0 < port < 65536:
        raise ValueError(_("A port number goes from 1 to 65535."))
    return port


def _listed(value: Any) -> Any:
    """One text given where a list is expected is a list of one."""
    return [value] if isinstance(value, str) else value


#: Text on one line, stripped (may be empty).
Text = Annotated[str, AfterValidator(_one_line)]
#: Text on one line, stripped, not empty.
RequiredText = Annotated[str, AfterValidator(_one_line), AfterValidator(_required)]
#: A TCP port (a number, or digits as text).
Port = Annotated[int, BeforeValidator(_port)]
#: A list of text; one text alone is a list of one.
Lines = Annotated[list[str], BeforeValidator(_listed)]


class NoParams(SourceParams):
    """The parameters of a kind that takes none."""


class RestoreRefused(Exception):
    """An in-place restore this source will not do; the message says why and what to do."""


class DataSource(ABC):
    """One kind of data to back up. Subclasses set ``kind``, ``label``, ``Params`` and the
    methods."""

    #: The value of Source.kind.
    kind: ClassVar[str]
    label: ClassVar[str | Promise]
    #: The parameters: their types, defaults, checks, help texts and which are secret.
    Params: ClassVar[type[SourceParams]] = NoParams
    #: The evidence codes this kind's drills compare, beyond the shared ones of
    #: :data:`chaton.backups.evidence.MESSAGES`: code → message (``gettext_lazy``).
    evidence_codes: ClassVar[Mapping[str, str | Promise]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        evidence.register(cls.evidence_codes)

    def __init__(self, name: str, params: Mapping[str, Any]) -> None:
        """Given the source's name and its decrypted, cleaned parameters, prepare; touch nothing."""
        self.name = name
        self.params = dict(params)

    @classmethod
    def clean_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Given parameters typed by someone, return them checked and normalised by
        :attr:`Params` (None values left out).

        Raise InvalidInput naming the faulty parameter.
        """
        try:
            model = cls.Params.model_validate(dict(params))
        except pydantic.ValidationError as error:
            raise invalid_params(error) from None
        return model.model_dump(exclude_none=True)

    @classmethod
    def secret_params(cls) -> tuple[str, ...]:
        """Return the names of the parameters stored encrypted (from :attr:`Params`)."""
        return secret_fields(cls.Params)

    @property
    def filename(self) -> str:
        """The name of the file a streamed backup has in its snapshot."""
        return f"{self.name}.{self.extension}"

    #: The streamed file's extension.
    extension: ClassVar[str] = "dump"

    def secrets(self) -> list[str]:
        """Return the secret values of the parameters, to mask in logs."""
        return [str(self.params[name]) for name in self.secret_params()
                if self.params.get(name)]

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
