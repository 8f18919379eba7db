"""The directory's part of ``chaton demo``: the accounts of the demo's members, its
groups, an SSH key and the demo administrator.

Runs after the members' part (:mod:`chaton.members.demo`), whose persons and
organizations name the accounts they get. Each item is created only when it is
missing (see :mod:`chaton.core.demo`).
"""

from __future__ import annotations

import datetime as dt
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock, runner
from chaton.core.demo import DemoReport
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, Group, GroupKind, GroupMembership
from chaton.members.demo import ORGANIZATIONS, PERSONS
from chaton.members.models import Organization, Person

#: The demo administrator's uid (the one ``make run`` documents).
ADMIN_UID = "admin"


@dataclass(frozen=True)
class DemoGroup:
    name: str
    #: Translated when the demo is loaded, in the collective's language.
    description: str | Promise
    kind: str
    #: (uid, days until the access expires, or None for no end).
    members: tuple[tuple[str, int | None], ...]


GROUPS = (
    DemoGroup("tech", gettext_lazy("Tech team: SSH access to the hosts"), GroupKind.TEAM,
              (("alix", None), ("basile", 20))),
    DemoGroup("core", gettext_lazy("Core team: runs the association"), GroupKind.TEAM,
              (("alix", None), ("capucine", None), ("dorian", None))),
    DemoGroup("members", gettext_lazy("Every member with an account"), GroupKind.MEMBERS,
              tuple((person.uid, None) for person in PERSONS if person.uid)),
)

#: The tech member who gets an SSH key.
SSH_KEY_UID = "alix"


def _generate_ssh_public_key(comment: str) -> str:
    """Return a fresh ed25519 public key line. Raise CommandError if ssh-keygen fails."""
    with tempfile.TemporaryDirectory(prefix="chaton-demo-") as directory:
        key_path = Path(directory) / "id_ed25519"
        runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(key_path)], timeout=30)
        # The private half is thrown away with the directory: a demo key opens nothing.
        return key_path.with_suffix(".pub").read_text(encoding="ascii").strip()


def _load_accounts(report: DemoReport) -> None:
    for person_item in PERSONS:
        person = Person.objects.filter(email=person_item.email).first()
        if (person is None or not person_item.uid
                or Account.objects.filter(uid=person_item.uid).exists()):
            continue
        account = directory_actions.do_create_account(
            person_item.uid, acting_user=None, display_name=person_item.full_name,
            email=person_item.email, person=person)
        # The invented history has the account since the membership began, so that the
        # demo's past ballots count its votes.
        Account.objects.filter(pk=account.pk).update(person_linked_at=None)
        report.created.append(_("account %(uid)s") % {"uid": person_item.uid})
    for organization_item in ORGANIZATIONS:
        organization = Organization.objects.filter(slug=organization_item.slug).first()
        if (organization is None or not organization_item.uid
                or Account.objects.filter(uid=organization_item.uid).exists()):
            continue
        directory_actions.do_create_account(
            organization_item.uid, acting_user=None, display_name=organization_item.name,
            email=organization_item.email, organization=organization)
        report.created.append(_("account %(uid)s") % {"uid": organization_item.uid})


def _load_groups(report: DemoReport) -> None:
    for item in GROUPS:
        group = Group.objects.filter(name=item.name).first()
        if group is None:
            group = directory_actions.do_create_group(item.name, acting_user=None,
                                                      description=str(item.description),
                                                      kind=item.kind)
            report.created.append(_("group %(name)s") % {"name": item.name})
        for uid, days in item.members:
            account = Account.objects.filter(uid=uid).first()
            # Someone may have deleted a demo account, or already changed the access: leave it.
            if account is None or GroupMembership.objects.filter(group=group,
                                                                 account=account).exists():
                continue
            expires_at = clock.now() + dt.timedelta(days=days) if days is not None else None
            directory_actions.do_add_to_group(group, account, acting_user=None,
                                              expires_at=expires_at)
            report.created.append(_("%(uid)s in %(group)s") % {"uid": uid, "group": item.name})


def _load_ssh_key(report: DemoReport) -> None:
    account = Account.objects.filter(uid=SSH_KEY_UID).first()
    if account is None or account.ssh_keys.exists():
        return
    key = _generate_ssh_public_key(f"{SSH_KEY_UID}@demo.example.org")
    directory_actions.do_add_ssh_key(account, key, acting_user=None)
    report.created.append(_("SSH key of %(uid)s") % {"uid": SSH_KEY_UID})


def _load_admin(report: DemoReport) -> None:
    if Account.objects.filter(uid=ADMIN_UID).exists():
        return
    password = secrets.token_urlsafe(12)
    runner.register_secret(password)
    directory_actions.do_create_account(
        ADMIN_UID, acting_user=None, display_name=_("Demo administrator"),
        email="admin@demo.example.org", password=password, is_admin=True,
        # Shown once to whoever loads the demo, who is this administrator.
        reserved_uid_allowed=True, password_by_owner=True)
    report.created.append(_("administrator account %(uid)s") % {"uid": ADMIN_UID})
    report.admin_password = password


def load(report: DemoReport) -> None:
    """Add the demo's accounts, groups, SSH key and administrator where missing.

    Raise ChatonError when an action refuses a demo value (an e-mail address
    already used by a real account, say), CommandError when ssh-keygen fails.
    """
    report.admin_uid = ADMIN_UID
    _load_accounts(report)
    _load_groups(report)
    _load_ssh_key(report)
    _load_admin(report)
