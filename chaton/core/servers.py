"""What every server Chaton starts itself has in common (slapd, a test PostgreSQL …).

No Django here: the adapters and the test fixtures use it.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from chaton.core import runner


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks it (bind to port 0); a server started right after almost
    always gets it, and fails loudly on the rare race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LoopbackServer:
    """A server process this object starts on 127.0.0.1:``port`` and stops by its own pid.

    Subclasses set ``port``, ``log_path`` and ``_log_offset``, keep the Popen in
    ``_process``, and implement ``start`` and ``stop``.
    """

    #: Named in error messages ("cannot start slapd: …").
    program: ClassVar[str] = "server"
    #: The exception the subclass raises for its failures.
    error: ClassVar[type[Exception]] = RuntimeError

    port: int
    _log_offset: int
    _process: subprocess.Popen[bytes] | None

    @property
    def log_path(self) -> Path:
        """Where the server's output goes."""
        raise NotImplementedError

    def start(self, timeout: float = 10) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the process this object started is still alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The pid of the process this object started, None when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    def _check_port_is_free(self) -> None:
        """Raise ``error`` when something already listens on 127.0.0.1:port."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As the servers themselves do: a connection of a previous run in TIME_WAIT is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", self.port))
        except OSError as failure:
            raise self.error(
                f"cannot start {self.program}: 127.0.0.1:{self.port}: {failure.strerror}"
            ) from None
        finally:
            probe.close()

    def _log_tail(self, lines: int = 20) -> str:
        """Return the last lines the server wrote since this object last started it, masked."""
        try:
            with self.log_path.open("rb") as file:
                file.seek(self._log_offset)
                text = file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return runner.mask("\n".join(text.strip().splitlines()[-lines:])) or "(empty log)"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
