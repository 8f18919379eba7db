"""The restic adapter: a small typed client over the restic command line, through
:mod:`chaton.core.runner`.

One client (:class:`~chaton.adapters.restic.client.Restic`) speaks to one
repository: a local path, ``sftp:…`` or ``s3:…``. The password goes to restic
through ``RESTIC_PASSWORD`` in its environment, never on its command line, and
is masked in every log line and error message; so are the values of the extra
environment (S3 keys …).

restic 0.14 (Debian 12) exits with 1 for nearly every failure, so errors are
told apart by the text of its standard error. Exceptions::

    ResticError(CommandError, RuntimeError)          restic failed; ``detail`` holds its message
    ├── ResticNotInstalled(FileNotFoundError)        the restic program is missing
    ├── ResticTimeout(TimeoutError)                  it ran past its timeout and was killed
    ├── RepositoryMissing(FileNotFoundError)         no repository at the location (not initialised)
    ├── RepositoryExists(FileExistsError)            init found a repository already there
    ├── WrongPassword(PermissionError)               the password opens no key of the repo
    ├── RepositoryLocked(BlockingIOError)            another restic holds a lock on it
    ├── RepositoryUnreachable(ConnectionError)       the sftp host or S3 endpoint is unreachable
    ├── NoSpace(OSError)                             the disk receiving the data is full (ENOSPC)
    ├── CorruptRepository(ValueError)                check or a read found damaged data
    └── SourceFailed                                 the producer of a streamed backup failed;
                                                     no snapshot of its partial output is kept

What apps call is the :class:`ResticClient` protocol; the real client is
:class:`chaton.adapters.restic.client.Restic`, and
:class:`chaton.adapters.restic.fake.FakeRestic` an in-memory stand-in for the
unit tests of the code built on it. Nothing here imports Django.
"""

from __future__ import annotations

import datetime as dt
import errno
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from chaton.adapters import Slot
from chaton.core import runner

#: A day is enough for the largest backup of a small collective; the caller may shorten it.
DEFAULT_TIMEOUT = 24 * 60 * 60
#: Short commands (snapshots, unlock, init): they read a few small files.
SHORT_TIMEOUT = 120
#: Seconds of silence after which a backup counts as stuck (see Restic.stall_timeout).
DEFAULT_STALL_TIMEOUT = 600
#: How often a backup watched for silence reports its progress (restic's status lines).
WATCHED_PROGRESS_PER_SECOND = "0.2"
#: Status lines per second restic prints with --json while a callback listens.
PROGRESS_PER_SECOND = "2"
#: The restic variables of the caller's shell that must not leak into Chaton's calls.

class ResticError(runner.CommandError):
    """restic failed. ``detail`` is its (masked) message, ``returncode`` its exit code."""

    def __init__(self, message: str, *, command: Sequence[str] = (), detail: str = "",
                 returncode: int | None = None) -> None:
        super().__init__(message, command=command)
        self.detail = detail
        self.returncode = returncode


class ResticNotInstalled(ResticError, FileNotFoundError):
    pass


class ResticTimeout(ResticError, TimeoutError):
    pass


class RepositoryMissing(ResticError, FileNotFoundError):
    pass


class RepositoryExists(ResticError, FileExistsError):
    pass


class WrongPassword(ResticError, PermissionError):
    pass


class RepositoryLocked(ResticError, BlockingIOError):
    pass


class RepositoryUnreachable(ResticError, ConnectionError):
    pass


class NoSpace(ResticError, OSError):
    def __init__(self, message: str, **options: Any) -> None:
        super().__init__(message, **options)
        self.errno = errno.ENOSPC


class CorruptRepository(ResticError, ValueError):
    pass


class SourceFailed(ResticError):
    """The program whose output was being backed up failed; ``detail`` is its message."""


