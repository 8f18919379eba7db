"""Stand-in for ``chaton.adapters.opendkim`` (the contract), with its fake ``FakeSigner``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chaton.adapters import Slot


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    private_key_pem: str


class SignerError(Exception):
    """The signer failed."""


class SignerUnavailable(SignerError):
    """The signer cannot be reached or reloaded."""


@runtime_checkable
class Signer(Protocol):
    def install(self, keys: Sequence[SigningKey]) -> None:
        ...

    def held(self) -> dict[tuple[str, str], str]:
        ...


slot: Slot[Signer] = Slot("signer", Signer)


@contextmanager
def use_signer(replacement: Signer | Callable[[Any], Signer]) -> Iterator[Any]:
    with slot.use(replacement) as held:
        yield held


class FakeSigner:
    """Holds the keys it was given; ``down`` makes it fail."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.down = False

    def install(self, keys: Sequence[SigningKey]) -> None:
        if self.down:
            raise SignerUnavailable("the signer does not reload")
        self.keys = list(keys)

    def held(self) -> dict[tuple[str, str], str]:
        from chaton.mail.keys import public_key_of

        return {(key.domain, key.selector): public_key_of(key.private_key_pem)
                for key in self.keys}
