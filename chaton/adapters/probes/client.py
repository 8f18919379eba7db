"""The real probe engine: one asyncio loop per cycle, many probes at once.

Every probe runs under its own timeout (``asyncio.timeout``) and the cycle
under a concurrency limit (a semaphore), so a probe that hangs ends at its
timeout and delays nobody: a cycle in which every probe hangs takes about the
longest timeout, not their sum. HTTP goes through one ``httpx.AsyncClient``
per cycle (per TLS setting), DNS through dnspython's asynchronous queries,
SMTP and IMAP over asyncio streams, LDAP (python-ldap blocks) in a bounded
thread pool that lives as long as the engine.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import httpx
import ldap
from cryptography import x509

from chaton.adapters.probes import (
    Condition,
    ProbeError,
    ProbeFailed,
    ProbeResult,
    ProbeSpec,
    connect_to,
    dns_server,
    parse_conditions,
    split_host_port,
    validate_spec,
)

#: The most of a body read for [BODY]; the rest is not downloaded.
MAX_BODY_BYTES = 1 << 20
#: How probes introduce themselves (HTTP User-Agent, SMTP EHLO).
USER_AGENT = "Chaton-monitor/1"
EHLO_NAME = "chaton-monitor.invalid"
#: A kind's conditions when a spec gives none (the others: the check itself must succeed).
DEFAULT_CONDITIONS: dict[str, tuple[str, ...]] = {"http": ("[STATUS] < 400",)}


@dataclass
class Observation:
    """What a checker found: the placeholders' values, and what goes into the result."""

    context: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    cert_expires_at: datetime | None = None
    #: A failure the conditions do not express (a DNS answer missing from ``expected``).
    failure: str | None = None


@dataclass
class _Cycle:
    """What the probes of one cycle share."""

    stack: AsyncExitStack
    concurrency: int
    ldap_pool: ThreadPoolExecutor
    now: datetime
    http_clients: dict[tuple[bool, str, str], httpx.AsyncClient] = field(default_factory=dict)
    tls_contexts: dict[tuple[bool, str], ssl.SSLContext] = field(default_factory=dict)

    def tls_context(self, spec: ProbeSpec) -> ssl.SSLContext:
        """Return the cycle's SSL context for the spec's ``verify`` and ``ca_file``: loading
        a CA bundle costs milliseconds, so each is loaded once a cycle."""
        key = (bool(spec.options.get("verify", True)), str(spec.options.get("ca_file", "")))
        if key not in self.tls_contexts:
            self.tls_contexts[key] = tls_context(*key)
        return self.tls_contexts[key]

    async def http_client(self, verify: bool, ca_file: str, origin: str) -> httpx.AsyncClient:
        """Return the cycle's client for these TLS settings and this origin, made on first use.

        One per origin: httpcore's pool looks at every connection it holds for each request,
        so one pool for a whole cycle's sites costs time in their square.
        """
        key = (verify, ca_file, origin)
        if key not in self.http_clients:
            limits = httpx.Limits(max_connections=self.concurrency,
                                  max_keepalive_connections=self.concurrency)
            if key[:2] not in self.tls_contexts:
                self.tls_contexts[key[:2]] = tls_context(verify, ca_file)
            context = self.tls_contexts[key[:2]]
            client = httpx.AsyncClient(verify=context,
                                       limits=limits, trust_env=False,
                                       # each probe's own asyncio.timeout ends it
                                       timeout=None,  # noqa: S113
                                       headers={"User-Agent": USER_AGENT})
            self.http_clients[key] = await self.stack.enter_async_context(client)
        return self.http_clients[key]


def tls_context(verify: bool = True, ca_file: str = "") -> ssl.SSLContext:
    """Given whether to verify and a CA bundle's path (empty: the system's), return a client
    SSL context."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def certificate_expiry(ssl_object: Any) -> datetime | None:
    """Given an ssl.SSLObject (or SSLSocket), return the peer certificate's notAfter, aware
    UTC; None without one."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    expires: datetime = x509.load_der_x509_certificate(der).not_valid_after_utc
    return expires


