"""The DNS adapter: read and change the record sets of a zone on its authoritative server.

The :class:`Zone` protocol is what apps call; the real client is
:class:`chaton.adapters.dns.client.Rfc2136Zone`, which reads a zone's records from its
primary and changes them by RFC 2136 UPDATE signed with TSIG (dnspython), so it works with
BIND, Knot, PowerDNS and the providers that accept UPDATE;
:class:`chaton.adapters.dns.fake.FakeZone` is the same interface in memory. One client
serves one zone, named by a :class:`ZoneServer` (the slot's key).

**Record sets, not records.** A :class:`Record` is a whole set (name, type): a change
either replaces the set or deletes it. :meth:`Zone.apply` first reads the sets it is asked
to change and sends only those that differ, many per UPDATE message: applying the same
changes twice sends nothing the second time.

**TXT.** A TXT value is one logical string; on the wire it is split into strings of at
most 255 bytes (:func:`split_txt`) and joined again on reading (:func:`join_txt`), so an
SPF record of 400 characters round-trips.

Exceptions::

    DnsError(Exception)
    ├── DnsUnavailable(DnsError, ConnectionError)  the server does not answer (down, timeout)
    ├── TsigRefused(DnsError)                      the server refused the TSIG key: unknown,
    │                                              bad signature, or not allowed to update
    ├── UpdateRefused(DnsError)                    the server refused the update (REFUSED, an
    │                                              update without a key, …)
    ├── NotOurZone(DnsError, ValueError)           a name outside the zone, or a server that is
    │                                              not authoritative for it (REFUSED to a
    │                                              query, no AA flag, NOTZONE)
    └── BadRecord(DnsError, ValueError)            a record that cannot be published (a name
                                                   with illegal characters, a TXT of non-ASCII
                                                   bytes, a TTL out of range, a bad value)

Records are checked when they are made: a bad one raises BadRecord at once.

Nothing here imports Django.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from chaton.adapters import Slot

#: The record types Chaton publishes.
TYPES = ("A", "AAAA", "MX", "TXT", "CNAME", "SRV", "CAA", "NS")
#: The types whose values are names, compared without case.
_NAME_TYPES = frozenset({"MX", "CNAME", "SRV", "NS"})
#: RFC 2181 §8: a TTL is an unsigned 31-bit number.
MAX_TTL = 2**31 - 1
#: One character-string of a TXT record holds at most 255 bytes (RFC 1035 §3.3).
TXT_CHUNK = 255

# A quoted string of a presentation form (a CAA value), escapes included.
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
# A label: letters, digits, hyphens and underscores (``_dmarc``, ``_submission._tcp``);
# ``*`` alone as the first label (a wildcard).
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


class DnsError(Exception):
    """Something went wrong with a DNS server; the message says what, for people."""


class DnsUnavailable(DnsError, ConnectionError):
    pass


class TsigRefused(DnsError):
    pass


class UpdateRefused(DnsError):
    pass


class NotOurZone(DnsError, ValueError):
    pass


class BadRecord(DnsError, ValueError):
    pass


def normalize_name(name: str) -> str:
    """Given a domain name, return it absolute and in lower case (``"_dmarc.example.org."``).

    Raise BadRecord for an empty name, an empty label, a label of more than 63 characters, a
    name of more than 253, or a character other than letters, digits, ``-`` and ``_`` (``*``
    only as the first label).
    """
    if not isinstance(name, str) or not name.strip("."):
        raise BadRecord(f"{name!r} is not a domain name")
    text = name.lower()
    if not text.endswith("."):
        text += "."
    if len(text) > 254:
        raise BadRecord(f"{name!r} is longer than 253 characters")
    labels = text[:-1].split(".")
    for index, label in enumerate(labels):
        if label == "*" and index == 0:
            continue
        if not _LABEL.match(label):
            raise BadRecord(f"{name!r} is not a domain name: the label {label!r} has an "
                            "illegal character or length")
    return text


def in_zone(name: str, zone: str) -> bool:
    """Whether the absolute, lower-case ``name`` is ``zone`` or below it."""
    return name == zone or name.endswith("." + zone)


def split_txt(value: str) -> list[str]:
    """Given one logical TXT value, return the strings of at most 255 bytes it goes out as
    (one empty string for an empty value). Raise BadRecord for anything but printable ASCII."""
    if not all(" " <= character <= "~" for character in value):
        raise BadRecord(f"a TXT value must be printable ASCII: {value[:60]!r}")
    if not value:
        return [""]
    return [value[start:start + TXT_CHUNK] for start in range(0, len(value), TXT_CHUNK)]


def join_txt(strings: Iterable[str | bytes]) -> str:
    """Given the strings of one TXT record (text or the bytes read from the wire), return the
    logical value: their concatenation, without quotes or separators (RFC 7208 §3.3)."""
    return "".join(part.decode("ascii", errors="replace") if isinstance(part, bytes) else part
                   for part in strings)


def _canonical_value(type: str, value: str) -> str:
    """Given a record type and one value in presentation form, return its canonical form
    (what a server gives back: ``"10 mail.example.org."``). Raise BadRecord."""
    if not isinstance(value, str):
        raise BadRecord(f"a {type} value is text, not {value!r}")
    if type == "TXT":
        split_txt(value)
        return value
    # The zone-file parser would end the value at a line break or a comment and drop the
    # rest without a word: a value that hides a second one is refused, not truncated.
    if not all(" " <= character <= "~" for character in value) \
            or ";" in _QUOTED.sub("", value):
        raise BadRecord(f"{value!r} is not a valid {type} value: one value, printable ASCII, "
                        "no comment")
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(type), value,
                                    origin=None)
    except (dns.exception.DNSException, ValueError, TypeError) as failure:
        raise BadRecord(f"{value!r} is not a valid {type} value: {failure}") from None
    for attribute in ("exchange", "target"):
        target = getattr(rdata, attribute, None)
        if isinstance(target, dns.name.Name):
            if not target.is_absolute():
                raise BadRecord(f"the name in the {type} value {value!r} must be absolute "
                                "(end with a dot)")
            normalize_name(target.to_text() if target != dns.name.root else "x.")
    text: str = rdata.to_text()
    return text.lower() if type in _NAME_TYPES else text


@dataclass(frozen=True)
class Record:
    """One record set: every value of one (name, type).

    ``name`` is absolute and lower case, with the trailing dot; ``values`` are the
    presentation forms of the rdatas, sorted (a TXT value is one logical string, without
    quotes). Made with other spellings (no trailing dot, upper case, unsorted, ``"10
    MAIL.example.org."``), a record normalizes itself; a bad one raises BadRecord.
    """

    name: str
    type: str
    ttl: int
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        type = str(self.type).upper()
        if type not in TYPES:
            raise BadRecord(f"{self.type!r} is not a record type Chaton publishes "
                            f"({', '.join(TYPES)})")
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int) \
                or not 0 <= self.ttl <= MAX_TTL:
            raise BadRecord(f"the TTL {self.ttl!r} is out of range (0 to {MAX_TTL})")
        if isinstance(self.values, str):
            raise BadRecord("values is a tuple of values, not one string")
        values = tuple(sorted({_canonical_value(type, value) for value in self.values}))
        if type == "CNAME" and len(values) > 1:
            raise BadRecord(f"{self.name} can have only one CNAME")
        object.__setattr__(self, "name", normalize_name(self.name))
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "values", values)

    @classmethod
    def _read(cls, name: str, type: str, ttl: int, values: Iterable[str]) -> Record:
        """Given a set as a server sent it (values already in canonical form), return it as a
        Record without parsing its values again: reading a thousand sets stays cheap."""
        record = object.__new__(cls)
        object.__setattr__(record, "name", name.lower())
        object.__setattr__(record, "type", type)
        object.__setattr__(record, "ttl", ttl)
        folded = (value.lower() for value in values) if type in _NAME_TYPES else values
        object.__setattr__(record, "values", tuple(sorted(set(folded))))
        return record

    @property
    def key(self) -> tuple[str, str]:
        """(name, type): what names the set."""
        return (self.name, self.type)


@dataclass(frozen=True)
class ZoneServer:
    """A zone and the primary server that takes its updates (the slot's key)."""

    zone: str
    host: str
    port: int
    tsig_name: str | None = None
    tsig_algorithm: str = "hmac-sha256"
    tsig_secret: str | None = None
    timeout: float = 5.0

    def __repr__(self) -> str:
        # Never show the secret (logs, tracebacks).
        return (f"ZoneServer(zone={self.zone!r}, host={self.host!r}, port={self.port}, "
                f"tsig_name={self.tsig_name!r})")


@dataclass(frozen=True)
class Change:
    """``replace``: the whole set (record.name, record.type) becomes ``record``;
    ``delete``: that set goes (``record.values`` and ``ttl`` are not read)."""

    action: str
    record: Record

    def __post_init__(self) -> None:
        if self.action not in ("replace", "delete"):
            raise BadRecord(f"a change is 'replace' or 'delete', not {self.action!r}")
        if self.action == "replace" and not self.record.values:
            raise BadRecord(f"replacing {self.record.name} {self.record.type} needs at least "
                            "one value (to remove the set, delete it)")


@runtime_checkable
class Zone(Protocol):
    """One zone on its primary server."""

    def read(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Record | None]:
        """Given (name, type) pairs, return each set as the primary serves it, None when
        there is none. Raise NotOurZone (a name outside the zone), DnsUnavailable, DnsError."""
        ...

    def apply(self, changes: Sequence[Change]) -> int:
        """Given changes, make the zone hold them and return how many sets changed (0: nothing
        was sent; the last change of a set wins). Raise NotOurZone before sending anything
        when a name is outside the zone; TsigRefused, UpdateRefused (also when the server
        skipped a change it may not make: a CNAME beside other records, the zone's own NS
        set removed), DnsUnavailable, DnsError. A failure midway leaves the changes before it
        made: applying again finishes the work."""
        ...


def check_names(zone: str, keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Given a zone and (name, type) pairs, return them normalized; raise NotOurZone for a
    name outside the zone and BadRecord for a bad name or type."""
    origin = normalize_name(zone)
    checked = []
    for name, type in keys:
        name = normalize_name(name)
        if not in_zone(name, origin):
            raise NotOurZone(f"{name} is not in the zone {origin}")
        if type.upper() not in TYPES:
            raise BadRecord(f"{type!r} is not a record type Chaton publishes")
        checked.append((name, type.upper()))
    return checked


def differs(change: Change, current: Record | None) -> bool:
    """Whether ``change`` would change a set that is ``current`` now (None: no such set)."""
    if change.action == "replace":
        return current != change.record
    return current is not None


def ignored_error(where: str, ignored: Sequence[Change]) -> UpdateRefused:
    """Given a server and the changes it answered NOERROR to but did not make, return the
    error to raise (RFC 2136 §3.4.2: a server silently skips a CNAME beside other records,
    another record beside a CNAME, and the removal of the zone's own NS set)."""
    names = ", ".join(f"{change.action} {change.record.name} {change.record.type}"
                      for change in ignored[:5])
    more = f" and {len(ignored) - 5} more" if len(ignored) > 5 else ""
    return UpdateRefused(f"the DNS server {where} ignored {names}{more}: a CNAME cannot share "
                         "its name with other records, and the zone's own NS set stays")


def record_of(rrset: Any) -> Record:
    """Given a dnspython RRset, return it as a Record (TXT strings joined)."""
    type = dns.rdatatype.to_text(rrset.rdtype)
    if type == "TXT":
        values = [join_txt(rdata.strings) for rdata in rrset]
    else:
        values = [rdata.to_text() for rdata in rrset]
    if type not in TYPES:
        raise BadRecord(f"{type} is not a record type Chaton publishes")
    return Record._read(rrset.name.to_text(), type, rrset.ttl, values)


def address_of(host: str, port: int) -> str:
    """Given a server's host (an IP address or a name) and port, return an IP address to send
    to (dnspython takes addresses only). Raise DnsUnavailable when the name does not resolve."""
    try:
        dns.inet.af_for_address(host)
        return host
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as failure:
        raise DnsUnavailable(f"the DNS server {host}:{port} cannot be found: "
                             f"{failure}") from None
    return str(found[0][4][0])


def resolve(name: str, type: str, *, server: tuple[str, int], timeout: float = 5.0
            ) -> Record | None:
    """Given a name, a type and a server (an authoritative one or a resolver), ask it once and
    return the set it answers, or None (no such name, no such set).

    When a resolver follows a CNAME, the set returned is the one of the type asked at the end
    of the chain, under its own name; an authoritative server that does not follow it gives
    None (ask for the CNAME itself). Raise BadRecord for a bad name, DnsUnavailable when the
    server does not answer, DnsError for another failure (SERVFAIL, REFUSED).
    """
    qname = normalize_name(name)
    type = type.upper()
    if type not in TYPES:
        raise BadRecord(f"{type!r} is not a record type Chaton publishes")
    query = dns.message.make_query(qname, type, use_edns=0, payload=1232)
    host, port = server
    address = address_of(host, port)
    try:
        response, _ = dns.query.udp_with_fallback(query, address, port=port, timeout=timeout)
    except (OSError, EOFError, dns.exception.Timeout) as failure:
        raise DnsUnavailable(f"the DNS server {host}:{port} does not answer: "
                             f"{failure or failure.__class__.__name__}") from None
    except dns.exception.DNSException as failure:
        raise DnsError(f"the DNS server {host}:{port} answered badly: {failure}") from None
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return None
    if rcode != dns.rcode.NOERROR:
        raise DnsError(f"the DNS server {host}:{port} answered {dns.rcode.to_text(rcode)} "
                       f"for {qname} {type}")
    wanted = dns.rdatatype.from_text(type)
    for rrset in response.answer:
        if rrset.rdtype == wanted:
            return record_of(rrset)
    return None


#: Where a test's replacement for the real client sits (see :mod:`chaton.adapters`).
slot: Slot[Zone] = Slot("dns", Zone)


def use_dns(replacement: Zone | Callable[[ZoneServer], Zone]
            ) -> AbstractContextManager[Zone | Callable[[Any], Zone]]:
    """Within the block, every zone client comes from ``replacement``: a Zone, or a function
    of the :class:`ZoneServer` returning one (tests, benchmarks)."""
    return slot.use(replacement)
