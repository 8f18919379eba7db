"""Locks that hold across processes: ``fcntl.flock`` on files under ``data_dir/locks``.

The worker's long jobs take one per object they work on, so that two long jobs
on the same object never run at once, whether they were started by this
process (the worker's lane, an API request) or by another one (a second worker,
the command line). The kernel releases a flock when its process dies, however
it dies: a killed job never leaves its lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def lock_path(key: str) -> Path:
    """Given a lock's key (``services.reconcile``, ``backups.plan:daily`` …), return its file."""
    directory = Path(settings.DATA_DIR) / "locks"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    readable = _UNSAFE.sub("_", key)[:80]
    # The digest keeps two keys that differ only in unsafe characters apart.
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return directory / f"{readable}-{digest}.lock"


@contextlib.contextmanager
def held(key: str) -> Iterator[bool]:
    """Try to take the lock ``key`` without waiting; yield whether it was taken.

    The lock is released at the end of the block. A lock held by another thread
    of this process counts as held too (each call opens the file anew).
    """
    with open(lock_path(key), "a+", encoding="ascii") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            file.seek(0)
            file.truncate()
            file.write(str(os.getpid()))
            file.flush()
            yield True
        finally:
            file.truncate(0)
            fcntl.flock(file, fcntl.LOCK_UN)
