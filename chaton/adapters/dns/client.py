"""The real zone client: queries to the primary, RFC 2136 UPDATE signed with TSIG (dnspython)."""

from __future__ import annotations

import binascii
import logging
import secrets
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.tsig
import dns.update

from chaton.adapters.dns import (
    Change,
    DnsError,
    DnsUnavailable,
    NotOurZone,
    Record,
    TsigRefused,
    UpdateRefused,
    ZoneServer,
    address_of,
    check_names,
    differs,
    ignored_error,
    normalize_name,
    record_of,
    split_txt,
)

logger = logging.getLogger("chaton.dns")

#: Queries sent on the TCP connection before their answers are read (a window: the answers
#: of a thousand queries in flight would fill the socket buffers both ways).
QUERY_WINDOW = 100
#: What one UPDATE message may carry: an upper estimate of its bytes (a message over TCP
#: holds at most 65,535), and a number of sets.
UPDATE_BYTES = 60_000
UPDATE_SETS = 500


def _rdatas(record: Record) -> list[dns.rdata.Rdata]:
    """Given a record, return its rdatas as they go on the wire (TXT split in strings)."""
    if record.type == "TXT":
        return [dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT,
                                        [part.encode("ascii") for part in split_txt(value)])
                for value in record.values]
    rdtype = dns.rdatatype.from_text(record.type)
    return [dns.rdata.from_text(dns.rdataclass.IN, rdtype, value) for value in record.values]


def _query_wire(query_id: int, name: str, type: str) -> bytes:
    """Given an id, a normalized name and a type, return the query's wire form (no recursion
    asked, no EDNS: the answers come over TCP). Built by hand: dnspython's message objects
    cost more than the round trip when a thousand sets are read."""
    labels = b"".join(bytes([len(label)]) + label.encode("ascii")
                      for label in name.rstrip(".").split("."))
    return (struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0) + labels + b"\x00"
            + struct.pack("!HH", dns.rdatatype.from_text(type), dns.rdataclass.IN))


def _size(change: Change) -> int:
    """An upper estimate of the bytes a change takes in an UPDATE message."""
    record = change.record
    return 2 * (len(record.name) + 12) + sum(len(value) + 16 for value in record.values)


