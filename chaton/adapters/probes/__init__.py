"""The probes adapter: checks that a service answers, many at once.

A probe is a value, :class:`ProbeSpec` (what to check: a kind, a target,
conditions, a timeout); its outcome is a :class:`ProbeResult`. An engine runs a
cycle of specs and returns one result per spec, in order, and never raises for
a probe that fails: :class:`ProbeEngine` is the interface, the real engine is
:class:`chaton.adapters.probes.client.AsyncProbeEngine` (asyncio, httpx,
dnspython, python-ldap in a bounded thread pool), the fake
:class:`chaton.adapters.probes.fake.FakeProbeEngine` (canned results). Nothing
here imports Django.

Conditions are Gatus-like, one per string: a placeholder, an operator, a
value::

    [STATUS] == 200                    [BODY] contains pad
    [RESPONSE_TIME] < 500              [CERTIFICATE_EXPIRATION] > 240h
    [CONNECTED] == true                [DNS_RCODE] == NOERROR
    [STATUS] == any(200, 204)          [BODY] == pat(*ready*)

Placeholders: [STATUS] (HTTP status, or the SMTP banner's code), [BODY] (the
response body, the DNS answers one a line, the SMTP/IMAP greeting),
[RESPONSE_TIME] (milliseconds), [CERTIFICATE_EXPIRATION] (time left, a
duration: ``30s``, ``30m``, ``240h``, ``7d``; a bare number is milliseconds),
[CONNECTED] (``true``/``false``), [DNS_RCODE] (``NOERROR``, ``NXDOMAIN`` …),
[IP] (the address answered from, or the first DNS answer). Operators: ``==``,
``!=``, ``<``, ``<=``, ``>``, ``>=``, ``contains``, ``not contains``. A failing
condition reads with the value found: ``[STATUS] (503) == 200``.

Exceptions::

    ProbeError(Exception)
    ├── BadCondition(ProbeError, ValueError)   a condition that does not parse, or does not
    │                                          apply to the probe's kind (raised at validation)
    ├── BadSpec(ProbeError, ValueError)        a spec no engine can run: unknown kind, bad target
    └── ProbeFailed(ProbeError)                inside a checker: an answer that is not the
                                               expected one (the engine makes it a result)
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from chaton.adapters import Slot

#: The kinds of probe the engine runs.
KINDS = ("http", "tcp", "tls", "dns", "smtp", "imap", "ldap")


class ProbeError(Exception):
    """Base of every error this adapter raises."""


class BadCondition(ProbeError, ValueError):
    """A condition that does not parse or does not apply; the message says why, in English."""


class BadSpec(ProbeError, ValueError):
    """A spec no engine can run (unknown kind, target of the wrong shape, bad option)."""


class ProbeFailed(ProbeError):
    """The server answered, but not as expected (its message becomes the result's error)."""


@dataclass(frozen=True)
class ProbeSpec:
    """What to check.

    ``target``: for http a URL; for tcp, tls, smtp and imap ``host:port``; for
    dns the name to resolve; for ldap an ``ldap://`` or ``ldaps://`` URL.
    ``options``: http ``method``, ``headers``, ``ca_file``, ``verify``,
    ``follow_redirects``; dns ``record`` (``A``, ``MX``, ``TXT`` …),
    ``server`` (``127.0.0.1:5353``), ``expected`` (answers that must all be
    there); smtp ``starttls``, ``implicit_tls``, ``ca_file``; imap ``tls``
    (``implicit``, ``starttls`` or ``none``), ``ca_file``; ldap ``bind_dn``,
    ``password``, ``base``, ``ca_file``; tls ``server_name``, ``ca_file``.
    ``server_name`` and ``verify`` apply to every TLS connection. http and tls
    ``connect_to`` (``host:port``, curl's ``--connect-to``): the connection goes
    there, while the target's host name stays the Host header, the SNI and the
    name the certificate is checked against.
    """

    key: str
    kind: str
    target: str
    conditions: tuple[str, ...] = ()
    timeout: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe.

    ``error`` is the first failing condition (``[STATUS] (503) == 200``) or
    what went wrong (``connection refused``); it never holds a secret.
    ``status`` is the HTTP status or the SMTP banner's code;
    ``cert_expires_at`` (aware, UTC) the certificate's end of validity for a
    probe over TLS.
    """

    key: str
    ok: bool
    duration_ms: float
    error: str = ""
    status: int | None = None
    cert_expires_at: datetime | None = None


@runtime_checkable
class ProbeEngine(Protocol):
    """What runs a cycle of probes."""

    def run(self, specs: Sequence[ProbeSpec], *, concurrency: int = 200) -> list[ProbeResult]:
        """Given specs, run them at most ``concurrency`` at a time and return one result per
        spec, in the same order. Blocking. Never raise for a probe's failure: a spec that
        cannot run (BadSpec, BadCondition) is a failed result too."""
        ...


# The condition language ---------------------------------------------------------------

#: Each placeholder and the type of value it compares with.
PLACEHOLDERS: dict[str, str] = {
    "STATUS": "number",
    "BODY": "text",
    "RESPONSE_TIME": "duration",
    "CERTIFICATE_EXPIRATION": "duration",
    "CONNECTED": "boolean",
    "DNS_RCODE": "rcode",
    "IP": "text",
}

#: Which placeholders each kind of probe fills.
PLACEHOLDERS_BY_KIND: dict[str, frozenset[str]] = {
    "http": frozenset({"STATUS", "BODY", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION", "CONNECTED",
                       "IP"}),
    "tcp": frozenset({"RESPONSE_TIME", "CONNECTED", "IP"}),
    "tls": frozenset({"RESPONSE_TIME", "CERTIFICATE_EXPIRATION", "CONNECTED", "IP"}),
    "dns": frozenset({"DNS_RCODE", "BODY", "IP", "RESPONSE_TIME", "CONNECTED"}),
    "smtp": frozenset({"STATUS", "BODY", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION",
                       "CONNECTED"}),
    "imap": frozenset({"BODY", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION", "CONNECTED"}),
    "ldap": frozenset({"RESPONSE_TIME", "CONNECTED"}),
}

#: The operators each type of value accepts.
_OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "number": ("==", "!=", "<", "<=", ">", ">="),
    "duration": ("==", "!=", "<", "<=", ">", ">="),
    "text": ("==", "!=", "contains", "not contains"),
    "boolean": ("==", "!="),
    "rcode": ("==", "!="),
}

_RCODES = frozenset({"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                     "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"})

_CONDITION = re.compile(
    r"^\[(?P<placeholder>[A-Za-z_]+)\]\s*"
    r"(?P<operator>==|!=|<=|>=|<|>|(?<=\s)not\s+contains(?=\s)|(?<=\s)contains(?=\s))"
    r"\s*(?P<value>.*)$",
    re.DOTALL,
)
_DURATION = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?$")
_UNIT_MS = {"ms": 1.0, "s": 1_000.0, "m": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_FUNCTION = re.compile(r"^(?P<name>any|pat)\((?P<arguments>.*)\)$", re.DOTALL)


def parse_duration_ms(text: str) -> float:
    """Given ``30s``, ``30m``, ``240h``, ``7d``, ``500ms`` or a bare number of milliseconds,
    return milliseconds. Raise BadCondition."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise BadCondition(f"{text!r} is not a duration such as 500ms, 30s, 30m, 240h or 7d")
    return float(match["number"]) * _UNIT_MS[match["unit"] or "ms"]


def format_duration_ms(milliseconds: float) -> str:
    """Given milliseconds, return a short reading: ``4d23h``, ``5h12m``, ``59s``, ``-2h``."""
    sign = "-" if milliseconds < 0 else ""
    seconds = int(abs(milliseconds) // 1000)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m"
    return f"{sign}{seconds}s"


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


@dataclass(frozen=True)
class Condition:
    """One parsed condition: ``placeholder operator value``.

    ``values`` holds the alternatives (one, or several with ``any(…)``), typed
    for the placeholder; ``pattern`` is set for ``pat(…)`` (shell-style, ``*``
    and ``?``).
    """

    text: str
    placeholder: str
    operator: str
    values: tuple[float | str | bool, ...]
    right: str
    mode: Literal["plain", "any", "pat"] = "plain"

    def failure(self, context: Mapping[str, Any]) -> str | None:
        """Given what a probe found (placeholder name → value; durations in milliseconds),
        return None when this condition holds, else it with the value found:
        ``[STATUS] (503) == 200``."""
        actual = context.get(self.placeholder)
        if actual is None or not self._holds(actual):
            return f"[{self.placeholder}] ({self._show(actual)}) {self.operator} {self.right}"
        return None

    def _holds(self, actual: Any) -> bool:
        kind = PLACEHOLDERS[self.placeholder]
        if kind == "rcode":
            actual = str(actual).upper()
        elif kind == "text":
            actual = str(actual)
        if self.mode == "pat":
            matched = fnmatch.fnmatchcase(str(actual), str(self.values[0]))
            return matched if self.operator == "==" else not matched
        if self.operator == "==":
            return any(actual == value for value in self.values)
        if self.operator == "!=":
            return all(actual != value for value in self.values)
        if self.operator == "contains":
            return any(str(value) in actual for value in self.values)
        if self.operator == "not contains":
            return all(str(value) not in actual for value in self.values)
        number = float(actual)
        bound = float(self.values[0])
        return {"<": number < bound, "<=": number <= bound,
                ">": number > bound, ">=": number >= bound}[self.operator]

    def _show(self, actual: Any) -> str:
        if actual is None:
            return "n/a"
        kind = PLACEHOLDERS[self.placeholder]
        if kind == "boolean":
            return "true" if actual else "false"
        if self.placeholder == "CERTIFICATE_EXPIRATION":
            return format_duration_ms(float(actual))
        if kind in {"number", "duration"}:
            number = float(actual)
            return str(int(number)) if math.isfinite(number) and number == int(number) \
                else f"{number:.0f}"
        text = " ".join(str(actual).split())
        return text if len(text) <= 40 else text[:40] + "…"


def _typed_value(placeholder: str, text: str) -> float | str | bool:
    """Given a placeholder and one value's text, return the value typed for it.
    Raise BadCondition."""
    kind = PLACEHOLDERS[placeholder]
    text = text.strip()
    if kind == "number":
        try:
            return float(int(text))
        except ValueError:
            raise BadCondition(f"[{placeholder}] compares with a whole number, not {text!r}") \
                from None
    if kind == "duration":
        try:
            return parse_duration_ms(text)
        except BadCondition:
            raise BadCondition(
                f"[{placeholder}] compares with a duration such as 500 (milliseconds), 30s, "
                f"240h or 7d, not {text!r}") from None
    if kind == "boolean":
        if text.lower() not in {"true", "false"}:
            raise BadCondition(f"[{placeholder}] compares with true or false, not {text!r}")
        return text.lower() == "true"
    if kind == "rcode":
        if text.upper() not in _RCODES:
            raise BadCondition(f"[{placeholder}] compares with a DNS response code such as "
                               f"NOERROR or NXDOMAIN, not {text!r}")
        return text.upper()
    value = _unquote(text)
    if not value:
        raise BadCondition(f"[{placeholder}]: the value to compare with is empty")
    return value


def parse_condition(text: str) -> Condition:
    """Given a condition such as ``[STATUS] == 200``, return it parsed.

    Raise BadCondition, with a message that says what is wrong, for anything
    that does not parse: no placeholder, an unknown one, no operator, an
    operator the placeholder does not take, a value of the wrong type.
    """
    if not isinstance(text, str) or not text.strip():
        raise BadCondition("a condition is empty")
    stripped = text.strip()
    if not stripped.startswith("["):
        raise BadCondition(f"{stripped!r}: a condition starts with a placeholder such as "
                           f"[STATUS], [BODY] or [RESPONSE_TIME]")
    name = re.match(r"^\[([^\]]*)\]", stripped)
    if name is None:
        raise BadCondition(f"{stripped!r}: the placeholder's ']' is missing")
    if name[1].upper() not in PLACEHOLDERS:
        known = ", ".join(f"[{placeholder}]" for placeholder in PLACEHOLDERS)
        raise BadCondition(f"[{name[1]}] is not a placeholder; known: {known}")
    match = _CONDITION.match(stripped)
    if match is None:
        raise BadCondition(f"{stripped!r}: expected an operator after the placeholder: "
                           f"==, !=, <, <=, >, >=, contains, not contains")
    placeholder = match["placeholder"].upper()
    operator = " ".join(match["operator"].split())
    right = match["value"].strip()
    if not right:
        raise BadCondition(f"{stripped!r}: the value to compare with is missing")
    allowed = _OPERATORS_BY_TYPE[PLACEHOLDERS[placeholder]]
    if operator not in allowed:
        raise BadCondition(f"[{placeholder}] takes {', '.join(allowed)}, not {operator}")
    function = _FUNCTION.match(right)
    if function is None:
        return Condition(stripped, placeholder, operator, (_typed_value(placeholder, right),),
                         right)
    if function["name"] == "pat":
        if operator not in {"==", "!="} or PLACEHOLDERS[placeholder] not in {"text", "rcode"}:
            raise BadCondition(f"pat(…) compares text with == or !=: {stripped!r}")
        pattern = _unquote(function["arguments"].strip())
        if not pattern:
            raise BadCondition(f"{stripped!r}: pat(…) needs a pattern")
        return Condition(stripped, placeholder, operator, (pattern,), right, "pat")
    if operator not in {"==", "!=", "contains", "not contains"}:
        raise BadCondition(f"any(…) goes with ==, !=, contains or not contains: {stripped!r}")
    parts = [part for part in function["arguments"].split(",") if part.strip()]
    if not parts:
        raise BadCondition(f"{stripped!r}: any(…) needs at least one value")
    values = tuple(_typed_value(placeholder, part) for part in parts)
    return Condition(stripped, placeholder, operator, values, right, "any")


def parse_conditions(conditions: Iterable[str], kind: str | None = None) -> list[Condition]:
    """Given conditions (and the probe's kind, to refuse a placeholder it never fills,
    such as [STATUS] on a TCP probe), return them parsed. Raise BadCondition."""
    parsed = [parse_condition(text) for text in conditions]
    if kind is not None:
        filled = PLACEHOLDERS_BY_KIND.get(kind, frozenset())
        for condition in parsed:
            if condition.placeholder not in filled:
                raise BadCondition(
                    f"[{condition.placeholder}] has no value for a {kind} probe; it has "
                    + ", ".join(f"[{name}]" for name in PLACEHOLDERS if name in filled))
    return parsed


def check_conditions(conditions: Iterable[str | Condition],
                     context: Mapping[str, Any]) -> str | None:
    """Given conditions (text or parsed) and what a probe found (placeholder → value,
    durations in milliseconds), return None when all hold, else the first failing one
    with the value found (``[STATUS] (503) == 200``). Raise BadCondition for a text that
    does not parse."""
    for condition in conditions:
        parsed = condition if isinstance(condition, Condition) else parse_condition(condition)
        failure = parsed.failure(context)
        if failure is not None:
            return failure
    return None


def split_host_port(target: str) -> tuple[str, int]:
    """Given ``host:port`` (``[::1]:25`` for IPv6), return (host, port). Raise BadSpec."""
    match = re.match(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s/\[\]]+)):(?P<port>\d{1,5})$",
                     target.strip())
    if match is None or not 0 < int(match["port"]) < 65536:
        raise BadSpec(f"{target!r} is not host:port")
    return match["v6"] or match["host"], int(match["port"])


