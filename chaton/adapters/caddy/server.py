"""A Caddy that Chaton runs itself: :class:`ManagedCaddy`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaton.adapters.caddy import CADDY, CaddyStartError, logger
from chaton.adapters.caddy.client import CaddyAdmin
from chaton.core import runner
from chaton.core.servers import PidFileServer


class ManagedCaddy(PidFileServer):
    """A Caddy that runs from, and keeps all its state in, one folder; admin API on loopback.

    Its routes and ports come later, from :func:`sync` through the admin API;
    at start it takes back the configuration it saved last (with the admin
    address of this object), so a restart loses nothing.
    """

    program = "caddy"
    error = CaddyStartError

    def __init__(self, directory: Path, *, admin_port: int, caddy: str = CADDY) -> None:
        """Given a folder and the admin API's loopback port, prepare; nothing starts yet."""
        # Absolute, because the start file's path on Caddy's command line is how
        # stop_stale() recognises a Caddy started from this folder.
        self.directory = Path(directory).absolute()
        self.port = admin_port
        self.caddy = caddy
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        #: Why the saved configuration could not be taken back at the last start, if so.
        self.resume_failure: str | None = None

    # -- paths and addresses -------------------------------------------------

    @property
    def data_directory(self) -> Path:
        return self.directory / "data"

    @property
    def config_directory(self) -> Path:
        return self.directory / "config"

    @property
    def autosave_path(self) -> Path:
        """Where Caddy saves every configuration it loads."""
        return self.config_directory / "caddy" / "autosave.json"

    @property
    def start_config_path(self) -> Path:
        return self.directory / "start.json"

    @property
    def pid_path(self) -> Path:
        return self.directory / "caddy.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "caddy.log"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> CaddyAdmin:
        """Return a client of this Caddy's admin API."""
        return CaddyAdmin(self.admin_url)

    # -- start and stop ------------------------------------------------------

    def _start_config(self, resume: bool) -> dict[str, Any]:
        """Return the configuration to start from: the saved one (when ``resume`` and there
        is one), else the admin API alone; always with this object's admin address."""
        saved: object = None
        if resume:
            try:
                saved = json.loads(self.autosave_path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                saved = None
            except ValueError:
                logger.warning("%s is not JSON: starting Caddy without it", self.autosave_path)
        config = saved if isinstance(saved, dict) else {}
        config["admin"] = {"listen": f"127.0.0.1:{self.port}"}
        return config

    def _environment(self) -> dict[str, str]:
        return {**os.environ, "XDG_DATA_HOME": str(self.data_directory),
                "XDG_CONFIG_HOME": str(self.config_directory)}

    def _launch(self, config: Mapping[str, Any], timeout: float) -> str | None:
        """Start Caddy on ``config``; return None once its admin API answers, or why it did not
        start (Caddy exited; its log tail). Raise CaddyStartError when it neither answers nor
        exits within ``timeout`` seconds (it is stopped first)."""
        temporary = self.start_config_path.with_suffix(".new")
        temporary.write_text(json.dumps(config, indent=1), encoding="utf-8")
        os.replace(temporary, self.start_config_path)
        try:
            self._log_offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        command = [self.caddy, "run", "--config", str(self.start_config_path),
                   "--pidfile", str(self.pid_path)]
        try:
            self._process = runner.start(command, log_path=str(self.log_path),
                                         env=self._environment())
        except runner.CommandNotFound:
            raise CaddyStartError(f"{self.caddy} is not installed (Debian package caddy)"
                                  ) from None
        client = CaddyAdmin(self.admin_url, timeout=1.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            returncode = self._process.poll()
            if returncode is not None:
                self._process = None
                return f"caddy exited with code {returncode}; its log ends with:\n" \
                       f"{self._log_tail()}"
            if client.answers():
                return None
            time.sleep(0.05)
        self.stop(timeout=5)
        raise CaddyStartError(f"caddy's admin API did not answer on {self.admin_url} within "
                              f"{timeout:g} s:\n{self._log_tail()}")

    def start(self, timeout: float = 10) -> None:
        """Start Caddy and return once its admin API answers; do nothing if it runs already.

        A Caddy an earlier process left running from this folder is stopped
        first. When the saved configuration does not start (a port it names is
        taken now), Caddy starts without it and ``resume_failure`` says why;
        the next sync brings the routes back. Raise CaddyStartError when the
        admin port is taken or Caddy does not start.
        """
        if self.running:
            return
        self.stop_stale(timeout=timeout)
        self._check_port_is_free()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_directory.mkdir(exist_ok=True, mode=0o700)
        self.config_directory.mkdir(exist_ok=True, mode=0o700)
        self.resume_failure = None
        resumed = self.autosave_path.exists()
        failure = self._launch(self._start_config(resume=True), timeout)
        if failure is not None and resumed:
            self.resume_failure = failure
            logger.warning("caddy did not start from its saved configuration: %s", failure)
            failure = self._launch(self._start_config(resume=False), timeout)
        if failure is not None:
            raise CaddyStartError(failure)

    def _started_here(self, arguments: list[str]) -> bool:
        # An exact argument, and caddy as the program: an editor open on start.json is spared.
        return (os.path.basename(arguments[0]) == os.path.basename(self.caddy)
                and str(self.start_config_path) in arguments[1:])
