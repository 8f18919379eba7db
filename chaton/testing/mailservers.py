"""Real mail servers for the tests: OpenDKIM and Postfix (Debian's packages) on loopback ports.

:class:`OpenDkimServer` runs ``opendkim`` in the foreground (``-f``: the fixture owns its pid)
as a signing milter on ``inet:<port>@127.0.0.1``, with its own configuration file, KeyTable,
SigningTable (``refile:``), key folder and pid file under a folder of its own; the signer
adapter (:mod:`chaton.adapters.opendkim`) writes the tables there and reloads it (SIGUSR1).

:class:`PostfixServer` runs a Postfix instance of its own (``postfix -c <folder> start-fg``:
its own ``main.cf``, ``master.cf``, queue and data folders, never the system's instance) whose
``smtpd`` listens on a loopback port with STARTTLS, passes every mail through the milter and
relays it to a given SMTP server (the suite's catcher): send through Postfix, OpenDKIM signs,
the catcher receives the signed mail.

The fixtures: ``opendkim_server`` (session) and ``postfix_relay`` (per test, relaying to
that test's ``smtp_catcher`` through the session's OpenDKIM). A failure to start is an error,
never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from chaton.core.servers import LoopbackServer, free_port

if TYPE_CHECKING:
    from chaton.testing.probe_targets import Certificates
    from chaton.testing.pytest_plugin import SmtpCatcher


class MailServerError(RuntimeError):
    pass


@cache
def rsa_key_pem(index: int, bits: int = 2048) -> str:
    """Return test RSA private key number ``index`` (PEM, PKCS#8), made once per process."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _wait_for_port(server: LoopbackServer, timeout: float, what: str) -> None:
    """Return once 127.0.0.1:server.port accepts a connection; raise the server's error
    (with the end of its log) when the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if not server.running:
            raise server.error(f"cannot start {what}: it exited\n{server._log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.3):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise server.error(f"{what} did not listen on 127.0.0.1:{server.port} within "
                               f"{timeout:g} s\n{server._log_tail()}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes] | None, timeout: float, grace: float | None = None
          ) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout if grace is None else grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class OpenDkimServer(LoopbackServer):
    """opendkim signing as a milter on 127.0.0.1:``port``; its tables in ``directory``."""

    program: ClassVar[str] = "opendkim"
    error: ClassVar[type[Exception]] = MailServerError

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self._process = None
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        return self.directory / "opendkim.log"

    @property
    def config_dir(self) -> Path:
        """The folder the signer adapter writes: KeyTable, SigningTable, keys/."""
        return self.directory

    @property
    def pid_file(self) -> Path:
        return self.directory / "opendkim.pid"

    @property
    def milter(self) -> str:
        """The milter address, as Postfix's ``smtpd_milters`` takes it."""
        return f"inet:127.0.0.1:{self.port}"

    def _write_configuration(self) -> Path:
        (self.directory / "keys").mkdir(parents=True, exist_ok=True)
        for table in ("KeyTable", "SigningTable"):
            path = self.directory / table
            if not path.exists():
                path.write_text("", encoding="utf-8")
        configuration = self.directory / "opendkim.conf"
        configuration.write_text(
            "Syslog no\n"
            "Background no\n"
            "Mode s\n"
            f"Socket inet:{self.port}@127.0.0.1\n"
            f"PidFile {self.pid_file}\n"
            f"KeyTable file:{self.directory / 'KeyTable'}\n"
            f"SigningTable refile:{self.directory / 'SigningTable'}\n"
            "Canonicalization relaxed/simple\n"
            "MultipleSignatures yes\n"
            "InternalHosts 127.0.0.0/8\n"
            "OversignHeaders From\n"
            # The fixture runs as root in a folder of its own: no ownership checks on keys.
            "RequireSafeKeys no\n",
            encoding="utf-8")
        return configuration

    def start(self, timeout: float = 10) -> None:
        """Write the configuration and start opendkim; return when its milter port answers.

        Raise MailServerError (with the end of its output) when it does not.
        """
        self._check_port_is_free()
        configuration = self._write_configuration()
        opendkim = shutil.which("opendkim") or "/usr/sbin/opendkim"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen([opendkim, "-f", "-x", str(configuration)],
                                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        _wait_for_port(self, timeout, "opendkim")

    def stop(self, timeout: float = 10) -> None:
        """Stop the opendkim this object started (SIGTERM, then SIGKILL after a second: the
        milter library waits seconds for its threads, and a test signer has nothing to save)."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGCONT)
        _stop(self._process, timeout, grace=1.0)
        self._process = None

    def pause(self) -> None:
        """Stop it reading signals (SIGSTOP): a signer that does not reload."""
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGCONT)


#: The services a relay-only Postfix needs, none chrooted (the instance has its own folders).
MASTER_CF = """\
{listen}  inet  n  -  n  -  -  smtpd
pickup    unix  n  -  n  60  1  pickup
cleanup   unix  n  -  n  -  0  cleanup
qmgr      unix  n  -  n  300  1  qmgr
tlsmgr    unix  -  -  n  1000?  1  tlsmgr
rewrite   unix  -  -  n  -  -  trivial-rewrite
bounce    unix  -  -  n  -  0  bounce
defer     unix  -  -  n  -  0  bounce
trace     unix  -  -  n  -  0  bounce
verify    unix  -  -  n  -  1  verify
flush     unix  n  -  n  1000?  0  flush
proxymap  unix  -  -  n  -  -  proxymap
smtp      unix  -  -  n  -  -  smtp
relay     unix  -  -  n  -  -  smtp
showq     unix  n  -  n  -  -  showq
error     unix  -  -  n  -  -  error
retry     unix  -  -  n  -  -  error
discard   unix  -  -  n  -  -  discard
anvil     unix  -  -  n  -  1  anvil
scache    unix  -  -  n  -  1  scache
postlog   unix-dgram  n  -  n  -  1  postlogd
"""


class PostfixServer(LoopbackServer):
    """A Postfix instance of its own: smtpd on 127.0.0.1:``port`` (STARTTLS when given a
    certificate), every mail through ``milter``, relayed to 127.0.0.1:``relay_port``."""

    program: ClassVar[str] = "postfix"
    error: ClassVar[type[Exception]] = MailServerError

    def __init__(self, directory: Path, port: int, *, relay_port: int, milter: str | None,
                 certificate: Path | None = None, key: Path | None = None,
                 hostname: str = "mail.chaton.test", implicit_tls_port: int | None = None
                 ) -> None:
        self.directory = directory
        self.port = port
        self.relay_port = relay_port
        self.milter = milter
        self.certificate = certificate
        self.key = key
        self.hostname = hostname
        #: A second smtpd speaking TLS from the start (as on 465), when given a certificate.
        self.implicit_tls_port = implicit_tls_port
        self._process = None
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        return self.directory / "maillog"

    def _write_configuration(self) -> None:
        for name in ("queue", "data"):
            (self.directory / name).mkdir(parents=True, exist_ok=True)
        # The master's lock and the caches are the postfix user's (postfix-script makes the
        # queue's own folders).
        shutil.chown(self.directory / "data", "postfix", "postfix")
        # The postfix user walks down to its queue.
        for folder in (self.directory, *self.directory.parents):
            if folder == Path("/"):
                break
            if (folder.stat().st_mode & 0o005) != 0o005 and folder.owner() == "root" \
                    and str(folder).startswith(tempfile.gettempdir()):
                folder.chmod(folder.stat().st_mode | 0o755)
        milters = self.milter or ""
        tls = ""
        if self.certificate is not None and self.key is not None:
            tls = (f"smtpd_tls_cert_file = {self.certificate}\n"
                   f"smtpd_tls_key_file = {self.key}\n"
                   "smtpd_tls_security_level = may\n")
        (self.directory / "main.cf").write_text(
            "compatibility_level = 3.6\n"
            f"queue_directory = {self.directory / 'queue'}\n"
            f"data_directory = {self.directory / 'data'}\n"
            "mail_owner = postfix\n"
            "setgid_group = postdrop\n"
            f"myhostname = {self.hostname}\n"
            f"smtpd_banner = $myhostname ESMTP\n"
            "mydestination =\n"
            "local_recipient_maps =\n"
            "alias_maps =\n"
            "alias_database =\n"
            "inet_interfaces = 127.0.0.1\n"
            "inet_protocols = ipv4\n"
            "mynetworks = 127.0.0.0/8\n"
            "smtpd_relay_restrictions = permit_mynetworks, reject\n"
            f"relayhost = [127.0.0.1]:{self.relay_port}\n"
            "smtp_tls_security_level = none\n"
            "smtputf8_enable = no\n"
            f"smtpd_milters = {milters}\n"
            f"non_smtpd_milters = {milters}\n"
            # A signer that does not answer holds mail back: nothing leaves unsigned.
            "milter_default_action = tempfail\n"
            f"maillog_file = {self.log_path}\n"
            f"maillog_file_prefixes = {self.directory}\n"
            "queue_run_delay = 1s\n"
            "minimal_backoff_time = 1s\n"
            "maximal_backoff_time = 2s\n"
            + tls,
            encoding="utf-8")
        master = MASTER_CF.format(listen=f"127.0.0.1:{self.port}")
        if self.implicit_tls_port is not None and tls:
            master += (f"127.0.0.1:{self.implicit_tls_port}  inet  n  -  n  -  -  smtpd\n"
                       "  -o smtpd_tls_wrappermode=yes\n")
        (self.directory / "master.cf").write_text(master, encoding="utf-8")

    def _postfix(self, *arguments: str) -> list[str]:
        return [shutil.which("postfix") or "/usr/sbin/postfix", "-c", str(self.directory),
                *arguments]

    def start(self, timeout: float = 20) -> None:
        """Write the instance's configuration and start its master in the foreground; return
        when smtpd answers. Raise MailServerError (with the end of its log) when it does not."""
        self._check_port_is_free()
        self._write_configuration()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with (self.directory / "postfix.out").open("ab") as output:
            self._process = subprocess.Popen(self._postfix("start-fg"), stdout=output,
                                             stderr=output, stdin=subprocess.DEVNULL)
        _wait_for_port(self, timeout, "postfix")

    def _log_tail(self, lines: int = 20) -> str:
        output = self.directory / "postfix.out"
        extra = output.read_text(errors="replace")[-2000:] if output.exists() else ""
        return f"{super()._log_tail(lines)}\n{extra}"

    def _master_pid(self) -> int | None:
        """The pid of this instance's master, from its own pid file, when it runs."""
        try:
            pid = int((self.directory / "queue" / "pid" / "master.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def stop(self, timeout: float = 10) -> None:
        """Stop the master this object started, by the pid in its instance's pid file
        (SIGTERM: it stops its children; the ``postfix start-fg`` command that waits for it
        does not pass the signal on), then that command."""
        master = self._master_pid()
        if master is not None:
            os.kill(master, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._master_pid() == master and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._master_pid() == master:
                os.kill(master, signal.SIGKILL)
        _stop(self._process, timeout)
        self._process = None

    def send(self, message: EmailMessage, timeout: float = 10) -> None:
        """Submit ``message`` to this Postfix over SMTP (STARTTLS when it offers it)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=timeout) as client:
            client.ehlo("client.chaton.test")
            if client.has_extn("starttls"):
                import ssl
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                client.starttls(context=context)
                client.ehlo("client.chaton.test")
            client.send_message(message)


def wait_for_mail(catcher: SmtpCatcher, count: int, timeout: float = 15) -> None:
    """Return once ``catcher`` holds ``count`` messages; raise AssertionError when it does not."""
    deadline = time.monotonic() + timeout
    while len(catcher.messages) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(catcher.messages)} mail(s) caught, {count} expected")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def opendkim_server() -> Iterator[OpenDkimServer]:
    """Yield an opendkim milter for the session, with empty tables."""
    directory = Path(tempfile.mkdtemp(prefix="chaton-opendkim-"))
    server = OpenDkimServer(directory, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def mail_certificates() -> Iterator[Certificates]:
    """Yield a CA and server certificates for 127.0.0.1 and localhost."""
    from chaton.testing.probe_targets import make_certificates

    directory = Path(tempfile.mkdtemp(prefix="chaton-mail-tls-"))
    try:
        yield make_certificates(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postfix_relay(smtp_catcher: SmtpCatcher, opendkim_server: OpenDkimServer,
                  mail_certificates: Certificates) -> Iterator[PostfixServer]:
    """Yield a Postfix with STARTTLS signing through the session's OpenDKIM and relaying to
    this test's SMTP catcher."""
    directory = Path(tempfile.mkdtemp(prefix="chaton-postfix-"))
    server = PostfixServer(directory, free_port(), relay_port=smtp_catcher.port,
                           milter=opendkim_server.milter,
                           certificate=mail_certificates.valid.certificate,
                           key=mail_certificates.valid.key)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def self_signed_certificate(folder: Path, names: list[str], *, days: int = 90
                            ) -> tuple[Path, Path]:
    """Write a self-signed certificate (its own CA: give it as the CA bundle) for ``names``
    (DNS names, or IP addresses) and its key into ``folder``; return (certificate, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                  critical=True)
                   .sign(key, hashes.SHA256()))
    certificate_path, key_path = folder / "server.crt", folder / "server.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return certificate_path, key_path


def zone_text(origin: str, records: list[Any], *, serial: int = 1) -> str:
    """Given a zone's origin and record sets (``name``, ``type``, ``ttl``, ``values``), return
    a zone file: SOA, NS on 127.0.0.1, then the records (TXT values split in strings)."""
    from chaton.adapters.dns import split_txt

    origin = origin.rstrip(".") + "."
    lines = [f"$ORIGIN {origin}", "$TTL 300",
             f"@ SOA ns1.{origin} hostmaster.{origin} {serial} 3600 900 604800 300",
             f"@ NS ns1.{origin}", f"ns1.{origin} A 127.0.0.1"]
    for record in records:
        for value in record.values:
            if record.type == "TXT":
                value = " ".join('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
                                 for part in split_txt(value))
            lines.append(f"{record.name} {record.ttl} {record.type} {value}")
    return "\n".join(lines) + "\n"


class PolicyServer:
    """An HTTPS server on 127.0.0.1 serving ``/.well-known/mta-sts.txt`` per Host header
    (``policies``: host → text), in a thread of its own."""

    def __init__(self, certificate: Path, key: Path, policies: dict[str, str]) -> None:
        import http.server
        import ssl
        import threading

        served = policies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").split(":")[0]
                body = served.get(host)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
