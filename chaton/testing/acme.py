"""Pytest fixtures of the services tests (acme); loaded by chaton.testing.pytest_plugin.

- ``pebble`` (session): a real ACME server on loopback. A throwaway CA signs
  the certificate of pebble's own HTTPS (``Pebble.https_root``: Caddy's
  ``acme_ca_root``); ``pebble-challtestsrv`` is its DNS and answers every name
  with 127.0.0.1, so pebble validates HTTP-01 challenges on
  ``127.0.0.1:Pebble.http_port``, the HTTP port every test Caddy uses.
  Validation is real (no ``PEBBLE_VA_ALWAYS_VALID``), only its random sleeps
  are off. ``Pebble.roots_path()`` holds pebble's issuing root, for a client to
  verify the certificates Caddy serves.
- ``caddy``: a :class:`~chaton.adapters.caddy.server.ManagedCaddy` on free ports
  whose ACME CA is that pebble, with ``settings.CHATON.proxy`` pointed at it
  for the test.
- ``fake_proxy``: every proxy call of a unit test goes to an in-memory Caddy.
- :func:`https_get` and :func:`wait_for_https`: an HTTPS request to a domain
  on 127.0.0.1 (SNI and Host are the domain), verified against given roots.

A server that does not start is an error, never a skip.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chaton.adapters.caddy.fake import FakeCaddyAdmin
from chaton.adapters.caddy.server import ManagedCaddy
from chaton.core import runner
from chaton.core.servers import LoopbackServer, free_port

PEBBLE = "pebble"
CHALLENGE_SERVER = "pebble-challtestsrv"


class AcmeTestServerError(RuntimeError):
    """pebble or its DNS server could not be started or stopped."""


# -- a throwaway CA for pebble's own HTTPS ---------------------------------------------------------


def write_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """Given a folder, write a new CA and a certificate for 127.0.0.1 and localhost signed by it.

    Return the paths of the CA's certificate, the server certificate and its key (PEM).
    """
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Chaton test ACME server CA")])
    ca_certificate = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(validity[0]).not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0]).not_valid_after(validity[1])
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "https-ca.pem", directory / "https-cert.pem",
             directory / "https-key.pem")
    paths[0].write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


# -- the two servers -------------------------------------------------------------------------------


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _TestProcess(LoopbackServer):
    """A test server process started with the runner, ready once ``_ready()`` holds."""

    error = AcmeTestServerError

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.program}.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str] | None:
        return None

    def _ready(self) -> bool:
        return _port_answers(self.port)

    def start(self, timeout: float = 10) -> None:
        """Start the server and return once it is ready. Raise AcmeTestServerError."""
        if self.running:
            return
        self._check_port_is_free()
        try:
            self._log_offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        try:
            self._process = runner.start(self._command(), log_path=str(self.log_path),
                                         env=self._environment())
        except runner.CommandNotFound:
            raise AcmeTestServerError(f"{self.program} is not installed (Debian package "
                                      "pebble)") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            returncode = self._process.poll()
            if returncode is not None:
                self._process = None
                raise AcmeTestServerError(f"{self.program} exited with code {returncode}:\n"
                                          f"{self._log_tail()}")
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise AcmeTestServerError(f"{self.program} was not ready within {timeout:g} s:\n"
                                  f"{self._log_tail()}")

    def stop(self, timeout: float = 10) -> None:
        """Stop the process this object started, by its pid: SIGTERM, then SIGKILL."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self._process = None


class ChallengeDns(_TestProcess):
    """pebble-challtestsrv as a DNS server only: every A query answers 127.0.0.1."""

    program = CHALLENGE_SERVER

    def __init__(self, directory: Path, port: int, management_port: int) -> None:
        super().__init__(directory, port)
        self.management_port = management_port

    def _command(self) -> list[str]:
        # Every listener off but the DNS and its management API (which only loopback reaches);
        # no AAAA answer, so pebble dials the IPv4 loopback where Caddy listens.
        return [CHALLENGE_SERVER, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                "-dns01", f"127.0.0.1:{self.port}", "-http01", "", "-https01", "",
                "-tlsalpn01", "", "-management", f"127.0.0.1:{self.management_port}"]

    def _ready(self) -> bool:
        # The management API opens after the DNS listeners.
        return _port_answers(self.port) and _port_answers(self.management_port)


