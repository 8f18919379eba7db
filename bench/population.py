"""A collective of 10,000 accounts and 200 groups, written straight into the database.

The benchmarks measure projection into the directory, not the actions: rows
are written with ``bulk_create``, and every account shares one argon2 hash
(hashing 10,000 passwords would take minutes and measure nothing of ours).
The data is invented and the same at every run (a seeded generator).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
import struct
from dataclasses import dataclass

ACCOUNT_COUNT = 10_000
GROUP_COUNT = 200
MEMBERS_PER_GROUP = 50
ORGANIZATION_COUNT = 20
#: Share of the accounts that have an SSH key.
KEY_SHARE = 0.3
#: Share of the accounts owned by a partner organization rather than a person.
ORGANIZATION_SHARE = 0.05
SSH_GROUP = "tech"


@dataclass(frozen=True)
class Population:
    """What was created, and one tech member with a key for the ssh-keys lookup."""

    accounts: int
    groups: int
    memberships: int
    ssh_keys: int
    tech_member_uid: str


def _ed25519_public_key(generator: random.Random, comment: str) -> tuple[str, str]:
    """Return (authorized_keys line, SHA256 fingerprint) of a made-up ed25519 public key."""
    key_type = b"ssh-ed25519"
    blob = (struct.pack(">I", len(key_type)) + key_type
            + struct.pack(">I", 32) + generator.randbytes(32))
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}", f"SHA256:{digest}"


def populate(*, seed: int = 20240501, account_count: int = ACCOUNT_COUNT,
             group_count: int = GROUP_COUNT) -> Population:
    """Fill the (empty, migrated) database with the benchmark's collective and return a summary.

    Django must be set up. Raise django.db.IntegrityError if the database is not empty.
    """
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from chaton.core import clock
    from chaton.directory.models import Account, Group, GroupMembership, SSHKey
    from chaton.members.models import Organization

    generator = random.Random(seed)
    password = make_password("benchmark password, shared by every account")
    now = clock.now()
    with transaction.atomic():
        organizations = Organization.objects.bulk_create([
            Organization(name=f"Partner association {index:02d}", slug=f"partner-{index:02d}",
                         email=f"contact@partner-{index:02d}.example.org")
            for index in range(ORGANIZATION_COUNT)])
        accounts = []
        for index in range(account_count):
            owner = (generator.choice(organizations)
                     if generator.random() < ORGANIZATION_SHARE else None)
            accounts.append(Account(
                uid=f"user{index:05d}", uid_number=10_000 + index,
                display_name=f"Bench User {index:05d}", email=f"user{index:05d}@example.org",
                password=password, organization=owner,
                # A tenth of the accounts expire some day in the next two years.
                expires_at=(now + dt.timedelta(days=generator.randint(30, 730))
                            if generator.random() < 0.1 else None)))
        accounts = Account.objects.bulk_create(accounts, batch_size=1000)

        keyed = [account for account in accounts if generator.random() < KEY_SHARE]
        keys = []
        for account in keyed:
            line, fingerprint = _ed25519_public_key(generator, f"{account.uid}@bench")
            keys.append(SSHKey(account=account, key=line, fingerprint=fingerprint))
        SSHKey.objects.bulk_create(keys, batch_size=1000)

        groups = Group.objects.bulk_create(
            [Group(name=SSH_GROUP, description="Tech team")]
            + [Group(name=f"group-{index:03d}", description=f"Bench group {index:03d}")
               for index in range(1, group_count)])
        memberships = []
        for group in groups:
            members = generator.sample(accounts, MEMBERS_PER_GROUP)
            if group.name == SSH_GROUP:
                # The ssh-keys lookup needs one permanent tech member with a key.
                members = [keyed[0], *[member for member in members if member != keyed[0]]]
                members = members[:MEMBERS_PER_GROUP]
            for position, member in enumerate(members):
                expires_at = (now + dt.timedelta(days=generator.randint(30, 365))
                              if position and generator.random() < 0.2 else None)
                memberships.append(GroupMembership(group=group, account=member,
                                                   expires_at=expires_at))
        GroupMembership.objects.bulk_create(memberships, batch_size=1000)
    return Population(accounts=len(accounts), groups=len(groups), memberships=len(memberships),
                      ssh_keys=len(keys), tech_member_uid=keyed[0].uid)
