"""The one runner for every subprocess Chaton starts.

It sets a timeout, masks secrets in what it logs, and turns failures into
typed exceptions::

    CommandError(RuntimeError)
    ├── CommandNotFound(FileNotFoundError)   the program is not installed
    ├── CommandTimeout(TimeoutError)         it ran past its timeout and was killed
    └── CommandFailed                        it exited non-zero (``returncode``, ``stderr``)

Nothing here imports Django.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Mapping, Sequence

logger = logging.getLogger("chaton.runner")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember ``value`` so that no log line of this process ever shows it."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def mask(text: str, extra: Sequence[str] = ()) -> str:
    """Return ``text`` with every registered secret (and ``extra`` ones) replaced by ``***``."""
    for secret in (*_secrets, *extra):
        if secret:
            text = text.replace(secret, "***")
    return text


class SecretMaskingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = mask(record.getMessage())
            record.args = None
        return True


class CommandError(RuntimeError):
    def __init__(self, message: str, *, command: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.command = list(command)


class CommandNotFound(CommandError, FileNotFoundError):
    pass


class CommandTimeout(CommandError, TimeoutError):
    pass


class CommandFailed(CommandError):
    def __init__(self, message: str, *, command: Sequence[str], returncode: int,
                 stdout: str, stderr: str) -> None:
        super().__init__(message, command=command)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(
    command: Sequence[str],
    *,
    timeout: float = 60,
    input: str | bytes | None = None,
    secrets: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a list, never a shell string) and return its completed process.

    ``secrets`` are masked in logs and in the messages of the exceptions raised.
    Raise CommandNotFound, CommandTimeout, or CommandFailed when ``check`` is
    true and the exit code is not zero.
    """
    shown = mask(" ".join(command), secrets)
    logger.debug("run: %s", shown)
    data = input.decode() if isinstance(input, bytes) else input
    try:
        completed = subprocess.run(
            list(command), input=data, capture_output=True, text=True,
            timeout=timeout, env=dict(env) if env is not None else None, check=False,
        )
    except FileNotFoundError:
        raise CommandNotFound(f"{command[0]}: not installed", command=command) from None
    except subprocess.TimeoutExpired:
        raise CommandTimeout(f"{shown}: no answer after {timeout:g} s", command=command) from None
    if check and completed.returncode != 0:
        stderr = mask(completed.stderr.strip(), secrets)
        raise CommandFailed(
            f"{shown}: exit {completed.returncode}: {stderr.splitlines()[-1] if stderr else ''}",
            command=command, returncode=completed.returncode,
            stdout=mask(completed.stdout, secrets), stderr=stderr,
        )
    return completed


def start(command: Sequence[str], *, log_path: str | None = None,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running server process and return it; the caller stops it by its pid."""
    logger.debug("start: %s", mask(" ".join(command)))
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                env=dict(env) if env is not None else None)
    except FileNotFoundError:
        raise CommandNotFound(f"{command[0]}: not installed", command=command) from None
    finally:
        # The child has its own copy of the descriptor; ours would leak.
        if not isinstance(output, int):
            output.close()
