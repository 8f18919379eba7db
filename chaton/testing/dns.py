"""A real DNS server for the tests: Knot (Debian's ``knot``) on a free loopback port.

:class:`KnotServer` writes its configuration, zone files, database, journal and run
folder under a folder of its own, starts ``knotd`` in the foreground and stops
it by its pid; a test may stop it and start it again (a DNS server down). It serves
one zone or several. Given a :class:`TsigKey`, it takes dynamic updates (RFC 2136) to
its zones signed with that key, and only with it; the updates are kept in its
journal, so they survive a restart. ``change_by_hand`` changes a set through
``knotc``, as an operator at the server would, outside any key.

The ``knot_dns`` fixture serves :data:`TEST_ZONE` for the session (read only). The
``knot_updates`` fixture is a fresh server for one test taking updates to
:data:`EXAMPLE_ZONE` (``example.org.``) and :data:`OTHER_ZONE` (``example.net.``)
with a random key; ``knot_updates.zone_server("example.org.")`` is the
:class:`~chaton.adapters.dns.ZoneServer` the DNS adapter takes.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from chaton.adapters.dns import Record, ZoneServer, record_of
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

#: A zone that takes updates in ``knot_updates``: the collective's mail domain.
EXAMPLE_ZONE = """\
$ORIGIN example.org.
$TTL 300
@     SOA  ns1.example.org. hostmaster.example.org. 1 3600 900 604800 300
@     NS   ns1
ns1   A    127.0.0.1
mail  A    127.0.0.2
@     MX   10 mail
"""

#: The other zone of ``knot_updates``: a partner's domain, or a zone for DKIM records.
OTHER_ZONE = """\
$ORIGIN example.net.
$TTL 300
@     SOA  ns1.example.net. hostmaster.example.net. 1 3600 900 604800 300
@     NS   ns1
ns1   A    127.0.0.1
"""


class KnotError(RuntimeError):
    pass


def records_of_zone(text: str) -> list[Record]:
    """Given a zone file's text, return its record sets but the SOA (to fill a FakeZone with
    what a KnotServer serving that text holds)."""
    zone = dns.zone.from_text(text, relativize=False)
    return [record_of(dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset)))
            for name, rdataset in zone.iterate_rdatasets()
            if rdataset.rdtype != dns.rdatatype.SOA]


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key: its name (a domain name), its algorithm and its secret (base64)."""

    name: str
    secret: str
    algorithm: str = "hmac-sha256"

    @classmethod
    def random(cls, name: str = "chaton-update.") -> TsigKey:
        """Return a key of ``name`` with a fresh random 256-bit secret."""
        return cls(name, base64.b64encode(secrets.token_bytes(32)).decode("ascii"))


class KnotServer(LoopbackServer):
    """knotd serving ``zones`` (origin → zone file text) on 127.0.0.1:``port``, UDP and TCP;
    with ``tsig``, taking updates to them signed with that key (and no other)."""

    program: ClassVar[str] = "knotd"
    error: ClassVar[type[Exception]] = KnotError

    def __init__(self, directory: Path, port: int, zones: Mapping[str, str],
                 tsig: TsigKey | None = None) -> None:
        self.directory = directory
        self.port = port
        self.zones = dict(zones)
        self.tsig = tsig
        self._process = None
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        return self.directory / "knotd.log"

    @property
    def address(self) -> str:
        """``127.0.0.1:port``, as a DNS probe's ``server`` option."""
        return f"127.0.0.1:{self.port}"

    def zone_server(self, zone: str, *, tsig: TsigKey | None = None,
                    timeout: float = 5.0) -> ZoneServer:
        """Given one of the zones, return the ZoneServer the DNS adapter takes for it, with
        this server's key (or ``tsig``, a wrong one for a test)."""
        key = tsig or self.tsig
        return ZoneServer(zone=zone.rstrip(".") + ".", host="127.0.0.1", port=self.port,
                          tsig_name=key.name if key else None,
                          tsig_algorithm=key.algorithm if key else "hmac-sha256",
                          tsig_secret=key.secret if key else None, timeout=timeout)

    def knotc(self, *arguments: str) -> str:
        """Run ``knotc`` against this server's control socket; return its output.

        Raise KnotError with its output when it fails.
        """
        knotc = shutil.which("knotc") or "/usr/sbin/knotc"
        completed = subprocess.run([knotc, "--config", str(self.directory / "knot.conf"),
                                    *arguments], capture_output=True, text=True, timeout=30,
                                   check=False)
        output = completed.stdout + completed.stderr
        if completed.returncode != 0 or "error" in output.lower():
            raise KnotError(f"knotc {' '.join(arguments)}: {output.strip()}")
        return output

    def change_by_hand(self, zone: str, name: str, type: str, ttl: int,
                       values: Iterable[str]) -> None:
        """Replace the set (name, type) of ``zone`` through knotc, as an operator would,
        outside any TSIG key: no values deletes it. TXT values go as written (quote them)."""
        self.knotc("zone-begin", zone)
        try:
            try:
                self.knotc("zone-unset", zone, name, type)
            except KnotError as failure:
                if "no such" not in str(failure).lower():
                    raise
            for value in values:
                self.knotc("zone-set", zone, name, str(ttl), type, value)
        except BaseException:
            self.knotc("zone-abort", zone)
            raise
        self.knotc("zone-commit", zone)

    def _write_configuration(self) -> Path:
        for name in ("zones", "db", "journal", "run"):
            (self.directory / name).mkdir(parents=True, exist_ok=True)
        zone_entries = []
        for origin, text in self.zones.items():
            origin = origin.rstrip(".")
            (self.directory / "zones" / f"{origin}.zone").write_text(text, encoding="utf-8")
            zone_entries.append(f"  - domain: {origin}\n")
        if self.tsig is not None:
            # Updates signed with the key, and only those; kept in the journal (its own
            # folder) so that they survive a restart, never written back to the zone file.
            access = ("key:\n"
                      f"  - id: {self.tsig.name}\n"
                      f"    algorithm: {self.tsig.algorithm}\n"
                      f"    secret: {self.tsig.secret}\n"
                      "acl:\n"
                      "  - id: chaton-update\n"
                      f"    key: {self.tsig.name}\n"
                      "    action: update\n")
            zone_options = "    acl: chaton-update\n    journal-content: changes\n"
        else:
            access, zone_options = "", "    journal-content: none\n"
        configuration = self.directory / "knot.conf"
        configuration.write_text(
            "server:\n"
            f"    rundir: {self.directory / 'run'}\n"
            f"    listen: 127.0.0.1@{self.port}\n"
            "database:\n"
            f"    storage: {self.directory / 'db'}\n"
            f"    journal-db: {self.directory / 'journal'}\n"
            "log:\n"
            "  - target: stderr\n"
            "    any: info\n"
            + access +
            "template:\n"
            "  - id: default\n"
            f"    storage: {self.directory / 'zones'}\n"
            '    file: "%s.zone"\n'
            + zone_options +
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


@pytest.fixture
def knot_updates() -> Iterator[KnotServer]:
    """Yield a fresh knotd for one test, serving :data:`EXAMPLE_ZONE` and :data:`OTHER_ZONE`
    and taking updates signed with its own random key (``knot_updates.tsig``). The test may
    stop it and start it again; a failure to start is an error, never a skip."""
    directory = Path(tempfile.mkdtemp(prefix="chaton-knot-"))
    server = KnotServer(directory, free_port(),
                        {"example.org": EXAMPLE_ZONE, "example.net": OTHER_ZONE},
                        tsig=TsigKey.random())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
