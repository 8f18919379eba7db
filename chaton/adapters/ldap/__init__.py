"""The LDAP adapter: the only code that talks to the directory server.

A small interface, :class:`Directory`, one real client
(:class:`chaton.adapters.ldap.client.LdapDirectory`, python-ldap) and one
in-memory fake (:class:`chaton.adapters.ldap.fake.FakeDirectory`). Nothing
here imports Django.

Entries are plain values: a DN and a mapping of lower-case attribute names to
lists of byte strings. DNs are compared in their :func:`normalize_dn` form.

Exceptions::

    LdapError(Exception)
    ├── LdapUnavailable(ConnectionError)   the server is down, unreachable or too slow
    ├── LdapAuthError(PermissionError)     the bind was refused
    ├── LdapNoSuchEntry(LookupError)       the entry (or its parent) does not exist
    ├── LdapAlreadyExists                  an add met an existing entry
    └── LdapRejected(ValueError)           the server refused a value (schema, syntax)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from chaton.adapters import Slot

Attributes = dict[str, list[bytes]]


class LdapError(Exception):
    """Base of every error this adapter raises."""


class LdapUnavailable(LdapError, ConnectionError):
    pass


class LdapAuthError(LdapError, PermissionError):
    pass


class LdapNoSuchEntry(LdapError, LookupError):
    pass


class LdapAlreadyExists(LdapError):
    pass


class LdapRejected(LdapError, ValueError):
    pass


@dataclass(frozen=True)
class Change:
    """One write to the directory.

    ``add`` carries the whole entry; ``modify`` carries the attributes to
    replace (an empty list removes the attribute); ``delete`` carries nothing.
    """

    kind: Literal["add", "modify", "delete"]
    dn: str
    attributes: Mapping[str, Sequence[bytes]] = field(default_factory=dict)


@runtime_checkable
class Directory(Protocol):
    """What Chaton needs from a directory server."""

    def read_subtree(self, base: str, attributes: Sequence[str]) -> dict[str, Attributes]:
        """Given a base DN, return every entry under it (base excluded), keyed by normalized DN.

        Only ``attributes`` are read (plus nothing operational); a missing base
        returns an empty mapping. Raise LdapUnavailable.
        """
        ...

    def exists(self, dn: str) -> bool:
        """Return whether the entry ``dn`` exists. Raise LdapUnavailable."""
        ...

    def read(self, dns: Sequence[str], attributes: Sequence[str]) -> dict[str, Attributes]:
        """Given DNs, return those that exist with their ``attributes``, keyed by normalized DN."""
        ...

    def apply(self, changes: Sequence[Change]) -> list[LdapError | None]:
        """Apply ``changes`` in order and return, for each, None or the error it met.

        A failed change does not stop the others (they are independent or
        ordered parents first). Raise LdapUnavailable if the server goes away:
        the changes already applied stay applied.
        """
        ...

    def check_password(self, dn: str, password: str) -> bool:
        """Return whether a simple bind as ``dn`` with ``password`` succeeds."""
        ...

    def search(self, base: str, filter_template: str, values: Sequence[str],
               attributes: Sequence[str]) -> dict[str, Attributes]:
        """Search under ``base`` with a filter whose ``{}`` placeholders take escaped ``values``."""
        ...

    def close(self) -> None: ...


_NEEDS_PARSING = re.compile(r'[\s\\"+#;<>]')


def normalize_dn(dn: str) -> str:
    """Return ``dn`` in the form Chaton compares DNs: lower case, no spaces around separators."""
    if not _NEEDS_PARSING.search(dn):
        return dn.lower()  # the common case, 50x faster than parsing: a directory has many DNs
    import ldap.dn

    try:
        parts = ldap.dn.str2dn(dn)
    except ldap.DECODING_ERROR:
        return dn.lower()
    return ldap.dn.dn2str(
        [[(name.lower(), value.lower(), kind) for name, value, kind in rdn] for rdn in parts]
    )


def escape_dn_value(value: str) -> str:
    """Return ``value`` escaped for use as an RDN value (RFC 4514)."""
    import ldap.dn

    return ldap.dn.escape_dn_chars(value)


def escape_filter_value(value: str) -> str:
    """Return ``value`` escaped for use inside a search filter (RFC 4515)."""
    import ldap.filter

    return ldap.filter.escape_filter_chars(value)


_DJANGO_ARGON2 = re.compile(
    # argon2i and argon2id only: slapd's module verifies those two variants, not argon2d.
    r"argon2(?P<phc>\$argon2(?:id|i)(?:\$v=\d+)?\$m=\d+,t=\d+,p=\d+"
    r"\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+)"
)


def argon2_userpassword(django_encoded: str) -> str:
    """Given a hash from Django's Argon2PasswordHasher, return it as slapd's userPassword value.

    Django stores ``argon2`` followed by the standard PHC string
    (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``, unpadded base64); slapd's argon2
    module (linked to libargon2) verifies ``{ARGON2}`` followed by that same PHC
    string. Only the scheme prefix changes, so the clear password is never needed
    and one hash serves the web login and LDAP binds.
    (slapd itself hashes with argon2i, m=4096, t=3, p=1, and verifies argon2i and
    argon2id alike.)
    Raise ValueError when ``django_encoded`` is not an argon2 hash in Django's form.
    """
    match = _DJANGO_ARGON2.fullmatch(django_encoded)
    if match is None:
        # Never echo the value: it is a password hash.
        raise ValueError("not a Django argon2 hash (expected argon2$argon2id$v=19$m=…)")
    return "{ARGON2}" + match["phc"]


#: Where a test's replacement for the real client sits (see :mod:`chaton.adapters`).
slot: Slot[Directory] = Slot("ldap", Directory)


def use_ldap(replacement: Directory | Callable[[Any], Directory], base_dn: str | None = None
            ) -> AbstractContextManager[Directory | Callable[[Any], Directory]]:
    """Within the block, every ldap client comes from ``replacement``: a Directory, or a
    function of None (there is one directory) returning one (tests, benchmarks).
    ``base_dn`` is the directory's base (default: the replacement's ``base_dn``)."""
    if base_dn is None:
        base_dn = getattr(replacement, "base_dn", None)
    return slot.use(replacement, base_dn=base_dn)