class Pebble(_TestProcess):
    """pebble on 127.0.0.1: ACME on ``port``, management on ``management_port``.

    It validates HTTP-01 challenges on ``http_port`` of the address its DNS gives
    (127.0.0.1): the HTTP port of the Caddy under test.
    """

    program = PEBBLE

    def __init__(self, directory: Path, *, port: int, management_port: int, http_port: int,
                 tls_port: int, dns_port: int) -> None:
        super().__init__(directory, port)
        self.management_port = management_port
        self.http_port = http_port
        self.tls_port = tls_port
        self.dns_port = dns_port
        self.https_root, certificate, key = write_test_ca(directory)
        self.config_path = directory / "pebble.json"
        self.config_path.write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(certificate),
            "privateKey": str(key),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}, indent=1), encoding="utf-8")

    @property
    def directory_url(self) -> str:
        """The ACME directory a client starts from."""
        return f"https://127.0.0.1:{self.port}/dir"

    def _command(self) -> list[str]:
        return [PEBBLE, "-config", str(self.config_path), "-dnsserver",
                f"127.0.0.1:{self.dns_port}", "-strict=false"]

    def _environment(self) -> dict[str, str]:
        # No random sleeps before validating, and no "bad nonce" answers to good nonces:
        # speed and determinism; the validation itself stays real.
        environment = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        environment.pop("PEBBLE_VA_ALWAYS_VALID", None)
        return environment

    def _ready(self) -> bool:
        try:
            self.management_get("/roots/0")
        except OSError:
            return False
        return _port_answers(self.port)

    def management_get(self, path: str) -> bytes:
        """GET ``path`` from the management API over its HTTPS (verified); return the body.

        Raise OSError (ssl.SSLError included) when it does not answer 200.
        """
        context = ssl.create_default_context(cafile=str(self.https_root))
        connection = http.client.HTTPSConnection("127.0.0.1", self.management_port,
                                                 context=context, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        except http.client.HTTPException as error:
            raise OSError(f"pebble management {path}: {error}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise OSError(f"pebble management {path}: {response.status}")
        return body

    def issuing_roots(self) -> str:
        """Return (PEM) the root that pebble's certificates chain to, made at its start."""
        return self.management_get("/roots/0").decode("ascii")

    def intermediate(self) -> x509.Certificate:
        """Return the intermediate certificate that signs what pebble issues."""
        return x509.load_pem_x509_certificate(self.management_get("/intermediates/0"))

    def roots_path(self) -> Path:
        """Return a PEM file of pebble's issuing root, for clients to verify against."""
        path = self.directory / "issuing-roots.pem"
        if not path.exists():
            path.write_text(self.issuing_roots(), encoding="ascii")
        return path


@pytest.fixture(scope="session")
def pebble() -> Iterator[Pebble]:
    """Yield a pebble ACME server for the session, with its DNS server; both stopped by pid.

    Raise AcmeTestServerError (a test error, not a skip) when either does not start.
    """
    directory = Path(tempfile.mkdtemp(prefix="chaton-pebble-"))
    dns = ChallengeDns(directory, free_port(), free_port())
    server = Pebble(directory, port=free_port(), management_port=free_port(),
                    http_port=free_port(), tls_port=free_port(), dns_port=dns.port)
    try:
        dns.start()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            dns.stop()
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def caddy(pebble: Pebble, monkeypatch: pytest.MonkeyPatch) -> Iterator[ManagedCaddy]:
    """Yield a running Caddy on free loopback ports whose ACME CA is the session's pebble.

    ``settings.CHATON.proxy`` points at it for the test: admin API, HTTPS on a
    free port, HTTP on ``pebble.http_port`` (where pebble validates). Its
    certificates are stored in the test run's data directory, so the next
    test's Caddy finds them. Raise CaddyStartError when it does not start.
    """
    from django.conf import settings as django_settings

    from chaton.project.config import ProxyConfig

    directory = Path(tempfile.mkdtemp(prefix="chaton-caddy-"))
    server = ManagedCaddy(directory, admin_port=free_port())
    proxy = ProxyConfig()
    proxy.managed = False  # the fixture runs it, not `chaton serve`
    proxy.admin_url = server.admin_url
    proxy.http_port = pebble.http_port
    proxy.https_port = free_port()
    proxy.acme_ca = pebble.directory_url
    proxy.acme_ca_root = str(pebble.https_root)
    proxy.acme_email = "admin@chaton.test"
    proxy.log_file = str(server.log_path)  # where a failed certificate's reason is read
    monkeypatch.setattr(django_settings.CHATON, "proxy", proxy)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fake_proxy() -> Iterator[FakeCaddyAdmin]:
    """Yield the in-memory Caddy that every proxy call of the test goes to."""
    from chaton.adapters.caddy import use_caddy

    fake = FakeCaddyAdmin()
    with use_caddy(fake):
        yield fake


# -- HTTPS as a browser would see it ---------------------------------------------------------------


@dataclass(frozen=True)
class HttpsAnswer:
    """An HTTPS answer and the certificate the server presented."""

    status: int
    body: bytes
    certificate: x509.Certificate

    @property
    def issuer(self) -> x509.Name:
        return self.certificate.issuer


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to ``address`` that speaks to the server as ``domain`` (SNI, Host,
    the name verified), as a client whose DNS gave ``address`` for ``domain``."""

    def __init__(self, domain: str, port: int, *, address: str, context: ssl.SSLContext,
                 timeout: float) -> None:
        super().__init__(domain, port, context=context, timeout=timeout)
        self._address = address
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), timeout=self.timeout)
        try:
            self.sock = self._context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def https_get(domain: str, port: int, *, roots: Path, path: str = "/",
              address: str = "127.0.0.1", timeout: float = 5.0) -> HttpsAnswer:
    """GET ``https://domain:port/path`` from ``address``, trusting only the PEM roots given.

    Return the status, body and the certificate presented. Raise ssl.SSLError
    (a bad or missing certificate) or another OSError (nothing listens).
    """
    context = ssl.create_default_context(cafile=str(roots))
    connection = _PinnedHTTPSConnection(domain, port, address=address, context=context,
                                        timeout=timeout)
    try:
        connection.connect()
        # Read before the request: an answer that closes the connection drops the socket.
        assert isinstance(connection.sock, ssl.SSLSocket)
        der = connection.sock.getpeercert(binary_form=True)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    except http.client.HTTPException as error:
        raise OSError(f"https://{domain}:{port}{path}: {error!r}") from None
    finally:
        connection.close()
    assert der is not None
    return HttpsAnswer(response.status, body, x509.load_der_x509_certificate(der))


def wait_for_https(domain: str, port: int, *, roots: Path, expect: bytes, path: str = "/",
                   timeout: float = 30.0) -> HttpsAnswer:
    """Poll ``https://domain:port/path`` until it answers 200 with ``expect`` in its body.

    Return that answer. Raise AssertionError naming the last failure after
    ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            answer = https_get(domain, port, roots=roots, path=path, timeout=2.0)
            if answer.status == 200 and expect in answer.body:
                return answer
            last = f"{answer.status} {answer.body[:200]!r}"
        except OSError as error:
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"https://{domain}:{port}{path} did not answer {expect!r} "
                                 f"within {timeout:g} s; last: {last}")
        time.sleep(0.05)