def dns_server(text: str) -> tuple[str, int]:
    """Given a DNS server's address, ``host``, ``host:port`` or ``[v6]:port``, return
    (host, port); port 53 when none is given. Raise BadSpec."""
    text = text.strip()
    bare_v6 = re.match(r"^[0-9A-Fa-f:]+$", text) is not None and text.count(":") > 1
    if bare_v6 or re.match(r"^[^:]+$", text):
        return text, 53
    return split_host_port(text)


def _shown(target: str) -> str:
    """Given a target, return it for an error message: a URL's user and password masked."""
    return repr(re.sub(r"(?<=//)[^/@\s]*@", "•••@", target))


def validate_spec(spec: ProbeSpec) -> list[Condition]:
    """Given a spec, return its parsed conditions if an engine can run it.

    Raise BadSpec (unknown kind, a target of the wrong shape, a timeout that is
    not positive) or BadCondition.
    """
    if spec.kind not in KINDS:
        raise BadSpec(f"{spec.kind!r} is not a kind of probe; known: {', '.join(KINDS)}")
    if not (isinstance(spec.timeout, int | float) and 0 < spec.timeout <= 3600):
        raise BadSpec(f"the timeout must be between 0 and 3600 seconds, not {spec.timeout!r}")
    target = spec.target.strip()
    if spec.kind == "http" and not re.match(r"^https?://[^/\s]+", target, re.IGNORECASE):
        raise BadSpec(f"{_shown(spec.target)} is not an http:// or https:// URL")
    if spec.kind == "ldap" and not re.match(r"^ldaps?://[^/\s]+", target, re.IGNORECASE):
        raise BadSpec(f"{_shown(spec.target)} is not an ldap:// or ldaps:// URL")
    if spec.kind in {"tcp", "tls", "smtp", "imap"}:
        split_host_port(target)
    if spec.kind == "dns":
        if not re.match(r"^[A-Za-z0-9_.-]+\.?$", target):
            raise BadSpec(f"{spec.target!r} is not a DNS name")
        if spec.options.get("server") is not None:
            dns_server(str(spec.options["server"]))
    if spec.options.get("connect_to"):
        if spec.kind not in {"http", "tls"}:
            raise BadSpec("connect_to applies to http and tls probes only")
        connect_to(spec)
    if spec.kind == "imap" and spec.options.get("tls", "implicit") not in {
            "implicit", "starttls", "none"}:
        raise BadSpec("imap's tls option is implicit, starttls or none")
    return parse_conditions(spec.conditions, spec.kind)


def connect_to(spec: ProbeSpec) -> tuple[str, int] | None:
    """Given a spec, return the (host, port) its ``connect_to`` option names, or None.
    Raise BadSpec when the option is not host:port."""
    value = spec.options.get("connect_to")
    if not value:
        return None
    try:
        return split_host_port(str(value))
    except BadSpec:
        raise BadSpec(f"connect_to {value!r} is not host:port") from None


#: Where a test's replacement for the real engine sits (see :mod:`chaton.adapters`).
slot: Slot[ProbeEngine] = Slot("probes", ProbeEngine)


def use_probes(replacement: ProbeEngine | Callable[[Any], ProbeEngine]
               ) -> AbstractContextManager[ProbeEngine | Callable[[Any], ProbeEngine]]:
    """Within the block, every cycle of probes runs through ``replacement``: a ProbeEngine,
    or a function of None (there is one engine) returning one (tests, benchmarks)."""
    return slot.use(replacement)
