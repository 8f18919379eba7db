"""A real DNS server for the tests: Knot (Debian's ``knot``) on a free loopback port.

:class:`KnotServer` writes its configuration, zone files, database and run
folder under a folder of its own, starts ``knotd`` in the foreground and stops
it by its pid. The ``knot_dns`` fixture serves :data:`TEST_ZONE` for the
session; a test needing other records passes its own zones to a KnotServer.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from chaton.core.servers import LoopbackServer, free_port

#: The session zone, ``chaton.test.``: a web name, a mail name, MX and SPF records.
TEST_ZONE = """\
$ORIGIN chaton.test.
$TTL 300
@     SOA  ns1.chaton.test. hostmaster.chaton.test. 1 3600 900 604800 300
@     NS   ns1
ns1   A    127.0.0.1
www   A    127.0.0.1
pads  A    127.0.0.1
mail  A    127.0.0.2
@     MX   10 mail
@     TXT  "v=spf1 mx -all"
"""


class KnotError(RuntimeError):
    pass


class KnotServer(LoopbackServer):
    """knotd serving ``zones`` (origin → zone file text) on 127.0.0.1:``port``, UDP and TCP."""

    program: ClassVar[str] = "knotd"
    error: ClassVar[type[Exception]] = KnotError

    def __init__(self, directory: Path, port: int, zones: Mapping[str, str]) -> None:
        self.directory = directory
        self.port = port
        self.zones = dict(zones)
        self._process = None
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        return self.directory / "knotd.log"

    @property
    def address(self) -> str:
        """``127.0.0.1:port``, as a DNS probe's ``server`` option."""
        return f"127.0.0.1:{self.port}"

    def _write_configuration(self) -> Path:
        for name in ("zones", "db", "run"):
            (self.directory / name).mkdir(parents=True, exist_ok=True)
        zone_entries = []
        for origin, text in self.zones.items():
            origin = origin.rstrip(".")
            (self.directory / "zones" / f"{origin}.zone").write_text(text, encoding="utf-8")
            zone_entries.append(f"  - domain: {origin}\n")
        configuration = self.directory / "knot.conf"
        configuration.write_text(
            "server:\n"
            f"    rundir: {self.directory / 'run'}\n"
            f"    listen: 127.0.0.1@{self.port}\n"
            "database:\n"
            f"    storage: {self.directory / 'db'}\n"
            "log:\n"
            "  - target: stderr\n"
            "    any: info\n"
            "template:\n"
            "  - id: default\n"
            f"    storage: {self.directory / 'zones'}\n"
            '    file: "%s.zone"\n'
            "    journal-content: none\n"
            "    zonefile-sync: -1\n"
            "zone:\n" + "".join(zone_entries),
            encoding="utf-8")
        return configuration

    def start(self, timeout: float = 10) -> None:
        """Write the configuration and start knotd; return when it answers for every zone.

        Raise KnotError (with the end of its log) when it does not.
        """
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode

        self._check_port_is_free()
        configuration = self._write_configuration()
        knotd = shutil.which("knotd") or "/usr/sbin/knotd"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen([knotd, "--config", str(configuration)],
                                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        pending = [origin.rstrip(".") + "." for origin in self.zones]
        while pending:
            if not self.running:
                raise KnotError(f"cannot start knotd: it exited\n{self._log_tail()}")
            try:
                answer = dns.query.udp(dns.message.make_query(pending[0], "SOA"), "127.0.0.1",
                                       port=self.port, timeout=0.3)
                if answer.rcode() == dns.rcode.NOERROR and answer.answer:
                    pending.pop(0)
                    continue
            except (OSError, dns.exception.Timeout):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise KnotError(f"knotd did not serve {pending[0]} within {timeout:g} s\n"
                                f"{self._log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        """Stop the knotd this object started (SIGTERM, then SIGKILL)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self._process = None


@pytest.fixture(scope="session")
def knot_dns() -> Iterator[KnotServer]:
    """Yield a knotd serving :data:`TEST_ZONE` for the session; a failure to start is an
    error, never a skip."""
    directory = Path(tempfile.mkdtemp(prefix="chaton-knot-"))
    server = KnotServer(directory, free_port(), {"chaton.test": TEST_ZONE})
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
