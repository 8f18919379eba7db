"""Secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key comes from ``$CHATON_SECRETS_KEY``, or from ``secrets.key`` in the data
directory, created readable by its owner only. The default backup plan keeps
it inside the (encrypted) repository, and the recovery kit
(:mod:`chaton.backups.recovery`) shows it, to be stored off the server: without
it, a backup of the database cannot be read.
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


def current_key(*, data_dir: str | None = None) -> str:
    """Return this installation's key as text (``$CHATON_SECRETS_KEY``, else the key file).

    Creates the key file when there is none yet, as the first encryption would.
    For the recovery kit and Chaton's own backup: never log it.
    """
    key = os.environ.get("CHATON_SECRETS_KEY", "").strip()
    if not key:
        _fernet(data_dir or _data_dir())  # creates the file when missing
        key = (Path(data_dir or _data_dir()) / "secrets.key").read_text(encoding="ascii").strip()
    # Masked in every log line and error message of a subprocess, like the other secrets.
    runner.register_secret(key)
    return key


def is_valid_key(key: str) -> bool:
    """Return whether ``key`` is a well-formed key (32 bytes in URL-safe base64)."""
    try:
        Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def decrypts(key: str, ciphertext: str) -> bool:
    """Return whether ``ciphertext`` decrypts with ``key`` (not this installation's: any)."""
    try:
        Fernet(key.strip().encode("ascii")).decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, ValueError, UnicodeEncodeError):
        return False
    return True


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