def describe(failure: BaseException, timeout: float) -> str:
    """Given an exception a probe raised and its timeout, return a short reading of it for
    people, with nothing of the spec's secrets."""
    seen: set[int] = set()
    current: BaseException | None = failure
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ProbeError):
            return str(current)
        if isinstance(current, TimeoutError | httpx.TimeoutException):
            return f"timed out after {timeout:g} s"
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"certificate not trusted: {current.verify_message}"
        if isinstance(current, ssl.SSLError):
            return f"TLS error: {current.reason or current.strerror}"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ConnectionResetError | BrokenPipeError):
            return "connection reset by the server"
        if isinstance(current, asyncio.IncompleteReadError):
            return "the server closed the connection"
        if isinstance(current, OSError) and current.strerror:
            return f"cannot connect: {current.strerror}"
        current = current.__cause__ or current.__context__
    if isinstance(failure, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol or closed the connection"
    if isinstance(failure, httpx.HTTPError):
        return f"HTTP error: {type(failure).__name__}"
    return f"unexpected error: {type(failure).__name__}"


def _milliseconds_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _cert_context(observation: Observation, now: datetime) -> None:
    if observation.cert_expires_at is not None:
        observation.context["CERTIFICATE_EXPIRATION"] = (
            observation.cert_expires_at - now).total_seconds() * 1000


def _server_name(spec: ProbeSpec, host: str) -> str:
    return str(spec.options.get("server_name") or host)


# The checkers ---------------------------------------------------------------------------


async def check_http(spec: ProbeSpec, cycle: _Cycle) -> Observation:
    """GET (or ``method``) the URL; [STATUS], [BODY] (at most 1 MiB), [IP], the certificate.

    With ``connect_to``, the connection goes to that address; the URL's host stays the
    Host header, the SNI and the name the certificate is checked against.
    """
    url = httpx.URL(spec.target.strip())
    headers = {str(name): str(value) for name, value in
               dict(spec.options.get("headers") or {}).items()}
    extensions: dict[str, Any] = {}
    origin = f"{url.scheme}://{url.host}:{url.port}"
    routed = connect_to(spec)
    if routed is not None:
        headers.setdefault("Host", url.netloc.decode("ascii"))
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
        # A pool of its own per name: a connection opened for one name (its SNI, its
        # certificate checked for it) never carries another name's requests.
        origin = f"{origin}@{routed[0]}:{routed[1]}"
        url = url.copy_with(host=routed[0], port=routed[1])
    client = await cycle.http_client(bool(spec.options.get("verify", True)),
                                     str(spec.options.get("ca_file", "")), origin)
    observation = Observation()
    method = str(spec.options.get("method", "GET")).upper()
    async with client.stream(method, url, headers=headers, extensions=extensions,
                             follow_redirects=bool(spec.options.get("follow_redirects",
                                                                    False))) as response:
        stream = response.extensions.get("network_stream")
        if stream is not None:
            observation.cert_expires_at = certificate_expiry(stream.get_extra_info("ssl_object"))
            address = stream.get_extra_info("server_addr")
            if address:
                observation.context["IP"] = str(address[0])
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) >= MAX_BODY_BYTES:
                break
        observation.status = response.status_code
        observation.context["STATUS"] = response.status_code
        observation.context["BODY"] = bytes(body[:MAX_BODY_BYTES]).decode(
            response.encoding or "utf-8", errors="replace")
    return observation


async def check_tcp(spec: ProbeSpec, cycle: _Cycle) -> Observation:
    """Open a connection, then close it: [CONNECTED], [IP]."""
    host, port = split_host_port(spec.target)
    _reader, writer = await asyncio.open_connection(host, port)
    observation = Observation(context={"IP": str(writer.get_extra_info("peername")[0])})
    await _close(writer)
    return observation


async def check_tls(spec: ProbeSpec, cycle: _Cycle) -> Observation:
    """A TLS handshake (``server_name`` for SNI and the name checked): the certificate.
    With ``connect_to``, the handshake is with that address, for the target's name."""
    host, port = split_host_port(spec.target)
    address, address_port = connect_to(spec) or (host, port)
    _reader, writer = await asyncio.open_connection(
        address, address_port, ssl=cycle.tls_context(spec),
        server_hostname=_server_name(spec, host))
    observation = Observation(context={"IP": str(writer.get_extra_info("peername")[0])})
    observation.cert_expires_at = certificate_expiry(writer.get_extra_info("ssl_object"))
    await _close(writer)
    return observation


