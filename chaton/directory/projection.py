"""How the database's accounts, groups and organizations look as LDAP entries.

The layout under the base DN::

    ou=people          uid=<uid>        inetOrgPerson, posixAccount, shadowAccount, ldapPublicKey
    ou=groups          cn=<name>        groupOfNames (member = DNs of the valid members)
    ou=organizations   o=<slug>         organization

An account appears only while it is active and not expired; a group member
only while their membership has not expired. A group with no valid member
lists itself as its only member, because groupOfNames requires one and no
account can ever match that DN.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Q

from chaton.adapters.ldap import (
    Attributes,
    argon2_userpassword,
    escape_dn_value,
    normalize_dn,
)
from chaton.core import clock
from chaton.directory.models import (
    Account,
    AccountState,
    Group,
    GroupKind,
    GroupMembership,
    SSHKey,
)
from chaton.members.models import Membership, Organization

OUS = ("people", "groups", "organizations")

#: Attributes Chaton owns on its entries; others (added by hand) are left alone.
MANAGED_ATTRIBUTES = (
    "objectclass", "ou", "uid", "cn", "sn", "displayname", "mail", "uidnumber", "gidnumber",
    "homedirectory", "loginshell", "userpassword", "sshpublickey", "o", "shadowexpire",
    "description", "member",
)

_EPOCH = dt.date(1970, 1, 1)


def userpassword(encoded: str) -> bytes | None:
    """Given Django's encoding of a password, return slapd's ``{ARGON2}`` value.

    Return None for an unusable or non-argon2 password: the entry then has no
    ``userPassword`` and nobody can bind as it.
    """
    try:
        return argon2_userpassword(encoded).encode("ascii")
    except ValueError:
        return None


def shadow_expire(expires_at: dt.datetime) -> bytes:
    """Given the instant an account ends, return its ``shadowExpire`` value.

    That is the first day, in the collective's time zone, that the account no
    longer covers at all, counted in days since 1970-01-01: an account whose
    last day is the 5th gets the 6th, whatever the hour in UTC.
    """
    return str((clock.first_day_after(expires_at) - _EPOCH).days).encode()


class Projection:
    """The DNs and desired entries for one base DN at one moment."""

    def __init__(self, base_dn: str, *, at: dt.datetime, users_gid_number: int) -> None:
        # Normalized once, so that every DN built below is already in compared form
        # (uids and group names are lower-case by validation).
        self.base_dn = normalize_dn(base_dn)
        self.at = at
        self.users_gid_number = str(users_gid_number).encode()

    def ou_dn(self, name: str) -> str:
        return f"ou={name},{self.base_dn}"

    def account_dn(self, uid: str) -> str:
        return f"uid={escape_dn_value(uid)},ou=people,{self.base_dn}"

    def group_dn(self, name: str) -> str:
        return f"cn={escape_dn_value(name)},ou=groups,{self.base_dn}"

    def organization_dn(self, slug: str) -> str:
        return f"o={escape_dn_value(slug)},ou=organizations,{self.base_dn}"

    def ou_entries(self) -> dict[str, Attributes]:
        return {self.ou_dn(name): {
            "objectclass": [b"top", b"organizationalUnit"], "ou": [name.encode()]}
            for name in OUS}

    def account_entry(self, *, uid: str, uid_number: int, display_name: str, email: str,
                      password: str, organization_name: str | None,
                      expires_at: dt.datetime | None, ssh_keys: Iterable[str]) -> Attributes:
        """Return the entry of one account, from its column values (no model instance needed)."""
        name = display_name.encode()
        entry: Attributes = {
            "objectclass": [b"top", b"inetOrgPerson", b"posixAccount", b"shadowAccount",
                            b"ldapPublicKey"],
            "uid": [uid.encode()],
            "cn": [name],
            "sn": [name],
            "displayname": [name],
            "mail": [email.encode()],
            "uidnumber": [str(uid_number).encode()],
            "gidnumber": [self.users_gid_number],
            "homedirectory": [f"/home/{uid}".encode()],
            "loginshell": [b"/bin/bash"],
        }
        hashed = userpassword(password)
        if hashed:
            entry["userpassword"] = [hashed]
        keys = sorted(key.encode() for key in ssh_keys)
        if keys:
            entry["sshpublickey"] = keys
        if organization_name is not None:
            entry["o"] = [organization_name.encode()]
        if expires_at is not None:
            entry["shadowexpire"] = [shadow_expire(expires_at)]
        return entry

    def group_entry(self, group: Group, member_dns: Iterable[str]) -> Attributes:
        members = sorted({dn.encode() for dn in member_dns}) or [self.group_dn(group.name).encode()]
        entry: Attributes = {
            "objectclass": [b"top", b"groupOfNames"],
            "cn": [group.name.encode()],
            "member": members,
        }
        if group.description:
            entry["description"] = [group.description.encode()]
        return entry

    def organization_entry(self, organization: Organization) -> Attributes:
        return {
            "objectclass": [b"top", b"organization"],
            "o": [organization.slug.encode()],
            "description": [organization.name.encode()],
        }

    def member_account_dns(self) -> list[str]:
        """Return the DNs of the accounts whose owner is a member of the collective today.

        A group of kind "members" holds them without anyone adding them: when a
        membership ends, member-only access ends with it.
        """
        today = clock.local_day(self.at)
        current = Membership.objects.current(today)
        accounts = (Account.objects.filter(state=AccountState.ACTIVE)
                    .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=self.at))
                    .filter(Q(person__memberships__in=current)
                            | Q(organization__memberships__in=current))
                    .distinct())
        return [self.account_dn(uid) for uid in accounts.values_list("uid", flat=True)]

    def desired(
        self,
        *,
        account_uids: Iterable[str] | None = None,
        group_names: Iterable[str] | None = None,
        organization_slugs: Iterable[str] | None = None,
    ) -> dict[str, Attributes]:
        """Return the desired entries keyed by normalized DN.

        With no argument: the whole directory. With arguments: only those
        accounts, groups and organizations (an empty iterable means none of
        that kind), and not the organizational units.
        """
        whole = account_uids is None and group_names is None and organization_slugs is None
        entries: dict[str, Attributes] = self.ou_entries() if whole else {}

        # Column values rather than model instances: the whole directory is
        # computed on every periodic reconcile, and instances cost 5x more.
        accounts = (Account.objects.filter(state=AccountState.ACTIVE)
                    .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=self.at)))
        if not whole:
            accounts = accounts.filter(uid__in=list(account_uids or []))
        keys: dict[int, list[str]] = defaultdict(list)
        key_rows = SSHKey.objects.values_list("account_id", "key")
        if not whole:
            key_rows = key_rows.filter(account__in=accounts)
        for account_id, key in key_rows:
            keys[account_id].append(key)
        for (pk, uid, uid_number, display_name, email, password, organization_name,
             expires_at) in accounts.values_list(
                "pk", "uid", "uid_number", "display_name", "email", "password",
                "organization__name", "expires_at"):
            entries[self.account_dn(uid)] = self.account_entry(
                uid=uid, uid_number=uid_number, display_name=display_name, email=email,
                password=password, organization_name=organization_name, expires_at=expires_at,
                ssh_keys=keys.get(pk, ()))

        groups = Group.objects.all()
        memberships = GroupMembership.objects.valid(self.at)
        if not whole:
            names = list(group_names or [])
            groups = groups.filter(name__in=names)
            memberships = memberships.filter(group__name__in=names)
        member_dns: dict[int, list[str]] = defaultdict(list)
        for group_id, uid in memberships.values_list("group_id", "account__uid"):
            member_dns[group_id].append(self.account_dn(uid))
        members_of_the_collective: list[str] | None = None
        for group in groups:
            dns = member_dns[group.pk]
            if group.kind == GroupKind.MEMBERS:
                if members_of_the_collective is None:
                    members_of_the_collective = self.member_account_dns()
                dns = dns + members_of_the_collective
            entries[self.group_dn(group.name)] = self.group_entry(group, dns)

        organizations = Organization.objects.all()
        if not whole:
            organizations = organizations.filter(slug__in=list(organization_slugs or []))
        for organization in organizations:
            entries[self.organization_dn(organization.slug)] = (
                self.organization_entry(organization))
        return entries
