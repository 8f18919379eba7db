"""An in-memory signer for unit tests: same methods, same errors as OpenDkimSigner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chaton.adapters.opendkim import SignerUnavailable, SigningKey, check_keys


@dataclass
class FakeSigner:
    """Holds the keys last installed. ``down``: every call raises SignerUnavailable;
    ``frozen``: it takes no new keys (install raises SignerUnavailable, held() is unchanged),
    as an OpenDKIM that does not reload."""

    keys: dict[tuple[str, str], SigningKey] = field(default_factory=dict)
    down: bool = False
    frozen: bool = False
    reloads: int = 0

    def install(self, keys: Sequence[SigningKey]) -> None:
        check_keys(keys)
        if self.down:
            raise SignerUnavailable("the signer is not running")
        wanted = {(key.domain.lower().rstrip("."), key.selector): key for key in keys}
        if wanted == self.keys:
            return
        if self.frozen:
            raise SignerUnavailable("the signer did not reload")
        self.keys = wanted
        self.reloads += 1

    def held(self) -> dict[tuple[str, str], str]:
        if self.down:
            raise SignerUnavailable("the signer is not running")
        return check_keys(list(self.keys.values()))