async def check_dns(spec: ProbeSpec, cycle: _Cycle) -> Observation:
    """Ask ``server`` (else the system's first resolver) for ``record`` of the name:
    [DNS_RCODE], [BODY] (the answers, one a line), [IP] (the first); every ``expected``
    answer must be there."""
    record = str(spec.options.get("record", "A")).upper()
    try:
        record_type = dns.rdatatype.from_text(record)
    except dns.rdatatype.UnknownRdatatype:
        raise ProbeFailed(f"{record!r} is not a DNS record type") from None
    if spec.options.get("server"):
        host, port = dns_server(str(spec.options["server"]))
    else:
        host, port = str(dns.resolver.get_default_resolver().nameservers[0]), 53
    query = dns.message.make_query(spec.target.strip(), record_type)
    response, _ = await dns.asyncquery.udp_with_fallback(query, host, port=port,
                                                         timeout=spec.timeout)
    answers: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype != record_type:
            continue
        for rdata in rrset:
            answers.append(_dns_text(rdata))
    observation = Observation(context={"DNS_RCODE": dns.rcode.to_text(response.rcode()),
                                       "BODY": "\n".join(answers)})
    if answers:
        observation.context["IP"] = answers[0]
    expected = spec.options.get("expected") or []
    if isinstance(expected, str):
        expected = [expected]
    found = {_dns_normal(answer) for answer in answers}
    missing = [str(value) for value in expected if _dns_normal(str(value)) not in found]
    if missing:
        observation.failure = (f"DNS {record} answer {', '.join(answers) or '(none)'}; "
                               f"expected {', '.join(missing)}")
    return observation


def _dns_text(rdata: Any) -> str:
    strings = getattr(rdata, "strings", None)
    if strings is not None:  # TXT: the text itself, not its quoted zone-file form
        return "".join(part.decode("utf-8", errors="replace") for part in strings)
    return str(rdata.to_text())


def _dns_normal(answer: str) -> str:
    return " ".join(answer.split()).rstrip(".").lower()


async def _read_smtp_reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """Read one SMTP reply, every line of it; return (code, texts). Raise ProbeFailed."""
    lines: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw:
            raise ProbeFailed("the SMTP server closed the connection")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if len(line) < 3 or not line[:3].isdigit():
            raise ProbeFailed(f"not an SMTP reply: {line[:60]!r}")
        lines.append(line[4:])
        if len(line) == 3 or line[3] == " ":
            return int(line[:3]), lines


async def check_smtp(spec: ProbeSpec, cycle: _Cycle) -> Observation:
    """The banner (its code in [STATUS]), EHLO, STARTTLS when ``starttls`` (or TLS from the
    start with ``implicit_tls``), EHLO again, QUIT."""
    host, port = split_host_port(spec.target)
    implicit = bool(spec.options.get("implicit_tls", False))
    context = cycle.tls_context(spec)
    if implicit:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=_server_name(spec, host))
    else:
        reader, writer = await asyncio.open_connection(host, port)
    observation = Observation()
    try:
        code, texts = await _read_smtp_reply(reader)
        observation.status = code
        observation.context.update(STATUS=code, BODY=" ".join(texts))
        if code != 220:
            raise ProbeFailed(f"SMTP banner {code} {' '.join(texts)[:80]}")
        writer.write(f"EHLO {EHLO_NAME}\r\n".encode())
        code, texts = await _read_smtp_reply(reader)
        if code != 250:
            raise ProbeFailed(f"SMTP EHLO answered {code}")
        if spec.options.get("starttls", False) and not implicit:
            if not any(text.upper().split()[:1] == ["STARTTLS"] for text in texts):
                raise ProbeFailed("the SMTP server does not offer STARTTLS")
            writer.write(b"STARTTLS\r\n")
            code, _ = await _read_smtp_reply(reader)
            if code != 220:
                raise ProbeFailed(f"SMTP STARTTLS answered {code}")
            await writer.start_tls(context, server_hostname=_server_name(spec, host))
            writer.write(f"EHLO {EHLO_NAME}\r\n".encode())
            code, _ = await _read_smtp_reply(reader)
            if code != 250:
                raise ProbeFailed(f"SMTP EHLO after STARTTLS answered {code}")
        observation.cert_expires_at = certificate_expiry(writer.get_extra_info("ssl_object"))
        writer.write(b"QUIT\r\n")
    finally:
        await _close(writer)
    return observation