#: Which error a line of restic's standard error means, most specific first.
_PATTERNS: tuple[tuple[re.Pattern[str], type[ResticError]], ...] = (
    (re.compile(r"no space left on device|disk quota exceeded", re.I), NoSpace),
    (re.compile(r"wrong password or no key found", re.I), WrongPassword),
    (re.compile(r"config file already exists|repository master key and config already "
                r"initialized", re.I), RepositoryExists),
    (re.compile(r"repository is already locked|unable to create lock", re.I), RepositoryLocked),
    (re.compile(r"Is there a repository at the following location|unable to open config "
                r"file|repository does not exist", re.I), RepositoryMissing),
    (re.compile(r"ciphertext verification failed|Pack ID does not match|repository contains "
                r"errors|hash does not match|pack .* contains \d+ errors|invalid data "
                r"returned|unexpected EOF|Load\(.*\) returned error", re.I),
     CorruptRepository),
    # restic copies ssh's own message ("subprocess ssh: …") in a goroutine that may not run
    # before it exits: its own line about the sftp session is the one always there.
    (re.compile(r"connection refused|no route to host|network is unreachable|ssh: |"
                r"subprocess ssh|i/o timeout|no such host|dial tcp|connection reset|"
                r"unable to start the sftp session", re.I),
     RepositoryUnreachable),
)


def classify(detail: str, *, command: Sequence[str], returncode: int | None,
             message: str) -> ResticError:
    """Given restic's standard error and exit code, return the matching exception (not raised)."""
    for pattern, kind in _PATTERNS:
        if pattern.search(detail):
            return kind(message, command=command, detail=detail, returncode=returncode)
    return ResticError(message, command=command, detail=detail, returncode=returncode)


def last_meaningful_line(detail: str) -> str:
    """Return the line of restic's output that names the problem.

    The first line that matches a known failure wins ("ciphertext verification
    failed" says more than the closing "There were 1 errors"); then restic's
    ``Fatal: …`` line; then the last line.
    """
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    for line in lines:
        if any(pattern.search(line) for pattern, _kind in _PATTERNS):
            return line.removeprefix("Fatal:").strip()
    for line in lines:
        if line.startswith("Fatal:"):
            return line.removeprefix("Fatal:").strip()
    return lines[-1] if lines else ""


# -- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One snapshot as restic lists it."""

    id: str
    short_id: str
    time: dt.datetime
    paths: tuple[str, ...]
    tags: tuple[str, ...]
    hostname: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        """Given one element of ``restic snapshots --json``, return the snapshot."""
        return cls(id=data["id"], short_id=data.get("short_id", data["id"][:8]),
                   time=parse_time(data["time"]), paths=tuple(data.get("paths") or ()),
                   tags=tuple(data.get("tags") or ()), hostname=data.get("hostname", ""))

    def matches(self, snapshot_id: str) -> bool:
        """Return whether ``snapshot_id`` (short or full) names this snapshot."""
        return bool(snapshot_id) and self.id.startswith(snapshot_id)


def parse_time(text: str) -> dt.datetime:
    """Given restic's RFC 3339 time with nanoseconds, return an aware datetime."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not found:
        raise ValueError(f"not a restic time: {text!r}")
    fraction = (found[2] or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if found[3] == "Z" else found[3]
    return dt.datetime.fromisoformat(f"{found[1]}.{fraction}{zone}")


@dataclass(frozen=True)
class BackupProgress:
    """A status line of ``restic backup --json``: how far it is."""

    bytes_done: int
    #: Zero when unknown (a stream has no announced size).
    total_bytes: int
    files_done: int
    total_files: int
    #: 0 to 1; zero when restic cannot tell (a stream).
    fraction: float


@dataclass(frozen=True)
class BackupSummary:
    """The summary line of ``restic backup --json``: what one backup added."""

    snapshot_id: str
    files_new: int
    files_changed: int
    files_unmodified: int
    #: Bytes of new data written to the repository (after deduplication and compression).
    bytes_added: int
    #: Bytes restic read from the source.
    bytes_processed: int
    files_processed: int
    duration_seconds: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BackupSummary:
        return cls(snapshot_id=data.get("snapshot_id", ""),
                   files_new=int(data.get("files_new", 0)),
                   files_changed=int(data.get("files_changed", 0)),
                   files_unmodified=int(data.get("files_unmodified", 0)),
                   bytes_added=int(data.get("data_added", 0)),
                   bytes_processed=int(data.get("total_bytes_processed", 0)),
                   files_processed=int(data.get("total_files_processed", 0)),
                   duration_seconds=float(data.get("total_duration", 0.0)))


@dataclass(frozen=True)
class KeepPolicy:
    """A retention policy: how many snapshots of each period ``forget`` keeps (0: none)."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    @property
    def keeps_everything(self) -> bool:
        """No rule at all: restic would refuse, and nothing is to be forgotten."""
        return not any((self.last, self.hourly, self.daily, self.weekly, self.monthly,
                        self.yearly))

    def arguments(self) -> list[str]:
        """Return the ``--keep-*`` options of this policy."""
        options = []
        for name in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
            count = getattr(self, name)
            if count < 0:
                raise ValueError(f"keep-{name} must not be negative")
            if count:
                options += [f"--keep-{name}", str(count)]
        return options


