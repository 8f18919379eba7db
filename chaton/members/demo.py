"""The members' part of ``chaton demo``: invented persons, organizations, memberships, dues.

Every name here is made up (the e-mail addresses are in ``example.org``, a
domain reserved for examples). The directory's part
(:mod:`chaton.directory.demo`) gives them their accounts. Each item is created
only when it is missing (see :mod:`chaton.core.demo`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.demo import DemoReport
from chaton.core.errors import Conflict
from chaton.members import actions as member_actions
from chaton.members.models import Membership, MembershipKind, Organization, Person


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


def load(report: DemoReport) -> None:
    """Add the demo's persons and organizations, with their memberships and dues, where
    missing. Raise RealCollective, before writing anything, when the collective has
    members that are not the demo's."""
    _refuse_a_real_collective()
    today = clock.today()
    _load_persons(report, today)
    _load_organizations(report, today)