async def check_imap(spec: ProbeSpec, cycle: _Cycle) -> Observation:
    """The greeting (``* OK``), over implicit TLS (the default), after STARTTLS, or in clear
    (``tls = "none"``); then LOGOUT."""
    host, port = split_host_port(spec.target)
    mode = str(spec.options.get("tls", "implicit"))
    context = cycle.tls_context(spec)
    if mode == "implicit":
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=_server_name(spec, host))
    else:
        reader, writer = await asyncio.open_connection(host, port)
    observation = Observation()
    try:
        greeting = (await reader.readline()).decode("utf-8", errors="replace").strip()
        observation.context["BODY"] = greeting
        if not greeting.upper().startswith(("* OK", "* PREAUTH")):
            raise ProbeFailed(f"IMAP greeting {greeting[:80]!r}" if greeting
                              else "the IMAP server closed the connection")
        if mode == "starttls":
            writer.write(b"c1 STARTTLS\r\n")
            answer = await _read_tagged(reader, "c1")
            if not answer.upper().startswith("C1 OK"):
                raise ProbeFailed(f"IMAP STARTTLS answered {answer[:80]!r}")
            await writer.start_tls(context, server_hostname=_server_name(spec, host))
        observation.cert_expires_at = certificate_expiry(writer.get_extra_info("ssl_object"))
        writer.write(b"c2 LOGOUT\r\n")
    finally:
        await _close(writer)
    return observation


async def _read_tagged(reader: asyncio.StreamReader, tag: str) -> str:
    """Read IMAP lines until the one tagged ``tag``; return it. Raise ProbeFailed."""
    while True:
        raw = await reader.readline()
        if not raw:
            raise ProbeFailed("the IMAP server closed the connection")
        line = raw.decode("utf-8", errors="replace").strip()
        if line.upper().startswith(tag.upper() + " "):
            return line


def _ldap_check(spec: ProbeSpec) -> None:
    """Bind (anonymously without ``bind_dn``) and read ``base`` (the root DSE without it).
    Blocking: runs in the engine's thread pool. Raise ProbeFailed or ldap's errors."""
    connection = ldap.initialize(spec.target.strip())
    try:
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, spec.timeout)
        connection.set_option(ldap.OPT_TIMEOUT, spec.timeout)
        connection.set_option(ldap.OPT_REFERRALS, 0)
        if spec.options.get("ca_file") or spec.options.get("verify") is False:
            if spec.options.get("ca_file"):
                connection.set_option(ldap.OPT_X_TLS_CACERTFILE, str(spec.options["ca_file"]))
            if spec.options.get("verify") is False:
                connection.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_NEVER)
            connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        try:
            connection.simple_bind_s(str(spec.options.get("bind_dn", "")),
                                     str(spec.options.get("password", "")))
        except ldap.INVALID_CREDENTIALS:
            raise ProbeFailed("LDAP bind refused: invalid credentials") from None
        except ldap.SERVER_DOWN:
            raise ProbeFailed("LDAP server unreachable") from None
        except ldap.TIMEOUT:
            raise TimeoutError from None
        except ldap.LDAPError as failure:
            raise ProbeFailed(f"LDAP bind failed: {type(failure).__name__}") from None
        try:
            connection.search_s(str(spec.options.get("base", "")), ldap.SCOPE_BASE,
                                "(objectClass=*)", ["1.1"])
        except ldap.NO_SUCH_OBJECT:
            raise ProbeFailed("LDAP base entry not found") from None
        except ldap.SERVER_DOWN:
            raise ProbeFailed("LDAP server unreachable") from None
        except ldap.TIMEOUT:
            raise TimeoutError from None
        except ldap.LDAPError as failure:
            raise ProbeFailed(f"LDAP search failed: {type(failure).__name__}") from None
    finally:
        try:
            connection.unbind_s()
        except ldap.LDAPError:
            pass  # the connection is gone already: nothing to close


