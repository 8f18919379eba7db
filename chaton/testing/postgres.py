"""A throwaway PostgreSQL 15 server for the tests that run on PostgreSQL.

:class:`TemporaryPostgres` runs ``initdb`` and ``postgres`` from Debian's
``/usr/lib/postgresql/15/bin`` in a directory of its own: trust authentication,
TCP on 127.0.0.1 only, the unix socket inside the directory, and no fsync
(the data is thrown away, durability buys nothing). PostgreSQL refuses to run
as root, so as root both run as the ``postgres`` system user through
``setpriv``, which execs in place: the pid we hold is the postmaster's own.

Nothing here imports Django.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

from chaton.core import runner
from chaton.core.servers import LoopbackServer

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
#: Debian's postgresql package creates this user; as root we run the server as it.
SERVICE_USER = "postgres"


class PostgresError(RuntimeError):
    """The temporary PostgreSQL server could not be created, started or stopped."""


class TemporaryPostgres(LoopbackServer):
    """A PostgreSQL server that lives in one directory and is stopped by its own pid."""

    program = "PostgreSQL"
    error = PostgresError

    def __init__(self, directory: Path, port: int) -> None:
        """Given a directory and a loopback port, prepare a server; nothing starts yet."""
        self.directory = Path(directory).absolute()
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def data_directory(self) -> Path:
        return self.directory / "data"

    @property
    def socket_directory(self) -> Path:
        return self.directory

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def url(self) -> str:
        """The database URL Django (dj-database-url) and psycopg accept."""
        return f"postgres://{SERVICE_USER}@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _as_service_user() -> list[str]:
        """Return the command prefix that runs a program as the postgres user when we are root.

        setpriv rather than runuser or su: those fork a watching parent that
        turns SIGTERM into a SIGKILL two seconds later; setpriv execs in place.
        """
        if os.geteuid() != 0:
            return []
        return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}",
                "--init-groups", "--"]

    def _prepare_directory(self) -> None:
        """Create the directory and, as root, give it to the postgres user.

        Raise PostgresError when that user cannot write it (a private parent
        directory on the way, say).
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise PostgresError(
                f"running as root, but there is no {SERVICE_USER!r} user to run PostgreSQL as; "
                "install Debian's postgresql package (scripts/install-debian.sh --test)"
            ) from None
        for root, directories, files in os.walk(self.directory):
            os.chown(root, user.pw_uid, user.pw_gid, follow_symlinks=False)
            for name in (*directories, *files):
                os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid,
                         follow_symlinks=False)
        # Ask the kernel whether the postgres user really reaches the directory.
        reachable = runner.run([*self._as_service_user(), "test", "-w", str(self.directory)],
                               check=False, timeout=10)
        if reachable.returncode != 0:
            raise PostgresError(
                f"the {SERVICE_USER} user cannot write {self.directory}: every parent "
                "directory must be searchable by it (chmod o+x)"
            )

    def _initialize(self) -> None:
        """Create the cluster with initdb unless the data directory already holds one.

        Raise PostgresError when initdb fails.
        """
        if (self.data_directory / "PG_VERSION").exists():
            return
        try:
            runner.run(
                [*self._as_service_user(), str(POSTGRES_BIN / "initdb"),
                 "--pgdata", str(self.data_directory), "--username", SERVICE_USER,
                 "--auth-local=trust", "--auth-host=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
                timeout=120,
            )
        except runner.CommandError as error:
            detail = getattr(error, "stderr", "") or str(error)
            raise PostgresError(f"initdb failed in {self.data_directory}: {detail}") from None

    def _accepts_connections(self, host: str) -> bool:
        """Given a host or socket directory, return whether pg_isready says the server accepts."""
        completed = runner.run(
            [str(POSTGRES_BIN / "pg_isready"), "--quiet", "--host", host,
             "--port", str(self.port), "--username", SERVICE_USER, "--dbname", "postgres",
             "--timeout", "1"],
            check=False, timeout=5,
        )
        return completed.returncode == 0

    def start(self, timeout: float = 30) -> None:
        """Create the cluster if needed, start the server and wait until it accepts connections.

        Raise PostgresError, with the tail of the server's log, if it exits or
        does not accept connections within ``timeout`` seconds.
        """
        if self.running:
            return
        self._check_port_is_free()
        self._prepare_directory()
        self._initialize()
        try:
            self._log_offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        command = [
            *self._as_service_user(), str(POSTGRES_BIN / "postgres"),
            "-D", str(self.data_directory), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.socket_directory}",
            # Throwaway data: skip everything that only buys durability.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]
        try:
            self._process = runner.start(command, log_path=str(self.log_path))
        except runner.CommandNotFound:
            raise PostgresError(f"{POSTGRES_BIN}/postgres is not installed "
                                "(Debian package postgresql)") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            returncode = self._process.poll()
            if returncode is not None:
                self._process = None
                raise PostgresError(
                    f"postgres exited with code {returncode} during start-up; its log ends "
                    f"with:\n{self._log_tail()}"
                )
            # The socket in our own directory proves the answering server is ours,
            # not another one that happens to listen on the port.
            if (self._accepts_connections(str(self.socket_directory))
                    and self._accepts_connections("127.0.0.1")):
                return
            time.sleep(0.1)
        self.stop(timeout=5)
        raise PostgresError(
            f"postgres did not accept connections on port {self.port} within {timeout:g} s:\n"
            f"{self._log_tail()}"
        )

    def stop(self, timeout: float = 10) -> None:
        """Stop the server this object started, by its own pid, each step bounded by ``timeout``.

        SIGINT first: PostgreSQL's "fast" shutdown, which disconnects clients
        (SIGTERM is its "smart" shutdown and would wait for every open
        connection, such as Django's persistent ones). Then SIGQUIT (immediate
        shutdown: the postmaster still takes its backends down), and SIGKILL
        last, which would leave orphaned backends. Does nothing when it is not
        running. Raise PostgresError if it survives SIGKILL.
        """
        process = self._process
        if process is None:
            return
        for signal_number in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            if process.poll() is not None:
                break
            process.send_signal(signal_number)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
        if process.poll() is None:
            raise PostgresError(f"postgres (pid {process.pid}) survived SIGKILL")
        self._process = None
