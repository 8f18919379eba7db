"""A zone in memory for the fast tests: the same interface and errors as Rfc2136Zone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chaton.adapters.dns import (
    Change,
    DnsUnavailable,
    Record,
    TsigRefused,
    check_names,
    differs,
    ignored_error,
    normalize_name,
)


class FakeZone:
    """One zone's record sets in ``records`` ((name, type) → Record), which a test may change
    by hand. With ``down`` every call raises DnsUnavailable; with ``tsig_refused`` an apply
    that would send something raises TsigRefused and changes nothing. ``serial`` counts the
    applies that changed something (the SOA serial a real server would bump), and
    ``messages_sent`` them too (the fake sends one message per apply)."""

    def __init__(self, zone: str, records: Iterable[Record] = ()) -> None:
        self.zone = normalize_name(zone)
        self.records: dict[tuple[str, str], Record] = {record.key: record for record in records}
        self.down = False
        self.tsig_refused = False
        self.serial = 1
        self.messages_sent = 0

    def _check_up(self) -> None:
        if self.down:
            raise DnsUnavailable(f"the DNS server of {self.zone} (fake) does not answer")

    def read(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Record | None]:
        keys = list(dict.fromkeys(check_names(self.zone, wanted)))
        self._check_up()
        return {key: self.records.get(key) for key in keys}

    def apply(self, changes: Sequence[Change]) -> int:
        last: dict[tuple[str, str], Change] = {}
        for change in changes:
            [key] = check_names(self.zone, [change.record.key])
            last.pop(key, None)
            last[key] = change
        self._check_up()
        needed = [change for key, change in last.items()
                  if differs(change, self.records.get(key))]
        if not needed:
            return 0
        if self.tsig_refused:
            raise TsigRefused(f"the DNS server of {self.zone} (fake) refused the TSIG key")
        # In order, as a server takes an update, skipping what RFC 2136 §3.4.2 makes it skip.
        ignored = []
        for change in needed:
            if self._skipped(change):
                ignored.append(change)
            elif change.action == "replace":
                self.records[change.record.key] = change.record
            else:
                del self.records[change.record.key]
        self.serial += 1
        self.messages_sent += 1
        if ignored:
            raise ignored_error(f"of {self.zone} (fake)", ignored)
        return len(needed)

    def _skipped(self, change: Change) -> bool:
        """Whether a server would skip ``change``: a CNAME beside other records, a record
        beside a CNAME, the removal of the zone's own NS set."""
        name, type = change.record.key
        if change.action == "delete":
            return type == "NS" and name == self.zone
        others = {other_type for (other_name, other_type) in self.records
                  if other_name == name and other_type != type}
        return bool(others) if type == "CNAME" else "CNAME" in others