async def check_ldap(spec: ProbeSpec, cycle: _Cycle) -> Observation:
    """An LDAP bind and a base search, in the engine's thread pool."""
    await asyncio.get_running_loop().run_in_executor(cycle.ldap_pool, _ldap_check, spec)
    return Observation()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1)
    except (OSError, TimeoutError, ssl.SSLError):
        pass  # closing is courtesy: the probe's outcome is known already


CHECKERS: dict[str, Callable[[ProbeSpec, _Cycle], Awaitable[Observation]]] = {
    "http": check_http, "tcp": check_tcp, "tls": check_tls, "dns": check_dns,
    "smtp": check_smtp, "imap": check_imap, "ldap": check_ldap,
}


# The engine ------------------------------------------------------------------------------


class AsyncProbeEngine:
    """Runs cycles of probes on asyncio (:class:`chaton.adapters.probes.ProbeEngine`).

    ``ldap_threads`` bounds the thread pool of the blocking LDAP checks; a check
    that outlives its timeout keeps its thread until python-ldap's own timeout
    (the probe's) ends it.
    """

    def __init__(self, *, ldap_threads: int = 8) -> None:
        self._ldap_pool = ThreadPoolExecutor(max_workers=ldap_threads,
                                             thread_name_prefix="probe-ldap")

    def run(self, specs: Sequence[ProbeSpec], *, concurrency: int = 200) -> list[ProbeResult]:
        """Given specs, run them and return one result per spec, in order (see ProbeEngine).

        Starts its own event loop: call it from a thread that runs none.
        """
        return asyncio.run(self.run_async(specs, concurrency=concurrency))

    async def run_async(self, specs: Sequence[ProbeSpec], *,
                        concurrency: int = 200) -> list[ProbeResult]:
        """The same as :meth:`run`, in a running event loop."""
        if not specs:
            return []
        concurrency = max(1, concurrency)
        semaphore = asyncio.Semaphore(concurrency)
        async with AsyncExitStack() as stack:
            cycle = _Cycle(stack, concurrency, self._ldap_pool, datetime.now(UTC))
            return list(await asyncio.gather(
                *(self._run_one(spec, cycle, semaphore) for spec in specs)))

    def close(self) -> None:
        """Let the LDAP threads go (those still blocked end at their own timeout)."""
        self._ldap_pool.shutdown(wait=False, cancel_futures=True)

    async def _run_one(self, spec: ProbeSpec, cycle: _Cycle,
                       semaphore: asyncio.Semaphore) -> ProbeResult:
        try:
            conditions = validate_spec(spec)
        except ProbeError as failure:
            return ProbeResult(spec.key, False, 0.0, f"bad probe: {failure}")
        if not spec.conditions:
            conditions = validate_conditions_default(spec.kind)
        async with semaphore:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(spec.timeout):
                    observation = await CHECKERS[spec.kind](spec, cycle)
            except Exception as failure:  # a probe's failure is a result
                return _unreachable(spec, conditions, failure, _milliseconds_since(started))
            duration_ms = _milliseconds_since(started)
        observation.context.setdefault("CONNECTED", True)
        observation.context["RESPONSE_TIME"] = duration_ms
        _cert_context(observation, cycle.now)
        error = next((failing for condition in conditions
                      if (failing := condition.failure(observation.context)) is not None),
                     None) or observation.failure
        return ProbeResult(spec.key, error is None, duration_ms, error or "",
                           observation.status, observation.cert_expires_at)


def validate_conditions_default(kind: str) -> list[Condition]:
    """Return the parsed conditions a kind checks when a spec gives none."""
    return parse_conditions(DEFAULT_CONDITIONS.get(kind, ()), kind)


def _unreachable(spec: ProbeSpec, conditions: list[Condition], failure: BaseException,
                 duration_ms: float) -> ProbeResult:
    """A probe that raised: failed with the error, unless its conditions expect the server
    down ([CONNECTED] == false) and all hold."""
    error = describe(failure, spec.timeout)
    if not isinstance(failure, ProbeFailed) and any(
            condition.placeholder == "CONNECTED" for condition in conditions):
        context = {"CONNECTED": False, "RESPONSE_TIME": duration_ms}
        failing = next((text for condition in conditions
                        if (text := condition.failure(context)) is not None), None)
        if failing is None:
            return ProbeResult(spec.key, True, duration_ms)
    return ProbeResult(spec.key, False, duration_ms, error)