class Rfc2136Zone:
    """One zone on its primary: reads by queries over one TCP connection, changes by UPDATE
    messages signed with the server's TSIG key. ``messages_sent`` counts the UPDATE messages
    this client sent (a no-op apply sends none)."""

    def __init__(self, server: ZoneServer) -> None:
        self.server = server
        self.origin = normalize_name(server.zone)
        self.messages_sent = 0
        self._key: dns.tsig.Key | None = None
        if server.tsig_name:
            try:
                self._key = dns.tsig.Key(server.tsig_name, server.tsig_secret or "",
                                         server.tsig_algorithm)
            except (binascii.Error, ValueError, dns.exception.DNSException) as failure:
                raise TsigRefused(f"the TSIG key {server.tsig_name} is not usable: "
                                  f"{failure}") from None

    @property
    def _where(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    # -- reading ---------------------------------------------------------------------------

    def read(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Record | None]:
        keys = list(dict.fromkeys(check_names(self.origin, wanted)))
        found: dict[tuple[str, str], Record | None] = {}
        if not keys:
            return found
        with self._connection() as connection:
            for start in range(0, len(keys), QUERY_WINDOW):
                window = keys[start:start + QUERY_WINDOW]
                queries: dict[int, tuple[str, str]] = {}
                base = secrets.randbelow(65536)
                wire = bytearray()
                for position, key in enumerate(window):
                    # Ids distinct within the window: the answers are matched by them.
                    query_id = (base + position) % 65536
                    queries[query_id] = key
                    query = _query_wire(query_id, *key)
                    wire += struct.pack("!H", len(query)) + query
                with self._talking():
                    connection.sendall(wire)
                for _ in window:
                    with self._talking():
                        response, _ = dns.query.receive_tcp(connection, self._deadline())
                    asked = queries.pop(response.id, None)
                    question = response.question[0] if response.question else None
                    if asked is None or question is None \
                            or question.name != dns.name.from_text(asked[0]) \
                            or question.rdtype != dns.rdatatype.from_text(asked[1]):
                        raise DnsError(f"the DNS server {self._where} sent an answer to a "
                                       "question it was not asked")
                    found[asked] = self._answer(asked, response)
        return {key: found[key] for key in keys}

    def _answer(self, key: tuple[str, str], response: dns.message.Message) -> Record | None:
        """Given (name, type) and the primary's response, return the set or None."""
        rcode = response.rcode()
        if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.NOTZONE):
            raise NotOurZone(f"the DNS server {self._where} does not serve the zone "
                             f"{self.origin} ({dns.rcode.to_text(rcode)})")
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsError(f"the DNS server {self._where} answered {dns.rcode.to_text(rcode)} "
                           f"for {key[0]} {key[1]}")
        name = dns.name.from_text(key[0])
        rdtype = dns.rdatatype.from_text(key[1])
        if not response.flags & dns.flags.AA:
            # A referral: the name is at or below a delegation the zone holds. The NS set of
            # the cut itself is the zone's (it comes in the authority section); below, the
            # names are another zone's.
            for rrset in response.authority:
                if rrset.rdtype == dns.rdatatype.NS and name.is_subdomain(rrset.name):
                    if rrset.name == name and rdtype == dns.rdatatype.NS:
                        return record_of(rrset)
                    raise NotOurZone(f"{key[0]} is in {rrset.name.to_text()}, a zone "
                                     f"delegated from {self.origin}")
            raise NotOurZone(f"the DNS server {self._where} is not authoritative for {key[0]} "
                             f"(zone {self.origin})")
        if rcode == dns.rcode.NXDOMAIN:
            return None
        for rrset in response.answer:
            if rrset.name == name and rrset.rdtype == rdtype:
                return record_of(rrset)
        return None

    # -- changing --------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> int:
        # The last change of a set wins; every name is checked before anything is sent.
        last: dict[tuple[str, str], Change] = {}
        for change in changes:
            [key] = check_names(self.origin, [change.record.key])
            last.pop(key, None)
            last[key] = change
        if not last:
            return 0
        current = self.read(last)
        needed = [change for key, change in last.items() if differs(change, current[key])]
        if not needed:
            return 0
        for batch in self._batches(needed):
            self._send(batch)
        # A server answers NOERROR to an update it skipped in part (RFC 2136 §3.4.2): what
        # was sent is read back, so that a skipped change is an error, not a loop.
        after = self.read(change.record.key for change in needed)
        ignored = [change for change in needed if differs(change, after[change.record.key])]
        if ignored:
            raise ignored_error(self._where, ignored)
        return len(needed)

    def _batches(self, changes: list[Change]) -> Iterator[list[Change]]:
        batch: list[Change] = []
        size = 0
        for change in changes:
            change_size = _size(change)
            if batch and (size + change_size > UPDATE_BYTES or len(batch) >= UPDATE_SETS):
                yield batch
                batch, size = [], 0
            batch.append(change)
            size += change_size
        if batch:
            yield batch

    def _send(self, batch: list[Change]) -> None:
        """Send one UPDATE message carrying ``batch``; raise the adapter's error if refused."""
        if self._key is not None:
            update = dns.update.UpdateMessage(self.origin, keyring=self._key,
                                              keyname=self._key.name,
                                              keyalgorithm=self._key.algorithm)
        else:
            update = dns.update.UpdateMessage(self.origin)
        for change in batch:
            name = dns.name.from_text(change.record.name)
            if change.action == "delete":
                update.delete(name, change.record.type)
            else:
                rdataset = dns.rdataset.from_rdata_list(change.record.ttl,
                                                        _rdatas(change.record))
                update.replace(name, rdataset)
        address = address_of(self.server.host, self.server.port)
        self.messages_sent += 1
        try:
            response = dns.query.tcp(update, address, port=self.server.port,
                                     timeout=self.server.timeout)
        except dns.tsig.PeerError as failure:
            raise TsigRefused(self._tsig_message(failure)) from None
        except (OSError, EOFError, dns.exception.Timeout) as failure:
            raise DnsUnavailable(self._down_message(failure)) from None
        except dns.exception.DNSException as failure:
            raise DnsError(f"the DNS server {self._where} answered the update badly: "
                           f"{failure}") from None
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            logger.debug("dns: %d set(s) changed in %s", len(batch), self.origin)
            return
        tsig_error = getattr(response, "tsig_error", 0)
        if tsig_error:
            raise TsigRefused(self._tsig_message(dns.rcode.Rcode.to_text(tsig_error)))
        if rcode == dns.rcode.NOTZONE:
            raise NotOurZone(f"the DNS server {self._where} does not take updates for the "
                             f"zone {self.origin} (NOTZONE)")
        # The read before proved the server authoritative for the zone: a NOTAUTH now is
        # its access rule refusing the key (RFC 8945 §5.5; Knot answers so for an update
        # its ACL does not allow), or refusing an update without one.
        if rcode == dns.rcode.NOTAUTH and self._key is not None:
            raise TsigRefused(self._tsig_message("NOTAUTH, the key may not update this zone"))
        if rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED):
            hint = "" if self._key is not None else "; no TSIG key was given"
            raise UpdateRefused(f"the DNS server {self._where} refused the update of "
                                f"{self.origin} ({dns.rcode.to_text(rcode)}{hint})")
        raise UpdateRefused(f"the DNS server {self._where} refused the update of "
                            f"{self.origin} ({dns.rcode.to_text(rcode)})")

    def _tsig_message(self, failure: object) -> str:
        return (f"the DNS server {self._where} refused the TSIG key "
                f"{self.server.tsig_name or '(none)'} for {self.origin}: {failure or 'refused'}"
                " (check the key's name, algorithm and secret)")

    def _down_message(self, failure: BaseException) -> str:
        return (f"the DNS server {self._where} does not answer: "
                f"{failure or failure.__class__.__name__}")

    # -- the connection --------------------------------------------------------------------

    def _deadline(self) -> float:
        return time.time() + self.server.timeout

    def _connection(self) -> socket.socket:
        address = address_of(self.server.host, self.server.port)
        try:
            return socket.create_connection((address, self.server.port),
                                            timeout=self.server.timeout)
        except OSError as failure:
            raise DnsUnavailable(self._down_message(failure)) from None

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Within the block, a failure to talk to the server is the adapter's error."""
        try:
            yield
        except (OSError, EOFError, dns.exception.Timeout) as failure:
            raise DnsUnavailable(self._down_message(failure)) from None
        except dns.exception.DNSException as failure:
            raise DnsError(f"the DNS server {self._where} answered badly: {failure}") from None
