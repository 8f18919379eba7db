"""Servers for the probe engine to check, on free loopback ports (tests and ``bench``).

:func:`make_certificates` writes a small CA and server certificates signed by it
(for ``localhost``, ``127.0.0.1`` and :data:`UNRESOLVED_NAME`), one of them
valid for a chosen number of days. :class:`ProbeTargets` runs, on an asyncio loop
in a thread of its own:

* HTTPS servers (one per certificate) and a plain HTTP server, answering
  ``/ok`` (200, a body with "pad"), ``/fail`` (503), ``/slow`` (200 after
  ``slow_seconds``), ``/status/<code>``;
* IMAP greeting servers, one over implicit TLS and one in clear offering
  STARTTLS;
* an SMTP server with STARTTLS (aiosmtpd).

``python -m chaton.testing.probe_targets <folder>`` runs them in a process of
its own (the benchmark keeps its CPU apart from the engine's) and prints their
ports as one JSON line; it stops when its standard input closes.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: A name the server certificates are valid for too, which never resolves (``.invalid``): a
#: probe reaches it only through ``connect_to``, as Chaton's probes reach instances through
#: its proxy.
UNRESOLVED_NAME = "pads.probe.invalid"


@dataclass(frozen=True)
class ServerCertificate:
    """A certificate and its key, as PEM files, and when it expires."""

    certificate: Path
    key: Path
    expires_at: datetime.datetime


@dataclass(frozen=True)
class Certificates:
    """A CA bundle, a certificate valid for months and one that expires in ``soon_days``."""

    ca_file: Path
    valid: ServerCertificate
    expiring: ServerCertificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path, *, soon_days: int = 5) -> Certificates:
    """Given a folder, write a CA and two server certificates for localhost, 127.0.0.1 and
    UNRESOLVED_NAME (one valid 90 days, one ``soon_days``) into it; return their paths.
    ECDSA: quick."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Chaton test CA"))
          .issuer_name(_name("Chaton test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def server(name: str, days: int) -> ServerCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        expires_at = now + datetime.timedelta(days=days)
        certificate = (
            x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(expires_at)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.DNSName(UNRESOLVED_NAME),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
        certificate_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return ServerCertificate(certificate_path, key_path, expires_at)

    return Certificates(ca_file, server("valid", 90), server("expiring", soon_days))


def server_context(certificate: ServerCertificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.certificate, certificate.key)
    return context


BODY_OK = b"<html><body>chaton ok: your pad is ready</body></html>"
BODY_FAIL = b"down for maintenance"


@dataclass
class Ports:
    """Where each server listens (127.0.0.1)."""

    https: int = 0
    https_expiring: int = 0
    http: int = 0
    imap_tls: int = 0
    imap_starttls: int = 0
    smtp: int = 0
    #: More HTTPS servers with the valid certificate, one per site (``sites``).
    https_sites: list[int] = field(default_factory=list)


@dataclass
class ProbeTargets:
    """The servers, on a loop in a thread of their own: ``start()``, then ``ports``; ``stop()``.

    ``slow_seconds``: how long ``/slow`` waits before it answers. ``requests``
    counts the HTTP requests served (the tests check that a probe really asked).
    """

    certificates: Certificates
    slow_seconds: float = 30.0
    with_smtp: bool = True
    sites: int = 0
    ports: Ports = field(default_factory=Ports)
    requests: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _servers: list[asyncio.Server] = field(default_factory=list)
    _smtp: Any = None

    def start(self) -> None:
        """Start the servers; return when they listen."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_servers())
            except BaseException as error:  # handed to the caller of start()
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            for server in self._servers:
                server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="probe-targets", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the probe targets did not start within 30 s")
        if failure:
            raise failure[0]

    def stop(self) -> None:
        """Stop the servers and their thread."""
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None

    async def _listen(self, handler: Any, context: ssl.SSLContext | None = None) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context, backlog=1024)
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def _start_servers(self) -> None:
        valid = server_context(self.certificates.valid)
        self.ports.https = await self._listen(self._http, valid)
        self.ports.https_expiring = await self._listen(
            self._http, server_context(self.certificates.expiring))
        self.ports.http = await self._listen(self._http)
        for _ in range(self.sites):
            self.ports.https_sites.append(await self._listen(self._http, valid))
        self.ports.imap_tls = await self._listen(self._imap_implicit, valid)
        self.ports.imap_starttls = await self._listen(self._imap_starttls)
        if self.with_smtp:
            from aiosmtpd.controller import Controller

            from chaton.core.servers import free_port

            port = free_port()
            self._smtp = Controller(_SmtpSink(), hostname="127.0.0.1", port=port,
                                    tls_context=server_context(self.certificates.valid),
                                    ready_timeout=30)
            self._smtp.start()
            self.ports.smtp = port

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readline()
                if not request:
                    return
                keep_alive = True
                while True:
                    header = await reader.readline()
                    if header in {b"\r\n", b"\n", b""}:
                        break
                    if header.lower().startswith(b"connection:") and b"close" in header.lower():
                        keep_alive = False
                self.requests += 1
                parts = request.decode("latin-1").split()
                path = parts[1] if len(parts) > 1 else "/"
                status, body = 200, BODY_OK
                if path.startswith("/fail"):
                    status, body = 503, BODY_FAIL
                elif path.startswith("/slow"):
                    await asyncio.sleep(self.slow_seconds)
                elif path.startswith("/status/"):
                    status, body = int(path.split("/")[2]), b"status"
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: text/html; charset=utf-8\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (status, len(body), body))
                await writer.drain()
                if not keep_alive:
                    return
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _imap_implicit(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        await self._imap(reader, writer, offer_starttls=False)

    async def _imap_starttls(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        await self._imap(reader, writer, offer_starttls=True)

    async def _imap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    offer_starttls: bool) -> None:
        capabilities = "IMAP4rev1 STARTTLS" if offer_starttls else "IMAP4rev1"
        try:
            writer.write(f"* OK [CAPABILITY {capabilities}] Chaton test IMAP ready\r\n".encode())
            while True:
                line = (await reader.readline()).decode("latin-1").strip()
                if not line:
                    return
                tag, _, command = line.partition(" ")
                command = command.upper()
                if command == "STARTTLS" and offer_starttls:
                    writer.write(f"{tag} OK Begin TLS negotiation now\r\n".encode())
                    await writer.drain()
                    await writer.start_tls(server_context(self.certificates.valid))
                    offer_starttls = False
                elif command == "LOGOUT":
                    writer.write(f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n".encode())
                    await writer.drain()
                    return
                else:
                    writer.write(f"{tag} BAD unknown command\r\n".encode())
                await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


class _SmtpSink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


@contextmanager
def probe_targets(folder: Path, *, slow_seconds: float = 30.0, with_smtp: bool = True,
                  sites: int = 0) -> Iterator[ProbeTargets]:
    """Yield running probe targets with certificates written in ``folder`` (and ``sites``
    more HTTPS servers); stop them after."""
    targets = ProbeTargets(make_certificates(folder), slow_seconds=slow_seconds,
                           with_smtp=with_smtp, sites=sites)
    targets.start()
    try:
        yield targets
    finally:
        targets.stop()


def main(arguments: list[str]) -> int:
    """Given ``<folder> [sites]``, run the targets until standard input closes; print their
    ports and the CA's path as one JSON line. Return the exit status."""
    if len(arguments) not in {1, 2} or (len(arguments) == 2 and not arguments[1].isdigit()):
        print("usage: python -m chaton.testing.probe_targets <folder> [sites]", file=sys.stderr)
        return 2
    sites = int(arguments[1]) if len(arguments) == 2 else 0
    with probe_targets(Path(arguments[0]), sites=sites) as targets:
        print(json.dumps({**targets.ports.__dict__,
                          "ca_file": str(targets.certificates.ca_file)}), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
