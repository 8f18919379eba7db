"""Stand-in for ``chaton.adapters.dns`` (the contract), with its fake ``FakeZone``.

::

    DnsError
    ├── DnsUnavailable(ConnectionError)   the server does not answer
    ├── TsigRefused                       the server refused our TSIG key
    ├── UpdateRefused                     the server refused the update
    ├── NotOurZone(ValueError)            a record outside the zone
    └── BadRecord(ValueError)             a record that cannot be one
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chaton.adapters import Slot


@dataclass(frozen=True)
class Record:
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]


@dataclass(frozen=True)
class ZoneServer:
    zone: str
    host: str
    port: int
    tsig_name: str | None = None
    tsig_algorithm: str = "hmac-sha256"
    tsig_secret: str | None = None
    timeout: float = 5.0


@dataclass(frozen=True)
class Change:
    action: str
    record: Record


class DnsError(Exception):
    """A DNS server failed or refused."""


class DnsUnavailable(DnsError, ConnectionError):
    """The server does not answer."""


class TsigRefused(DnsError):
    """The server refused the TSIG key."""


class UpdateRefused(DnsError):
    """The server refused the update."""


class NotOurZone(DnsError, ValueError):
    """A record is outside the zone."""


class BadRecord(DnsError, ValueError):
    """A record that cannot be one."""


@runtime_checkable
class Zone(Protocol):
    def read(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Record | None]:
        ...

    def apply(self, changes: Sequence[Change]) -> int:
        ...


def split_txt(value: str) -> list[str]:
    """Return ``value`` cut into strings of at most 255 bytes."""
    data = value.encode()
    return [data[start:start + 255].decode(errors="replace")
            for start in range(0, len(data), 255)] or [""]


def join_txt(strings: Iterable[str]) -> str:
    return "".join(strings)


def resolve(name: str, type: str, *, server: tuple[str, int], timeout: float = 5.0
            ) -> Record | None:
    """Ask ``server`` once for ``name``/``type``; return the record set or None."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rdatatype

    query = dns.message.make_query(name, type)
    try:
        answer = dns.query.udp(query, server[0], port=server[1], timeout=timeout)
    except (dns.exception.Timeout, OSError) as error:
        raise DnsUnavailable(f"{server[0]}:{server[1]}: {error}") from error
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.from_text(type):
            if type == "TXT":
                values = tuple(sorted(join_txt(s.decode() for s in rdata.strings)
                                      for rdata in rrset))
            else:
                values = tuple(sorted(rdata.to_text() for rdata in rrset))
            return Record(name.lower(), type, rrset.ttl, values)
    return None


slot: Slot[Zone] = Slot("dns", Zone)


@contextmanager
def use_dns(replacement: Zone | Callable[[Any], Zone]) -> Iterator[Any]:
    with slot.use(replacement) as held:
        yield held


class FakeZone:
    """A zone in memory: ``records`` by (name, type); ``down`` and ``tsig_refused`` fail."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.records: dict[tuple[str, str], Record] = {}
        self.down = False
        self.tsig_refused = False

    def _check(self) -> None:
        if self.down:
            raise DnsUnavailable(f"{self.zone}: the server does not answer")
        if self.tsig_refused:
            raise TsigRefused(f"{self.zone}: the server refused the TSIG key")

    def read(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Record | None]:
        self._check()
        return {key: self.records.get(key) for key in wanted}

    def apply(self, changes: Sequence[Change]) -> int:
        self._check()
        changed = 0
        for change in changes:
            name = change.record.name
            if not (name == self.zone or name.endswith("." + self.zone)):
                raise NotOurZone(f"{name} is not in {self.zone}")
        for change in changes:
            key = (change.record.name, change.record.type)
            if change.action == "delete":
                if self.records.pop(key, None) is not None:
                    changed += 1
            elif self.records.get(key) != change.record:
                self.records[key] = change.record
                changed += 1
        return changed
