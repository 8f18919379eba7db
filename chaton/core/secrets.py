"""Secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key comes from ``$CHATON_SECRETS_KEY``, or from ``secrets.key`` in the data
directory, created readable by its owner only. Keep a copy of that key apart
from the backups of the database: one without the other reveals nothing.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from chaton.core import runner


class SecretError(ValueError):
    """A ciphertext does not decrypt with this installation's key."""


@functools.cache
def _fernet(data_dir: str) -> Fernet:
    key = os.environ.get("CHATON_SECRETS_KEY")
    if not key:
        path = Path(data_dir) / "secrets.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(Fernet.generate_key())
        key = path.read_text(encoding="ascii").strip()
    return Fernet(key.encode("ascii"))


def _data_dir() -> str:
    from django.conf import settings

    return str(settings.DATA_DIR)


def encrypt(plaintext: str, *, data_dir: str | None = None) -> str:
    """Return ``plaintext`` encrypted, as text safe to store in a database or file."""
    runner.register_secret(plaintext)
    return _fernet(data_dir or _data_dir()).encrypt(plaintext.encode()).decode("ascii")


def decrypt(ciphertext: str, *, data_dir: str | None = None) -> str:
    """Return the plaintext of ``ciphertext``. Raise SecretError if the key does not fit."""
    try:
        plaintext = _fernet(data_dir or _data_dir()).decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise SecretError("this secret was encrypted with another key") from None
    runner.register_secret(plaintext)
    return plaintext
