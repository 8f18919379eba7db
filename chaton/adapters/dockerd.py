"""A Docker engine that Chaton runs itself, where no init system runs Docker's own service.

On a machine with systemd, Debian's ``docker.service`` is the local engine
(the install script starts it). On a machine without one — a container, a
small board — nothing would start ``dockerd``: :class:`ManagedDockerd` runs it
as ``chaton serve`` runs its slapd and Caddy, with its own socket, pid file,
configuration and log in one folder, its images and containers under a data
root and its runtime state under an exec root (both in the folder by default,
or the system's ``/var/lib/docker`` and ``/var/run/docker``), and stops it by
its own pid, never by name.

Layout of the folder::

    daemon.json           the configuration dockerd reads (not /etc/docker/daemon.json)
    dockerd.pid           written by dockerd; lets a later process stop it
    dockerd.log           dockerd's output
    data/, exec/          the data and exec roots, unless others are given

Exceptions::

    DockerdError(RuntimeError)   dockerd is missing, would not start, or would not stop

Nothing here imports Django.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from chaton.core import runner
from chaton.core.servers import PidFileServer

DOCKERD = "/usr/sbin/dockerd"
#: sun_path holds 108 bytes: containerd's socket goes under the exec root.
MAXIMUM_EXEC_ROOT = 70


class DockerdError(RuntimeError):
    """A managed dockerd could not be started or stopped."""


def _ping(socket_path: Path, timeout: float = 2.0) -> bool:
    """Return whether a Docker engine answers ``GET /_ping`` on the unix socket."""

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(socket_path))

    connection = UnixConnection("localhost", timeout=timeout)
    try:
        connection.request("GET", "/_ping")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def engine_answers(docker_url: str) -> bool:
    """Given a ``unix://`` Docker endpoint, return whether an engine answers there; any other
    endpoint is not this machine's to judge: False."""
    if not docker_url.startswith("unix://"):
        return False
    return _ping(Path(docker_url.removeprefix("unix://")))


class ManagedDockerd(PidFileServer):
    """A dockerd that runs from one folder, listening on one unix socket only."""

    program = "dockerd"
    error = DockerdError

    def __init__(self, directory: Path, *, socket_path: Path, data_root: Path | None = None,
                 exec_root: Path | None = None, arguments: Sequence[str] = (),
                 dockerd: str = DOCKERD) -> None:
        """Given its folder, the socket to listen on, and optionally other data and exec
        roots and more arguments (``--iptables=false`` …), prepare; nothing starts yet."""
        # Absolute: the pid file's path on the command line is how stop_stale() knows it.
        self.directory = Path(directory).absolute()
        self.socket_path = Path(socket_path).absolute()
        self.data_root = Path(data_root or self.directory / "data").absolute()
        self.exec_root = Path(exec_root or self.directory / "exec").absolute()
        self.arguments = list(arguments)
        self.dockerd = dockerd
        self.port = 0  # a unix socket, no TCP port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid_path(self) -> Path:
        return self.directory / "dockerd.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "dockerd.log"

    @property
    def config_path(self) -> Path:
        return self.directory / "daemon.json"

    def command(self) -> list[str]:
        """Return dockerd's command line."""
        return [self.dockerd, "--host", self.url, "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root), "--pidfile", str(self.pid_path),
                "--config-file", str(self.config_path), *self.arguments]

    def start(self, timeout: float = 60) -> None:
        """Start dockerd and return once it answers on its socket; do nothing if it runs.

        A dockerd an earlier process left running from this folder is stopped
        first. Raise DockerdError when another engine already answers on the
        socket, when dockerd is missing, exits, or does not answer within
        ``timeout`` seconds (it is stopped then).
        """
        if self.running:
            return
        self.stop_stale(timeout=timeout)
        if _ping(self.socket_path):
            raise DockerdError(f"cannot start dockerd: another Docker engine already answers "
                               f"on {self.socket_path}")
        if len(str(self.exec_root)) > MAXIMUM_EXEC_ROOT:
            raise DockerdError(f"cannot start dockerd: its exec root {self.exec_root} is too "
                               "long for the sockets under it; choose a shorter one")
        if not os.access(self.dockerd, os.X_OK):
            raise DockerdError(f"{self.dockerd} is not installed (Debian package docker.io)")
        for folder in (self.directory, self.data_root, self.exec_root):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self.config_path.write_text(json.dumps({}) + "\n", encoding="ascii")
        try:
            self._log_offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        try:
            self._process = runner.start(self.command(), log_path=str(self.log_path))
        except runner.CommandNotFound:
            raise DockerdError(f"{self.dockerd} is not installed (Debian package docker.io)"
                               ) from None
        deadline = time.monotonic() + timeout
        while True:
            returncode = self._process.poll()
            if returncode is not None:
                self._process = None
                raise DockerdError(f"dockerd exited with code {returncode}; its log ends "
                                   f"with:\n{self._log_tail()}")
            if _ping(self.socket_path):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DockerdError(f"dockerd did not answer on {self.socket_path} within "
                                   f"{timeout:g} s:\n{self._log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        """Stop the dockerd this object started (SIGTERM: it stops its containers first,
        then SIGKILL after ``timeout`` seconds)."""
        super().stop(timeout=timeout)

    def _started_here(self, arguments: list[str]) -> bool:
        # dockerd as the program and this folder's pid file: an editor on it is spared.
        return (os.path.basename(arguments[0]) == os.path.basename(self.dockerd)
                and str(self.pid_path) in arguments[1:])
