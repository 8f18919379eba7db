"""Small helpers the tests share: wait for a condition, read a group's members in LDAP."""

from __future__ import annotations

import time
from collections.abc import Callable

from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.client import LdapDirectory


def wait_until(condition: Callable[[], bool], seconds: float, *, poll: float = 0.1) -> float:
    """Poll ``condition`` until true; return the seconds it took. Fail after ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"not within {seconds:g} s"
        time.sleep(poll)
    return time.monotonic() - start


def members_of(directory: LdapDirectory, dn: str) -> set[str]:
    """Given a directory and a group's DN, return its ``member`` values, normalised."""
    entry = directory.read([dn], ["member"]).get(normalize_dn(dn)) or {}
    return {normalize_dn(value.decode() if isinstance(value, bytes) else value)
            for value in entry.get("member", [])}
