"""What every server Chaton starts itself has in common (slapd, a test PostgreSQL …).

No Django here: the adapters and the test fixtures use it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
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


def process_is_alive(pid: int) -> bool:
    """Given a pid, return whether that process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def wait_until_gone(pid: int, timeout: float) -> bool:
    """Given a pid that is not our child, return whether it exited within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_is_alive(pid):
            return True
        time.sleep(0.05)
    return not process_is_alive(pid)


class PidFileServer(LoopbackServer):
    """A LoopbackServer that writes a pid file in its own folder (slapd, Caddy).

    It stops the process it started (SIGTERM, then SIGKILL), and a process an
    earlier, killed run left behind (:meth:`stop_stale`) — but only one whose
    command line shows this folder's configuration (:meth:`_started_here`), so
    a recycled pid is never signalled.
    """

    directory: Path

    @property
    def pid_path(self) -> Path:
        raise NotImplementedError

    def _started_here(self, arguments: list[str]) -> bool:
        """Given a process's arguments, return whether this folder's configuration started it."""
        raise NotImplementedError

    def stop(self, timeout: float = 10) -> None:
        """Stop the process this object started: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Does nothing when it is not running. Raise ``error`` if even SIGKILL
        leaves it alive after ``timeout`` seconds.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    raise self.error(
                        f"{self.program} (pid {process.pid}) survived SIGKILL") from None
        self._process = None
        self._remove_pid_file_naming(process.pid)

    def _remove_pid_file_naming(self, pid: int) -> None:
        """Remove the pid file if it names ``pid``: a killed server cannot remove it itself."""
        try:
            if int(self.pid_path.read_text(encoding="ascii").split()[0]) == pid:
                self.pid_path.unlink()
        except (FileNotFoundError, ValueError, IndexError):
            pass  # no pid file, or an unreadable one: nothing of ours to remove

    def _is_ours(self, pid: int) -> bool:
        """Given a pid, return whether it is a server started from this folder."""
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return False
        arguments = [os.fsdecode(part) for part in raw.split(b"\0") if part]
        return bool(arguments) and self._started_here(arguments)

    def stop_stale(self, timeout: float = 10) -> bool:
        """Stop a server an earlier process started from this folder; return whether one ran.

        The process this object runs itself is left alone. Raise ``error`` if
        the stale one survives SIGKILL or belongs to another user.
        """
        try:
            pid = int(self.pid_path.read_text(encoding="ascii").split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return False
        if self._process is not None and self._process.pid == pid:
            return False
        if not self._is_ours(pid) or not process_is_alive(pid):
            self._remove_pid_file_naming(pid)
            return False
        try:
            os.kill(pid, signal.SIGTERM)
            if not wait_until_gone(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                if not wait_until_gone(pid, timeout):
                    raise self.error(f"stale {self.program} (pid {pid}) survived SIGKILL")
        except ProcessLookupError:
            pass  # it exited between our check and the signal: the goal is reached
        except PermissionError:
            raise self.error(
                f"a {self.program} from {self.directory} still runs (pid {pid}) under another "
                "user; stop it as that user or as root") from None
        self._remove_pid_file_naming(pid)
        return True
