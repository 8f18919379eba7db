"""Reads about members: the electorate, counts for the activity report, search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TypedDict

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.core.queries import is_database_id, lookup_text
from chaton.members.models import Membership, MembershipKind, Organization, Person

# -- lookups by natural key ----------------------------------------------------------------
#
# Every interface (pages, API, CLI, governance operations) finds a member through these: one
# message per thing, NotFound for the pages' 404, the API's ``not_found`` and the CLI's line.


def person_by_id(person_id: int, *, field: str = "person_id") -> Person:
    """Given a person's id, return them. Raise NotFound (also for an id out of range)."""
    person = Person.objects.filter(pk=person_id).first() if is_database_id(person_id) else None
    if person is None:
        raise NotFound(_("No person has this id."), field=field)
    return person


def person_by_email(email: str, *, field: str = "person") -> Person:
    """Given a person's email (any case, surrounding spaces ignored), return them.

    Raise NotFound.
    """
    key = lookup_text(email)
    person = Person.objects.filter(email__iexact=key).first() if key else None
    if person is None:
        raise NotFound(_("No person has the email “%(email)s”.") % {"email": email.strip()[:254]},
                       field=field)
    return person


def organization_by_id(organization_id: int, *, field: str = "organization_id") -> Organization:
    """Given an organization's id, return it. Raise NotFound (also for an id out of range)."""
    organization = (Organization.objects.filter(pk=organization_id).first()
                    if is_database_id(organization_id) else None)
    if organization is None:
        raise NotFound(_("No organization has this id."), field=field)
    return organization


def organization_by_slug(slug: str, *, field: str = "organization") -> Organization:
    """Given an organization's short name (surrounding spaces ignored), return it.

    Raise NotFound.
    """
    key = lookup_text(slug)
    organization = Organization.objects.filter(slug=key.lower()).first() if key else None
    if organization is None:
        raise NotFound(_("No organization has the short name “%(slug)s”.")
                       % {"slug": slug.strip()[:64]}, field=field)
    return organization


def member_by_name(name: str, *, field: str = "member") -> Person | Organization:
    """Given an email (a person) or a short name (an organization), return the member.

    Raise NotFound.
    """
    return person_by_email(name, field=field) if "@" in name else organization_by_slug(
        name, field=field)


def membership_by_id(membership_id: int, *, field: str = "membership_id") -> Membership:
    """Given a membership's id, return it, its member and dues loaded. Raise NotFound."""
    membership = (Membership.objects.select_related("person", "organization")
                  .prefetch_related("dues").filter(pk=membership_id).first()
                  if is_database_id(membership_id) else None)
    if membership is None:
        raise NotFound(_("No membership has this id."), field=field)
    return membership


def voting_delay_days() -> int:
    """Return the days of membership before a person votes: the governance policy's."""
    from chaton.core import gate

    return gate.voting_delay_days()


def voting_members(on: dt.date, delay_days: int | None = None) -> QuerySet[Person]:
    """Return the persons who may vote on ``on``.

    A person votes with a current membership of a voting kind that started, and
    was recorded, at least ``delay_days`` before (default: the policy's), or
    whose delay a decision waived. So a membership recorded today with a start
    months ago waits the delay like any other.
    """
    current = _voting(Membership.objects.current(on), on, delay_days)
    return Person.objects.filter(memberships__in=current).distinct()


def _voting(memberships: QuerySet[Membership], on: dt.date,
            delay_days: int | None) -> QuerySet[Membership]:
    """Keep the memberships of a voting kind past their voting delay on ``on`` (or waived)."""
    config = settings.CHATON.directory
    delay = voting_delay_days() if delay_days is None else delay_days
    joined_by = on - dt.timedelta(days=delay)
    return memberships.filter(kind__in=config.voting_kinds).filter(
        Q(starts_on__lte=joined_by, recorded_on__lte=joined_by) | Q(voting_delay_waived=True))


