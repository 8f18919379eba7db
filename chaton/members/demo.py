"""An invented collective to try Chaton with: ``chaton demo``.

Every name here is made up (the e-mail addresses are in ``example.org``, a
domain reserved for examples). Everything is written through the ``do_*``
actions, so the demo leaves the same audit trail and directory entries as real
use. Each item is created only when it is missing: loading the demo twice
changes nothing the second time, and never overwrites what someone changed.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.backups.demo import load_demo as load_backups_demo
from chaton.core import clock, runner
from chaton.core.errors import ChatonError, Conflict
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, Group, GroupKind, GroupMembership
from chaton.governance.demo import create_demo_decisions
from chaton.members import actions as member_actions
from chaton.members.models import Membership, MembershipKind, Organization, Person
from chaton.services.demo import load_demo as load_services_demo

#: The demo administrator's uid (the one ``make run`` documents).
ADMIN_UID = "admin"


@dataclass(frozen=True)
class DemoPerson:
    full_name: str
    email: str
    #: Days between the start of the membership and today.
    joined_days_ago: int
    kind: str = MembershipKind.REGULAR
    dues: str = "20.00"
    #: The account's uid; empty for a member without an account.
    uid: str = ""
    #: Days ago the membership ended; None while it runs.
    left_days_ago: int | None = None


PERSONS = (
    DemoPerson("Alix Tournesol", "alix.tournesol@example.org", 350, uid="alix", dues="30.00"),
    DemoPerson("Basile Pimprenelle", "basile.pimprenelle@example.org", 320, uid="basile"),
    DemoPerson("Capucine Frangipane", "capucine.frangipane@example.org", 290, uid="capucine",
               dues="15.00"),
    DemoPerson("Dorian Cassoulet", "dorian.cassoulet@example.org", 260, uid="dorian",
               kind=MembershipKind.SUPPORT, dues="50.00"),
    DemoPerson("Eulalie Moustache", "eulalie.moustache@example.org", 230, uid="eulalie",
               dues="10.00"),
    DemoPerson("Fulbert Papillote", "fulbert.papillote@example.org", 200, uid="fulbert",
               kind=MembershipKind.SUPPORT, dues="5.00"),
    DemoPerson("Gaspard Tartempion", "gaspard.tartempion@example.org", 170, uid="gaspard"),
    DemoPerson("Hortense Biscotte", "hortense.biscotte@example.org", 140, uid="hortense",
               dues="25.00"),
    DemoPerson("Ignace Calebasse", "ignace.calebasse@example.org", 110, uid="ignace",
               dues="0.00"),
    DemoPerson("Joséphine Pistache", "josephine.pistache@example.org", 75, uid="josephine",
               kind=MembershipKind.SUPPORT, dues="12.00"),
    # Joined a few days ago: not yet past the voting delay.
    DemoPerson("Kléber Rutabaga", "kleber.rutabaga@example.org", 4, dues="20.00"),
    # Left last month: a past member, still in the records.
    DemoPerson("Léontine Galipette", "leontine.galipette@example.org", 340, dues="20.00",
               left_days_ago=30),
)


@dataclass(frozen=True)
class DemoOrganization:
    name: str
    slug: str
    email: str
    joined_days_ago: int
    kind: str
    dues: str
    #: The uid of the account it owns; empty for none.
    uid: str = ""


ORGANIZATIONS = (
    DemoOrganization("Les Jardiniers Lunaires", "jardiniers-lunaires",
                     "bureau@jardiniers-lunaires.example.org", 300, MembershipKind.REGULAR,
                     "80.00", uid="jardiniers"),
    DemoOrganization("Amicale du Rutabaga Volant", "rutabaga-volant",
                     "contact@rutabaga-volant.example.org", 120, MembershipKind.SUPPORT, "40.00"),
)


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


@dataclass
class DemoReport:
    """What loading the demo created; empty lists when it was already loaded."""

    created: list[str] = field(default_factory=list)
    #: The administrator's password, set only when the account was created by this run.
    admin_password: str | None = None
    #: What could not be loaded (the demo stands without it), for people.
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created)


def _generate_ssh_public_key(comment: str) -> str:
    """Return a fresh ed25519 public key line. Raise CommandError if ssh-keygen fails."""
    with tempfile.TemporaryDirectory(prefix="chaton-demo-") as directory:
        key_path = Path(directory) / "id_ed25519"
        runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(key_path)], timeout=30)
        # The private half is thrown away with the directory: a demo key opens nothing.
        return key_path.with_suffix(".pub").read_text(encoding="ascii").strip()


def _load_persons(report: DemoReport, today: dt.date) -> None:
    for item in PERSONS:
        person = Person.objects.filter(email=item.email).first()
        if person is None:
            person = member_actions.do_create_person(item.full_name, item.email,
                                                     acting_user=None)
            report.created.append(_("person %(name)s") % {"name": item.full_name})
        if not person.memberships.exists():
            ends_on = (today - dt.timedelta(days=item.left_days_ago)
                       if item.left_days_ago is not None else None)
            membership = member_actions.do_start_membership(
                person, acting_user=None, kind=item.kind, ends_on=ends_on,
                starts_on=today - dt.timedelta(days=item.joined_days_ago))
            _recorded_at_the_time(membership)
            member_actions.do_record_dues(membership, Decimal(item.dues),
                                          membership.starts_on, acting_user=None)
            report.created.append(_("membership of %(name)s") % {"name": item.full_name})
        if item.uid and not Account.objects.filter(uid=item.uid).exists():
            account = directory_actions.do_create_account(
                item.uid, acting_user=None, display_name=item.full_name, email=item.email,
                person=person)
            # The invented history has the account since the membership began, so that the
            # demo's past ballots count its votes.
            Account.objects.filter(pk=account.pk).update(person_linked_at=None)
            report.created.append(_("account %(uid)s") % {"uid": item.uid})


def _recorded_at_the_time(membership: Membership) -> None:
    """Date the demo's invented membership as recorded on its first day, as if the
    collective had used Chaton all along (a real one is recorded on the day it is entered)."""
    Membership.objects.filter(pk=membership.pk).update(recorded_on=membership.starts_on)


def _load_organizations(report: DemoReport, today: dt.date) -> None:
    for item in ORGANIZATIONS:
        organization = Organization.objects.filter(slug=item.slug).first()
        if organization is None:
            organization = member_actions.do_create_organization(
                item.name, item.email, acting_user=None, slug=item.slug)
            report.created.append(_("organization %(name)s") % {"name": item.name})
        if not organization.memberships.exists():
            membership = member_actions.do_start_membership(
                organization, acting_user=None, kind=item.kind,
                starts_on=today - dt.timedelta(days=item.joined_days_ago))
            _recorded_at_the_time(membership)
            member_actions.do_record_dues(membership, Decimal(item.dues),
                                          membership.starts_on, acting_user=None)
            report.created.append(_("membership of %(name)s") % {"name": item.name})
        if item.uid and not Account.objects.filter(uid=item.uid).exists():
            directory_actions.do_create_account(item.uid, acting_user=None,
                                                display_name=item.name, email=item.email,
                                                organization=organization)
            report.created.append(_("account %(uid)s") % {"uid": item.uid})


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


class RealCollective(Conflict):
    """The demo was asked for on a collective that has members of its own."""

    code = "real_collective"


def _refuse_a_real_collective() -> None:
    """Raise RealCollective when a person or organization that is not the demo's exists.

    The demo records memberships as if made long ago (no voting delay), casts
    its invented members' votes and executes what they adopt: among real
    members, that would change the electorate, the votes and the protected
    groups without them.
    """
    if (Person.objects.exclude(email__in=[item.email for item in PERSONS]).exists()
            or Organization.objects.exclude(
                slug__in=[item.slug for item in ORGANIZATIONS]).exists()):
        raise RealCollective(_("This collective has members of its own: the demo's invented "
                               "members, memberships and votes would join theirs. Load the "
                               "demo on a new collective only."))


def load_demo() -> DemoReport:
    """Create whatever part of the demo collective is missing; return what was created.

    Raise RealCollective when the collective has members that are not the
    demo's, ChatonError if an action refuses a demo value (say, an e-mail
    address already used by a real account), and CommandError if ssh-keygen
    fails.
    """
    _refuse_a_real_collective()
    report = DemoReport()
    today = clock.today()
    _load_persons(report, today)
    _load_organizations(report, today)
    _load_groups(report)
    _load_ssh_key(report)
    _load_admin(report)
    report.created.extend(create_demo_decisions())
    try:
        report.created.extend(load_backups_demo().created)
    except ChatonError as error:  # the demo collective stands without its backup plan
        logging.getLogger("chaton.backups").warning("demo: no backup plan: %s", error)
    try:
        report.created.extend(load_services_demo().created)
    except ChatonError as error:  # nor without its home page
        logging.getLogger("chaton.services").warning("demo: no home page: %s", error)
        report.warnings.append(_("The demo's home page could not be opened: %(error)s")
                               % {"error": error})
    return report
