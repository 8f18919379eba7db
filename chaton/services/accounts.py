"""Each instance's own read-only account in the directory: ``cn=<slug>,ou=services,<base>``.

An application that logs people in through LDAP (its manifest says
``[ldap] supported = true``) searches the directory with an account of its
own, never an administrator's nor the person's: the managed slapd's access
rules (:mod:`chaton.adapters.slapd`) let these accounts read what a login
needs of people (uid, names, mail, ``memberOf``) and the groups, never a
password nor an SSH key, and write nothing.

The account's password is one of the instance's generated secrets
(:data:`PASSWORD_SECRET`, stored encrypted like the others); the reconciler
hands it and the DN to the application as ``{ldap.bind_password}`` and
``{ldap.bind_dn}``. :func:`sync` makes the directory match the instances: it
adds the accounts of new instances (and ``ou=services``), sets a password
that no longer matches, and removes the account of an instance being closed
or gone. The services reconciler calls it before starting anything, so an
application never starts without its account.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from chaton.adapters.ldap import (
    Attributes,
    Change,
    Directory,
    LdapAlreadyExists,
    LdapNoSuchEntry,
    escape_dn_value,
    normalize_dn,
)
from chaton.services.models import DesiredState, Instance

logger = logging.getLogger("chaton.services")

#: The instance secret holding the account's password (see instance_secrets.secret_lengths).
PASSWORD_SECRET = "ldap_bind_password"  # noqa: S105 (a secret's name, not its value)
PASSWORD_LENGTH = 32
SERVICES_OU = "services"
#: What sync reads of the existing accounts.
_ATTRIBUTES = ("objectclass", "cn", "userpassword")


def services_dn(base: str) -> str:
    return f"ou={SERVICES_OU},{base}"


def account_dn(slug: str, base: str) -> str:
    """Given an instance's slug and the base DN, return the DN of its service account."""
    return f"cn={escape_dn_value(slug)},{services_dn(base)}"


def has_account(instance: Instance) -> bool:
    """Return whether ``instance`` has (or should have) a service account: its application
    logs in through LDAP and the instance is not being closed."""
    try:
        supported = instance.manifest.ldap.supported
    except KeyError:
        return False  # the application left the catalogue: nothing to log in to
    return supported and instance.state != DesiredState.REMOVED


def hash_password(password: str) -> bytes:
    """Return slapd's ``{ARGON2}`` value for a service account's password.

    The password is 32 random characters: light argon2 parameters are enough,
    and every bind of the service stays cheap for slapd.
    """
    import argon2

    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    return ("{ARGON2}" + hasher.hash(password)).encode("ascii")


def password_matches(values: Sequence[bytes], password: str) -> bool:
    """Return whether the ``userPassword`` values hold an argon2 hash of ``password``."""
    import argon2

    hasher = argon2.PasswordHasher()
    for value in values:
        text = value.decode("ascii", errors="replace")
        if not text.startswith("{ARGON2}"):
            continue
        try:
            if hasher.verify(text.removeprefix("{ARGON2}"), password):
                return True
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            continue
    return False


def _entry(slug: str, password: str) -> Attributes:
    return {
        "objectclass": [b"top", b"applicationProcess", b"simpleSecurityObject"],
        "cn": [slug.encode()],
        "description": [f"Read-only account of the Chaton instance {slug}".encode()],
        "userpassword": [hash_password(password)],
    }


def plan(directory: Directory, base: str, instances: Iterable[Instance]) -> list[Change]:
    """Given the directory, its base DN and every instance, return the changes that make the
    service accounts match them (empty when they do).

    Raise LdapError (LdapUnavailable …) when the directory cannot be read, and
    SecretError when an instance's secrets do not decrypt.
    """
    from chaton.services import instance_secrets

    ou = services_dn(base)
    changes: list[Change] = []
    if not directory.exists(ou):
        changes.append(Change("add", ou, {"objectclass": [b"top", b"organizationalUnit"],
                                          "ou": [SERVICES_OU.encode()]}))
        existing: dict[str, Attributes] = {}
    else:
        existing = directory.read_subtree(ou, _ATTRIBUTES)
    wanted: set[str] = set()
    for instance in instances:
        if not has_account(instance):
            continue
        dn = account_dn(instance.slug, base)
        key = normalize_dn(dn)
        wanted.add(key)
        password = instance_secrets.ensure(instance)[PASSWORD_SECRET]
        current = existing.get(key)
        if current is None:
            changes.append(Change("add", dn, _entry(instance.slug, password)))
        elif not password_matches(current.get("userpassword", []), password):
            changes.append(Change("modify", dn, {"userpassword": [hash_password(password)]}))
    changes += [Change("delete", dn) for dn in sorted(existing) if dn not in wanted]
    return changes


def sync(*, dry_run: bool = False) -> list[str]:
    """Make the directory's service accounts match the instances; return one line per change.

    With ``dry_run`` the changes are computed, not written. Raise LdapError
    when the directory cannot be read or refuses a change (the next run
    completes what this one could not).
    """
    from chaton.directory.backend import base_dn, get_directory

    directory = get_directory()
    base = base_dn()
    changes = plan(directory, base, Instance.objects.all())
    if changes and not dry_run:
        # The organizational unit on its own first: writes on one connection are pipelined,
        # and an account sent with its parent could reach slapd before it.
        parent = [change for change in changes if change.dn == services_dn(base)]
        for batch in (parent, [change for change in changes if change not in parent]):
            for change, error in zip(batch, directory.apply(batch), strict=True):
                # Another reconcile (the worker's, an action's) may have just done the same.
                raced = ((change.kind == "add" and isinstance(error, LdapAlreadyExists))
                         or (change.kind == "delete" and isinstance(error, LdapNoSuchEntry)))
                if error is not None and not raced:
                    raise error
    lines = [f"{change.kind} {change.dn}" for change in changes]
    for line in lines:
        logger.info("services: service account: %s%s", line, " (dry run)" if dry_run else "")
    return lines