def voters_before_their_end(previous_ends: Mapping[int, dt.date | None], on: dt.date,
                            delay_days: int | None = None) -> set[int]:
    """Given memberships that an action ended (their id → the last day they had before,
    None: open-ended), return the ids of the persons who voted on ``on`` through them as
    they were (:func:`voting_members`' rule)."""
    found = _voting(Membership.objects.filter(pk__in=list(previous_ends), person__isnull=False,
                                              starts_on__lte=on), on, delay_days)
    persons = set()
    for membership in found:
        previous = previous_ends[membership.pk]
        if membership.person_id is not None and (previous is None or previous >= on):
            persons.add(membership.person_id)
    return persons


def is_voting_member(person: Person, on: dt.date) -> bool:
    return voting_members(on).filter(pk=person.pk).exists()


class KindCounts(TypedDict):
    regular: int
    support: int
    total: int


class MemberCounts(TypedDict):
    natural: KindCounts
    legal: KindCounts
    total: int


def member_counts(start: dt.date, end: dt.date | None = None) -> MemberCounts:
    """Count members by person type and membership kind, on a day or over a period.

    Over a period, a member counts once if any of their memberships ran on at
    least one day of it. Two queries whatever the number of members.
    """
    memberships = Membership.objects.overlapping(start, end or start)

    def counts(field: str) -> KindCounts:
        rows = (memberships.filter(**{f"{field}__isnull": False}).values("kind")
                .annotate(members=Count(field, distinct=True)))
        by_kind = {row["kind"]: row["members"] for row in rows}
        total = memberships.filter(**{f"{field}__isnull": False}).values(field).distinct().count()
        return {"regular": by_kind.get(MembershipKind.REGULAR, 0),
                "support": by_kind.get(MembershipKind.SUPPORT, 0), "total": total}

    natural, legal = counts("person"), counts("organization")
    return {"natural": natural, "legal": legal, "total": natural["total"] + legal["total"]}


def search_people(text: str) -> QuerySet[Person]:
    """Return persons whose name or email contains ``text`` (case-insensitive)."""
    people = Person.objects.all()
    if text.strip():
        people = people.filter(Q(full_name__icontains=text.strip())
                               | Q(email__icontains=text.strip()))
    return people


def search_organizations(text: str) -> QuerySet[Organization]:
    organizations = Organization.objects.all()
    if text.strip():
        organizations = organizations.filter(Q(name__icontains=text.strip())
                                             | Q(slug__icontains=text.strip()))
    return organizations


def memberships_with_dues(on: dt.date | None = None) -> QuerySet[Membership]:
    """Return memberships with their member joined and ``dues_total`` (a Decimal, or None).

    Only those running on ``on`` when it is given, all of them otherwise;
    oldest first. One query whatever the number of rows.
    """
    memberships = Membership.objects.all()
    if on is not None:
        memberships = memberships.current(on)
    return (memberships.select_related("person", "organization")
            .annotate(dues_total=Sum("dues__amount")).order_by("starts_on", "id"))


def open_membership_of(member: Person | Organization, on: dt.date) -> Membership | None:
    """Return the membership of ``member`` that runs on ``on`` or later, the latest one; or None."""
    owner = {"person": member} if isinstance(member, Person) else {"organization": member}
    return (Membership.objects.filter(**owner)
            .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=on))
            .order_by("-starts_on", "-id").first())


class HistoryPoint(TypedDict):
    day: dt.date
    natural: int
    legal: int


def member_history(days: list[dt.date]) -> list[HistoryPoint]:
    """Given days in order, return the number of members on each: one query in all."""
    if not days:
        return []
    rows = Membership.objects.overlapping(days[0], days[-1]).values_list(
        "starts_on", "ends_on", "person_id", "organization_id")
    points: list[HistoryPoint] = []
    for day in days:
        natural: set[int] = set()
        legal: set[int] = set()
        for starts_on, ends_on, person_id, organization_id in rows:
            if starts_on <= day and (ends_on is None or ends_on >= day):
                if person_id is not None:
                    natural.add(person_id)
                else:
                    legal.add(organization_id)
        points.append({"day": day, "natural": len(natural), "legal": len(legal)})
    return points


def month_starts(until: dt.date, count: int = 12) -> list[dt.date]:
    """Return the first day of each of the ``count`` months ending with ``until``'s month."""
    year, month = until.year, until.month
    starts = []
    for _month in range(count):
        starts.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]
