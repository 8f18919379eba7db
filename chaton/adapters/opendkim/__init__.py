"""The DKIM signer adapter: what Chaton needs of the program that signs outgoing mail.

The :class:`Signer` protocol is what apps call: ``install`` the keys that sign now (the active
ones), and ask which key the signer ``held`` for each (domain, selector), so that the diagnosis
can compare it with the key in DNS. The real client is
:class:`chaton.adapters.opendkim.client.OpenDkimSigner`: it writes OpenDKIM's KeyTable,
SigningTable (``refile:``) and key files (0600) into OpenDKIM's folder and makes it reload
(SIGUSR1 to its pid, or a command given in settings). :class:`chaton.adapters.opendkim.fake.
FakeSigner` is the same interface in memory, for unit tests.

A :class:`SigningKey` names its domain and selector and carries the private key (PEM, RSA or
Ed25519); :func:`public_key_of` derives the record's ``p=`` value from it, so what the signer
holds is always read from the private key it signs with, never from a copy.

Exceptions::

    SignerError(Exception)                       the signer refused the keys (bad key, bad name)
    └── SignerUnavailable(SignerError, ConnectionError)
                                                 it is not running, or did not reload

Nothing here imports Django.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chaton.adapters import Slot

#: A selector or a domain label: letters, digits, hyphens, not at either end.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+{_LABEL}$")


class SignerError(Exception):
    """The signer refused the keys, or a key cannot be read; the message says which."""


class SignerUnavailable(SignerError, ConnectionError):
    """The signer is not running, or it did not take the new keys."""


@dataclass(frozen=True)
class SigningKey:
    """What the signer signs with: mail from ``domain`` is signed under ``selector``."""

    domain: str
    selector: str
    private_key_pem: str = field(repr=False)


def public_key_of(private_key_pem: str) -> str:
    """Given a private key (PEM, RSA or Ed25519), return its DKIM ``p=`` value: the base64 of
    the SubjectPublicKeyInfo (RSA, RFC 6376) or of the raw 32 bytes (Ed25519, RFC 8463).

    Raise SignerError when it is no such key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as failure:
        raise SignerError(f"not a private key in PEM: {failure}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()
    raise SignerError(f"a DKIM key is RSA or Ed25519, not {type(key).__name__}")


def check_keys(keys: Sequence[SigningKey]) -> dict[tuple[str, str], str]:
    """Given keys to install, return (domain, selector) → ``p=`` for each, domains lower case.

    Raise SignerError for a domain or selector that is not a DNS name (a table line could be
    forged from one), a (domain, selector) given twice, or a key that cannot be read.
    """
    held: dict[tuple[str, str], str] = {}
    for key in keys:
        domain = key.domain.lower().rstrip(".")
        if not _DOMAIN.match(domain):
            raise SignerError(f"not a domain name: {key.domain!r}")
        if not _SELECTOR.match(key.selector):
            raise SignerError(f"not a DKIM selector: {key.selector!r}")
        if (domain, key.selector) in held:
            raise SignerError(f"two keys for {key.selector}._domainkey.{domain}")
        held[(domain, key.selector)] = public_key_of(key.private_key_pem)
    return held


@runtime_checkable
class Signer(Protocol):
    def install(self, keys: Sequence[SigningKey]) -> None:
        """Make the signer sign with exactly ``keys`` (every mail of each key's domain, under
        its selector; several keys of one domain all sign): write its tables and key files,
        reload it. Installing the same keys again changes nothing.

        Raise SignerError for a bad key or name (nothing is changed), SignerUnavailable when
        the signer does not take them.
        """
        ...

    def held(self) -> dict[tuple[str, str], str]:
        """Return (domain, selector) → ``p=`` (base64) of each key the signer holds now.

        Raise SignerUnavailable when it cannot be read.
        """
        ...


slot: Slot[Signer] = Slot("signer", Signer)


def use_signer(replacement: Signer | Callable[[Any], Signer]
               ) -> AbstractContextManager[Signer | Callable[[Any], Signer]]:
    """Within the block, every signer client comes from ``replacement``: a Signer, or a
    function of the key (None: there is one signer) returning one (tests, benchmarks)."""
    return slot.use(replacement)
