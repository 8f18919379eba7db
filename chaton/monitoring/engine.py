"""Where the monitoring app gets its probe engine: :func:`probe_engine`, :func:`use_probes`.

The engine's contract (``ProbeSpec``, ``ProbeResult``, ``parse_condition`` …)
is the probe adapter's, :mod:`chaton.adapters.probes`. Until that package is
merged, this module carries a small stand-in with the same names: a threaded
engine for the HTTP(S), TCP, TLS and LDAP kinds and the conditions on status,
body, response time, certificate expiry and connection. Replacing it means
importing those names from the adapter and :func:`real_engine` returning its
``AsyncProbeEngine``.

One option beyond the contract: ``connect_to`` (``"host:port"``) on an HTTP(S)
or TLS probe sends the connection there, with the target's host name as Host
and SNI (curl's ``--connect-to``): the derived probes of instances reach them
through the proxy Chaton configures, whatever the domain resolves to here.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import ldap

KINDS = ("http", "tcp", "tls", "dns", "smtp", "imap", "ldap")


@dataclass(frozen=True)
class ProbeSpec:
    key: str
    kind: str
    target: str
    conditions: tuple[str, ...] = ()
    timeout: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    key: str
    ok: bool
    duration_ms: float
    error: str = ""
    status: int | None = None
    cert_expires_at: dt.datetime | None = None


class ProbeError(Exception):
    """A probe's definition or the engine failed."""


class BadCondition(ProbeError, ValueError):
    """A condition that does not parse."""


_PLACEHOLDERS = ("STATUS", "BODY", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION", "CONNECTED",
                 "DNS_RCODE")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "contains")
_CONDITION = re.compile(r"^\s*\[(?P<name>[A-Z_]+)\]\s+(?P<op>==|!=|<=|>=|<|>|contains)\s+"
                        r"(?P<value>.+?)\s*$")


@dataclass(frozen=True)
class Condition:
    text: str
    name: str
    operator: str
    value: str


def parse_condition(text: str) -> Condition:
    """Given ``"[STATUS] == 200"``, return its parts. Raise BadCondition when it does not parse."""
    match = _CONDITION.match(text or "")
    if match is None:
        raise BadCondition(f"cannot read the condition {text!r}: expected "
                           f"\"[PLACEHOLDER] OPERATOR VALUE\", e.g. \"[STATUS] == 200\"")
    name = match["name"]
    if name not in _PLACEHOLDERS:
        raise BadCondition(f"unknown placeholder [{name}] in {text!r}: expected one of "
                           + ", ".join(f"[{known}]" for known in _PLACEHOLDERS))
    if name in ("STATUS", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION") \
            and match["op"] == "contains":
        raise BadCondition(f"[{name}] is a number: use ==, !=, <, <=, > or >= in {text!r}")
    if name == "CERTIFICATE_EXPIRATION":
        _hours(match["value"], text)
    elif name in ("STATUS", "RESPONSE_TIME"):
        try:
            float(match["value"])
        except ValueError:
            raise BadCondition(f"expected a number in {text!r}") from None
    return Condition(text.strip(), name, match["op"], match["value"])


def _hours(value: str, text: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(h|d)?", value.strip())
    if found is None:
        raise BadCondition(f"expected a duration such as 240h or 10d in {text!r}")
    return float(found[1]) * (24 if found[2] == "d" else 1)


def check_conditions(conditions: Sequence[str], context: Mapping[str, Any]) -> str | None:
    """Return None when every condition holds in ``context``, else the first failing one."""
    for text in conditions:
        condition = parse_condition(text)
        actual = context.get(condition.name)
        expected: Any = condition.value
        if condition.name == "CERTIFICATE_EXPIRATION":
            expected = _hours(condition.value, text)
        elif condition.name in ("STATUS", "RESPONSE_TIME"):
            expected = float(condition.value)
        elif condition.name == "CONNECTED":
            expected = condition.value.lower() == "true"
        held = _holds(actual, condition.operator, expected)
        if not held:
            shown = str(actual)[:80] if actual is not None else "none"
            return f"[{condition.name}] ({shown}) {condition.operator} {condition.value}"
    return None


def _holds(actual: Any, operator: str, expected: Any) -> bool:
    if actual is None:
        return False
    if operator == "contains":
        return str(expected) in str(actual)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    try:
        return comparisons[operator](actual, expected)
    except TypeError:
        return False


class ProbeEngine(Protocol):
    def run(self, specs: Sequence[ProbeSpec], *, concurrency: int = 200) -> list[ProbeResult]:
        ...


class ThreadedProbeEngine:
    """The stand-in engine: HTTP(S), TCP and TLS in a thread pool; other kinds answer an error."""

    def run(self, specs: Sequence[ProbeSpec], *, concurrency: int = 200) -> list[ProbeResult]:
        if not specs:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(specs), 32))) as pool:
            return list(pool.map(self._one, specs))

    def _one(self, spec: ProbeSpec) -> ProbeResult:
        started = time.monotonic()
        context: dict[str, Any] = {}
        status: int | None = None
        expires: dt.datetime | None = None
        try:
            if spec.kind == "http":
                verify: Any = spec.options.get("ca_file") or spec.options.get("verify", True)
                url, headers, extensions = _routed(spec)
                with httpx.Client(verify=verify, timeout=spec.timeout) as client:
                    response = client.request(str(spec.options.get("method", "GET")), url,
                                              headers=headers, extensions=extensions)
                status = response.status_code
                context.update(STATUS=status, BODY=response.text[:100_000])
                if spec.target.startswith("https://"):
                    expires = _certificate_expiry(spec)
            elif spec.kind in ("tcp", "tls"):
                host, _, port = spec.target.rpartition(":")
                with socket.create_connection((host, int(port)), timeout=spec.timeout):
                    pass
                if spec.kind == "tls":
                    expires = _certificate_expiry(spec)
            elif spec.kind == "ldap":
                _ldap_bind_and_search(spec)
            else:
                return ProbeResult(spec.key, False, 0.0, f"{spec.kind} probes need the engine")
        except (OSError, httpx.HTTPError, ssl.SSLError, ValueError, ldap.LDAPError) as error:
            return ProbeResult(spec.key, False, (time.monotonic() - started) * 1000,
                               _describe(error), status)
        duration = (time.monotonic() - started) * 1000
        context.update(RESPONSE_TIME=duration, CONNECTED=True)
        if expires is not None:
            context["CERTIFICATE_EXPIRATION"] = (
                expires - dt.datetime.now(dt.UTC)).total_seconds() / 3600
        failed = check_conditions(spec.conditions, context)
        return ProbeResult(spec.key, failed is None, duration, failed or "", status, expires)


