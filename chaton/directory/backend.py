"""Which directory server Chaton talks to: the managed slapd, a configured one, or the one
a test put in :func:`chaton.adapters.ldap.use_ldap`."""

from __future__ import annotations

import threading
from pathlib import Path

from django.conf import settings

from chaton.adapters import ldap
from chaton.adapters.ldap import Directory
from chaton.adapters.ldap.client import LdapDirectory
from chaton.core import secrets

_connections = threading.local()


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
    """Return the directory's base DN: the replacement's in :func:`use_ldap`, else the
    configured one."""
    replaced: str | None = ldap.slot.detail("base_dn")
    return replaced if replaced is not None else settings.CHATON.ldap.base_dn


def get_directory() -> Directory:
    """Return this thread's connection to the directory; callers do not close it.

    One bound connection per thread: a bind makes slapd check an argon2 hash
    (about 100 ms), too dear to pay on every change. The connection reopens by
    itself after the server went away.
    """
    replacement = ldap.slot.current()
    if replacement is not None:
        return replacement
    connection: Directory | None = getattr(_connections, "directory", None)
    if connection is None:
        config = settings.CHATON.ldap
        if config.managed:
            connection = LdapDirectory(config.url, f"cn=admin,{config.base_dn}",
                                       managed_admin_password(), timeout=config.timeout)
        else:
            connection = LdapDirectory(config.url, config.bind_dn,
                                       config.resolved_bind_password(), timeout=config.timeout)
        _connections.directory = connection
    return connection

