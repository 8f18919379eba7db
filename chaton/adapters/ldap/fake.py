"""An in-memory directory for the fast unit tests: same interface, same errors."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from chaton.adapters.ldap import (
    Attributes,
    Change,
    LdapAlreadyExists,
    LdapError,
    LdapNoSuchEntry,
    LdapUnavailable,
    escape_filter_value,
    normalize_dn,
)


class FakeDirectory:
    """Entries in a dict. Set ``available = False`` to simulate a server that is down."""

    def __init__(self, base_dn: str = "dc=chaton,dc=test") -> None:
        self.base_dn = base_dn
        self.entries: dict[str, Attributes] = {normalize_dn(base_dn): {}}
        self.passwords: dict[str, str] = {}
        self.available = True
        self.calls: list[str] = []

    def _check(self) -> None:
        if not self.available:
            raise LdapUnavailable("fake directory is down")

    def read_subtree(self, base: str, attributes: Sequence[str]) -> dict[str, Attributes]:
        self._check()
        self.calls.append("read_subtree")
        suffix = "," + normalize_dn(base)
        wanted = {name.lower() for name in attributes}
        return {dn: {name: list(values) for name, values in entry.items() if name in wanted}
                for dn, entry in self.entries.items() if dn.endswith(suffix)}

    def exists(self, dn: str) -> bool:
        self._check()
        return normalize_dn(dn) in self.entries

    def read(self, dns: Sequence[str], attributes: Sequence[str]) -> dict[str, Attributes]:
        self._check()
        wanted = {name.lower() for name in attributes}
        found = {}
        for dn in map(normalize_dn, dns):
            if dn in self.entries:
                found[dn] = {name: list(values) for name, values in self.entries[dn].items()
                             if name in wanted}
        return found

    def search(self, base: str, filter_template: str, values: Sequence[str],
               attributes: Sequence[str]) -> dict[str, Attributes]:
        """Support the simple filters Chaton uses: ``(attr={})`` joined by ``&``."""
        self._check()
        search_filter = filter_template.format(*(escape_filter_value(v) for v in values))
        terms = re.findall(r"\(([A-Za-z]+)=([^()]*)\)", search_filter)
        found: dict[str, Attributes] = {}
        for dn, entry in self.read_subtree(base, [*attributes, *(n for n, _ in terms)]).items():
            if all(any(fnmatch.fnmatchcase(value.decode().lower(), _unescape(pattern).lower())
                       for value in entry.get(name.lower(), []))
                   for name, pattern in terms):
                found[dn] = {name.lower(): entry.get(name.lower(), []) for name in attributes
                             if name.lower() in entry}
        return found

    def apply(self, changes: Sequence[Change]) -> list[LdapError | None]:
        self._check()
        outcomes: list[LdapError | None] = []
        for change in changes:
            self.calls.append(f"{change.kind} {change.dn}")
            dn = normalize_dn(change.dn)
            if change.kind == "add":
                if dn in self.entries:
                    outcomes.append(LdapAlreadyExists(change.dn))
                    continue
                if dn.split(",", 1)[1] not in self.entries:
                    outcomes.append(LdapNoSuchEntry(f"parent of {change.dn}"))
                    continue
                self.entries[dn] = {k.lower(): list(v) for k, v in change.attributes.items()}
            elif dn not in self.entries:
                outcomes.append(LdapNoSuchEntry(change.dn))
                continue
            elif change.kind == "modify":
                for name, values in change.attributes.items():
                    if values:
                        self.entries[dn][name.lower()] = list(values)
                    else:
                        self.entries[dn].pop(name.lower(), None)
            else:
                del self.entries[dn]
            outcomes.append(None)
        return outcomes

    def check_password(self, dn: str, password: str) -> bool:
        self._check()
        return bool(password) and self.passwords.get(normalize_dn(dn)) == password

    def close(self) -> None:
        pass


def _unescape(pattern: str) -> str:
    """Turn an RFC 4515 escaped value into an fnmatch pattern (``*`` stays a wildcard)."""
    pattern = pattern.replace("[", "[[]")
    return re.sub(r"\\([0-9a-fA-F]{2})", lambda m: "[" + chr(int(m.group(1), 16)) + "]", pattern)