def _routed(spec: ProbeSpec) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Return the URL to request, its headers and extensions: with ``connect_to``
    ("host:port"), the request goes there with the target's host as Host and SNI."""
    headers = dict(spec.options.get("headers", {}))
    connect_to = spec.options.get("connect_to")
    if not connect_to:
        return spec.target, headers, {}
    url = httpx.URL(spec.target)
    host, _, port = str(connect_to).rpartition(":")
    headers.setdefault("Host", url.host)
    routed = url.copy_with(host=host, port=int(port))
    return str(routed), headers, {"sni_hostname": url.host}


def _ldap_bind_and_search(spec: ProbeSpec) -> None:
    """Bind (anonymously without ``bind_dn``), then read the base entry. Raise LDAPError."""
    connection = ldap.initialize(spec.target)
    connection.set_option(ldap.OPT_NETWORK_TIMEOUT, spec.timeout)
    connection.set_option(ldap.OPT_TIMEOUT, spec.timeout)
    try:
        connection.simple_bind_s(str(spec.options.get("bind_dn", "")),
                                 str(spec.options.get("password", "")))
        base = str(spec.options.get("base", ""))
        if base:
            connection.search_ext_s(base, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"],
                                    timeout=int(spec.timeout))
    finally:
        connection.unbind_s()


def _describe(error: BaseException) -> str:
    if isinstance(error, ldap.LDAPError):
        details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        return str(details.get("desc", type(error).__name__))[:300]
    if isinstance(error, httpx.TimeoutException | TimeoutError | socket.timeout):
        return "timed out"
    return (str(error) or type(error).__name__)[:300]


def _certificate_expiry(spec: ProbeSpec) -> dt.datetime | None:
    """Return when the certificate of the probe's server expires (aware UTC)."""
    target = spec.target
    if target.startswith("https://"):
        url = httpx.URL(target)
        host, port, name = url.host, url.port or 443, url.host
        if spec.options.get("connect_to"):
            connect_host, _, connect_port = str(spec.options["connect_to"]).rpartition(":")
            host, port = connect_host, int(connect_port)
    else:
        host, _, port_text = target.rpartition(":")
        port, name = int(port_text), host
    context = ssl.create_default_context(cafile=spec.options.get("ca_file") or None)
    server_name = str(spec.options.get("server_name") or name)
    with socket.create_connection((host, port), timeout=spec.timeout) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as wrapped:
        certificate = wrapped.getpeercert()
    if not certificate or "notAfter" not in certificate:
        return None
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(certificate["notAfter"])),
                                     dt.UTC)


class FakeProbeEngine:
    """Canned results by key (a result, or a function of the spec); ok for any other key."""

    def __init__(self, results: dict[str, ProbeResult | Callable[[ProbeSpec], ProbeResult]]
                 | None = None) -> None:
        self.results = results if results is not None else {}
        self.calls: list[list[ProbeSpec]] = []

    def run(self, specs: Sequence[ProbeSpec], *, concurrency: int = 200) -> list[ProbeResult]:
        self.calls.append(list(specs))
        out = []
        for spec in specs:
            canned = self.results.get(spec.key)
            if canned is None:
                out.append(ProbeResult(spec.key, True, 1.0))
            elif callable(canned):
                out.append(canned(spec))
            else:
                out.append(canned)
        return out


_injected: list[ProbeEngine] = []


def real_engine() -> ProbeEngine:
    """Return the engine that talks to real servers."""
    return ThreadedProbeEngine()


def probe_engine() -> ProbeEngine:
    """Return the engine to use now: the one :func:`use_probes` set, else the real one."""
    return _injected[-1] if _injected else real_engine()


@contextmanager
def use_probes(engine: ProbeEngine) -> Iterator[ProbeEngine]:
    """Within the block, run every probe of this process through ``engine``."""
    _injected.append(engine)
    try:
        yield engine
    finally:
        _injected.remove(engine)
