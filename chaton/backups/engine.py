"""What the backups actions share: the restic client of a repository, locks, scratch space.

Locks are ``fcntl.flock`` locks on files under ``data_dir/backups/locks``:

- one per plan, held by whatever runs for it (backup, retention, restore,
  drill): a second run of the same plan is refused at once (Conflict);
- one per repository, shared by the runs that only add or read (backups,
  restores, drills) and exclusive for those restic itself runs exclusively
  (prune, check): those wait for each other, up to ``backups.lock_wait_seconds``.

The kernel releases a flock when its process dies, however it dies: a killed
backup never leaves a lock behind (a database row would).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.adapters import restic as restic_adapter
from chaton.adapters.restic.client import Restic
from chaton.backups.models import Plan, Repository, Source
from chaton.backups.sources import DataSource, ResticClient, build, kind_class
from chaton.backups.sources.base import secret_fields
from chaton.core import secrets
from chaton.core.errors import Conflict


def backups_directory() -> Path:
    """Return ``data_dir/backups``, where the default repository, the cache and locks live."""
    return Path(settings.DATA_DIR) / "backups"


def default_repository_location() -> str:
    """Return where the embedded local repository lives (``backups.default_repository``)."""
    configured = settings.CHATON.backups.default_repository
    return str(Path(configured).absolute()) if configured else str(
        backups_directory() / "repository")


def host_name() -> str:
    """Return the host name recorded in snapshots: ``backups.host``, else this machine's."""
    return settings.CHATON.backups.host or socket.gethostname()


def restic_for(repository: Repository) -> ResticClient:
    """Return the restic client for ``repository`` (the replacement's inside
    :func:`chaton.adapters.restic.use_restic`).

    Raise SecretError when its password was encrypted with another key.
    """
    replacement = restic_adapter.slot.current(repository)
    if replacement is not None:
        return replacement
    config = settings.CHATON.backups
    cache = backups_directory() / "cache"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Restic(location=repository.location, password=repository.password(),
                  environment=repository.environment(), program=config.restic,
                  cache_directory=str(cache), timezone=settings.TIME_ZONE,
                  timeout=config.timeout_seconds, stall_timeout=config.stall_seconds)


# -- parameters ------------------------------------------------------------------------------


def encrypt_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Given cleaned parameters of ``kind``, return them with the secret ones encrypted (the
    fields of the kind's Params marked ``secret``)."""
    stored = dict(params)
    for name in secret_fields(kind_class(kind).Params):
        if stored.get(name):
            stored[name] = secrets.encrypt(str(stored[name]))
    return stored


def decrypt_params(kind: str, stored: dict[str, Any]) -> dict[str, Any]:
    """Given stored parameters, return them with the secret ones in clear."""
    params = dict(stored)
    for name in secret_fields(kind_class(kind).Params):
        if params.get(name):
            params[name] = secrets.decrypt(str(params[name]))
    return params


def shown_params(kind: str, stored: dict[str, Any]) -> dict[str, Any]:
    """Given stored parameters, return them fit to show or audit: secrets as ``***``."""
    params = dict(stored)
    for name in secret_fields(kind_class(kind).Params):
        if params.get(name):
            params[name] = "***"
    return params


def data_source(source: Source) -> DataSource:
    """Return the engine object of a Source row (secrets decrypted)."""
    return build(source.kind, source.name, decrypt_params(source.kind, source.params))


# -- locks ---------------------------------------------------------------------------------


def _lock_path(name: str) -> Path:
    directory = backups_directory() / "locks"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory / f"{name}.lock"


def _holder(file: IO[str]) -> str:
    """Return the pid written in a lock file by its holder, or an empty string."""
    file.seek(0)
    return file.read().strip()[:20]


@contextlib.contextmanager
def plan_lock(plan: Plan) -> Iterator[None]:
    """Hold the plan's lock for the block. Raise Conflict at once when another run holds it."""
    path = _lock_path(f"plan-{plan.pk}")
    with open(path, "a+", encoding="ascii") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = _holder(file)
            raise Conflict(_("Plan %(plan)s is already running (process %(pid)s); try again "
                             "once it has finished.")
                           % {"plan": plan.name, "pid": holder or "?"}) from None
        try:
            file.seek(0)
            file.truncate()
            file.write(str(os.getpid()))
            file.flush()
            yield
        finally:
            file.truncate(0)
            fcntl.flock(file, fcntl.LOCK_UN)


def plan_is_running(plan: Plan) -> bool:
    """Return whether some process holds the plan's lock right now."""
    path = _lock_path(f"plan-{plan.pk}")
    with open(path, "a+", encoding="ascii") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
        return False


@contextlib.contextmanager
def repository_lock(repository: Repository, *, exclusive: bool,
                    wait_seconds: float | None = None) -> Iterator[None]:
    """Hold the repository's lock, shared or ``exclusive``, for the block.

    Wait up to ``wait_seconds`` (``backups.lock_wait_seconds`` when None) for
    the runs that hold it the other way. Raise Conflict when it stays taken.
    """
    wait = settings.CHATON.backups.lock_wait_seconds if wait_seconds is None else wait_seconds
    path = _lock_path(f"repository-{repository.pk}")
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + wait
    with open(path, "a+", encoding="ascii") as file:
        while True:
            try:
                fcntl.flock(file, mode | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    raise Conflict(_("Repository %(name)s is busy (a prune or a check runs); "
                                     "try again later.") % {"name": repository.name}) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


# -- scratch space -------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_directory(prefix: str = "chaton-drill-") -> Iterator[Path]:
    """Yield a new scratch directory, removed with everything in it at the end of the block.

    It is searchable but not listable by others: a drill's throwaway
    PostgreSQL or slapd runs as its own system user and must reach its own
    directory inside.
    """
    base = settings.CHATON.backups.scratch_dir or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