@dataclass(frozen=True)
class ForgetGroup:
    """One group of snapshots under a policy: those kept and those removed."""

    tags: tuple[str, ...]
    host: str
    keep: tuple[Snapshot, ...]
    remove: tuple[Snapshot, ...]


@dataclass(frozen=True)
class CheckResult:
    """What ``restic check`` found: ``ok``, and the lines that name errors."""

    ok: bool
    errors: tuple[str, ...]
    output: str


# -- what apps call ---------------------------------------------------------------------


@runtime_checkable
class ResticClient(Protocol):
    """What Chaton needs of one restic repository: :class:`~chaton.adapters.restic.client.Restic`,
    or :class:`~chaton.adapters.restic.fake.FakeRestic` in unit tests."""

    location: str

    def init(self) -> None: ...

    def exists(self) -> bool: ...

    def unlock(self) -> None: ...

    def check(self, *, read_data_subset: str | None = None,
              timeout: float | None = None) -> CheckResult: ...

    def snapshots(self, *, tags: Iterable[str] = (), host: str | None = None
                  ) -> list[Snapshot]: ...

    def forget(self, policy: KeepPolicy, *, tags: Iterable[str] = (),
               group_by: str = "host,tags", dry_run: bool = False, prune: bool = False,
               timeout: float | None = None) -> list[ForgetGroup]: ...

    def backup_stream(self, producer: Sequence[str] | bytes, *, filename: str,
                      tags: Iterable[str], host: str, time: dt.datetime | None = None,
                      producer_environment: Mapping[str, str] | None = None,
                      progress: Callable[[BackupProgress], None] | None = None,
                      timeout: float | None = None, secrets: Sequence[str] = ()
                      ) -> BackupSummary: ...

    def backup_paths(self, paths: Sequence[str], *, tags: Iterable[str], host: str,
                     exclude: Sequence[str] = (), time: dt.datetime | None = None,
                     progress: Callable[[BackupProgress], None] | None = None,
                     timeout: float | None = None) -> BackupSummary: ...

    def restore(self, snapshot_id: str, target: str | Path, *, include: Sequence[str] = (),
                verify: bool = True, timeout: float | None = None) -> None: ...

    def dump(self, snapshot_id: str, path: str, *, timeout: float | None = None) -> bytes: ...

    def dump_into(self, snapshot_id: str, path: str, consumer: Sequence[str], *,
                  consumer_environment: Mapping[str, str] | None = None,
                  timeout: float | None = None, secrets: Sequence[str] = ()
                  ) -> runner.PipelineResult: ...

    def forget_snapshots(self, snapshot_ids: Sequence[str], *, prune: bool = False
                         ) -> None: ...


#: Where a test's replacement for the real client sits (see :mod:`chaton.adapters`).
slot: Slot[ResticClient] = Slot("restic", ResticClient)


def use_restic(replacement: ResticClient | Callable[[Any], ResticClient]
              ) -> AbstractContextManager[ResticClient | Callable[[Any], ResticClient]]:
    """Within the block, every restic client comes from ``replacement``: a ResticClient, or a
    function of the repository returning one (tests, benchmarks)."""
    return slot.use(replacement)
