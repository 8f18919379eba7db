"""Which directory server Chaton talks to: the managed slapd, a configured one, or a fake."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from chaton.adapters.ldap import Directory
from chaton.adapters.ldap.client import LdapDirectory
from chaton.core import secrets

_override: tuple[Directory, str] | None = None


def managed_slapd_dir() -> Path:
    return Path(settings.DATA_DIR) / "slapd"


def managed_admin_password() -> str:
    """Return the managed slapd's admin password, generated once and kept encrypted."""
    import secrets as random

    path = managed_slapd_dir() / "admin-password.enc"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.encrypt(random.token_urlsafe(24)), encoding="ascii")
    return secrets.decrypt(path.read_text(encoding="ascii"))


def base_dn() -> str:
    return _override[1] if _override else settings.CHATON.ldap.base_dn


def get_directory() -> Directory:
    """Return a new connection to the directory (the caller closes it)."""
    if _override is not None:
        return _override[0]
    config = settings.CHATON.ldap
    if config.managed:
        return LdapDirectory(config.url, f"cn=admin,{config.base_dn}",
                             managed_admin_password(), timeout=config.timeout)
    return LdapDirectory(config.url, config.bind_dn, config.bind_password, timeout=config.timeout)


@contextmanager
def use_directory(directory: Directory, base: str) -> Iterator[Directory]:
    """Make every directory call in the block go to ``directory`` (tests, benchmarks)."""
    global _override
    previous, _override = _override, (directory, base)
    try:
        yield directory
    finally:
        _override = previous
