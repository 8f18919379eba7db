"""``/api/v1/members``: persons, organizations, memberships, dues, counts and the electorate.

Administrators only (the API's default authentication). Writes go through
:mod:`chaton.members.actions`, reads through :mod:`chaton.members.queries`.
Amounts are decimal strings in euros (``"12.50"``).
"""


import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from chaton.core import clock, limits
from chaton.core.api import (
    ERRORS,
    DateIn,
    InputSchema,
    Page,
    acting_account,
    clean_search,
)
from chaton.core.errors import InvalidInput
from chaton.members import actions, queries
from chaton.members.models import Membership, MembershipKind, Organization, Person

router = Router(tags=["members"])


def _memberships() -> QuerySet[Membership]:
    # Dues come in one more query whatever the number of memberships.
    return Membership.objects.select_related("person", "organization").prefetch_related("dues")


# --- schemas --------------------------------------------------------------------------------


class PersonOut(Schema):
    id: int
    full_name: str
    email: str
    phone: str
    created_at: dt.datetime


class PersonIn(InputSchema):
    full_name: str = Field(..., max_length=limits.PERSON_NAME_MAX_LENGTH)
    email: str = Field(..., max_length=limits.EMAIL_MAX_LENGTH)
    phone: str = Field("", max_length=limits.PHONE_MAX_LENGTH)


class PersonPatch(InputSchema):
    full_name: str | None = Field(None, max_length=limits.PERSON_NAME_MAX_LENGTH)
    email: str | None = Field(None, max_length=limits.EMAIL_MAX_LENGTH)
    phone: str | None = Field(None, max_length=limits.PHONE_MAX_LENGTH)


class OrganizationOut(Schema):
    id: int
    name: str
    slug: str
    email: str
    created_at: dt.datetime


class OrganizationIn(InputSchema):
    name: str = Field(..., max_length=limits.ORGANIZATION_NAME_MAX_LENGTH)
    email: str = Field(..., max_length=limits.EMAIL_MAX_LENGTH)
    slug: str = Field("", max_length=limits.ORGANIZATION_SLUG_MAX_LENGTH,
                      description="Lower-case letters, digits and '-'; derived from the name "
                                  "when left out.")


class OrganizationPatch(InputSchema):
    name: str | None = Field(None, max_length=limits.ORGANIZATION_NAME_MAX_LENGTH)
    email: str | None = Field(None, max_length=limits.EMAIL_MAX_LENGTH)


class DuesOut(Schema):
    id: int
    amount: Decimal
    paid_on: dt.date


class MembershipOut(Schema):
    id: int
    person_id: int | None
    organization_id: int | None
    kind: str = Field(..., description="regular or support")
    starts_on: dt.date
    ends_on: dt.date | None
    voting_delay_waived: bool
    dues: list[DuesOut]

    @staticmethod
    def resolve_dues(membership: Membership) -> list[Any]:
        # .all() reads the prefetched rows: no query per membership.
        return list(membership.dues.all())


class MembershipIn(InputSchema):
    starts_on: DateIn
    ends_on: DateIn | None = None
    kind: str = Field(MembershipKind.REGULAR, max_length=20, description="regular or support")


class MembershipEndIn(InputSchema):
    ends_on: DateIn


class DuesIn(InputSchema):
    amount: Decimal = Field(..., description="Euros, 0 to 9,999,999.99", max_digits=30)
    paid_on: DateIn


class KindCountsOut(Schema):
    regular: int
    support: int
    total: int


class CountsOut(Schema):
    start: dt.date
    end: dt.date
    natural: KindCountsOut
    legal: KindCountsOut
    total: int


# --- persons --------------------------------------------------------------------------------


@router.get("/persons", response={200: list[PersonOut], **ERRORS}, summary="List persons")
@paginate(Page)
def list_persons(request: HttpRequest, q: str = "") -> Any:
    """Persons by name; ``?q=`` searches name and email."""
    return queries.search_people(clean_search(q))


@router.post("/persons", response={201: PersonOut, **ERRORS}, summary="Create a person")
def create_person(request: HttpRequest, payload: PersonIn) -> tuple[int, Person]:
    return 201, actions.do_create_person(payload.full_name, payload.email, phone=payload.phone,
                                         acting_user=acting_account(request))


@router.get("/persons/{person_id}", response={200: PersonOut, **ERRORS}, summary="Get a person")
def get_person(request: HttpRequest, person_id: int) -> Person:
    return queries.person_by_id(person_id)


@router.patch("/persons/{person_id}", response={200: PersonOut, **ERRORS},
              summary="Change a person")
def update_person(request: HttpRequest, person_id: int, payload: PersonPatch) -> Person:
    return actions.do_update_person(queries.person_by_id(person_id),
                                    acting_user=acting_account(request),
                                    full_name=payload.full_name, email=payload.email,
                                    phone=payload.phone)


@router.get("/persons/{person_id}/memberships", response={200: list[MembershipOut], **ERRORS},
            summary="A person's memberships, latest first")
def list_person_memberships(request: HttpRequest, person_id: int) -> Any:
    return list(_memberships().filter(person=queries.person_by_id(person_id)))


@router.post("/persons/{person_id}/memberships", response={201: MembershipOut, **ERRORS},
             summary="Start a person's membership")
def start_person_membership(request: HttpRequest, person_id: int,
                            payload: MembershipIn) -> tuple[int, Membership]:
    membership = actions.do_start_membership(
        queries.person_by_id(person_id), acting_user=acting_account(request),
        starts_on=payload.starts_on, kind=payload.kind, ends_on=payload.ends_on)
    return 201, queries.membership_by_id(membership.pk)


# --- organizations --------------------------------------------------------------------------


@router.get("/organizations", response={200: list[OrganizationOut], **ERRORS},
            summary="List organizations")
@paginate(Page)
def list_organizations(request: HttpRequest, q: str = "") -> Any:
    """Organizations by name; ``?q=`` searches name and short name."""
    return queries.search_organizations(clean_search(q))


@router.post("/organizations", response={201: OrganizationOut, **ERRORS},
             summary="Create an organization")
def create_organization(request: HttpRequest,
                        payload: OrganizationIn) -> tuple[int, Organization]:
    return 201, actions.do_create_organization(payload.name, payload.email, slug=payload.slug,
                                               acting_user=acting_account(request))


@router.get("/organizations/{organization_id}", response={200: OrganizationOut, **ERRORS},
            summary="Get an organization")
def get_organization(request: HttpRequest, organization_id: int) -> Organization:
    return queries.organization_by_id(organization_id)


@router.patch("/organizations/{organization_id}", response={200: OrganizationOut, **ERRORS},
              summary="Change an organization (its short name stays)")
def update_organization(request: HttpRequest, organization_id: int,
                        payload: OrganizationPatch) -> Organization:
    return actions.do_update_organization(queries.organization_by_id(organization_id),
                                          acting_user=acting_account(request),
                                          name=payload.name, email=payload.email)


@router.get("/organizations/{organization_id}/memberships",
            response={200: list[MembershipOut], **ERRORS},
            summary="An organization's memberships, latest first")
def list_organization_memberships(request: HttpRequest, organization_id: int) -> Any:
    return list(_memberships().filter(organization=queries.organization_by_id(organization_id)))


@router.post("/organizations/{organization_id}/memberships",
             response={201: MembershipOut, **ERRORS}, summary="Start an organization's membership")
def start_organization_membership(request: HttpRequest, organization_id: int,
                                  payload: MembershipIn) -> tuple[int, Membership]:
    membership = actions.do_start_membership(
        queries.organization_by_id(organization_id), acting_user=acting_account(request),
        starts_on=payload.starts_on, kind=payload.kind, ends_on=payload.ends_on)
    return 201, queries.membership_by_id(membership.pk)


# --- memberships and dues -------------------------------------------------------------------


@router.get("/memberships/{membership_id}", response={200: MembershipOut, **ERRORS},
            summary="Get a membership and its dues")
def get_membership(request: HttpRequest, membership_id: int) -> Membership:
    return queries.membership_by_id(membership_id)


@router.post("/memberships/{membership_id}/end", response={200: MembershipOut, **ERRORS},
             summary="Set the last day of a membership (an ordinary action)")
def end_membership(request: HttpRequest, membership_id: int,
                   payload: MembershipEndIn) -> Membership:
    """Ending a membership changes the electorate, so it is an ordinary action
    (``membership.end``): done at once, announced, open to a counter-vote that
    would restore it; ``/governance/decisions`` lists it. 403
    ``decision_required`` when the policy makes it extraordinary."""
    membership = queries.membership_by_id(membership_id)
    actions.do_end_membership_ordinarily(membership, payload.ends_on,
                                 acting_user=acting_account(request))
    return queries.membership_by_id(membership.pk)


@router.post("/memberships/{membership_id}/dues", response={201: DuesOut, **ERRORS},
             summary="Record a dues payment")
def record_dues(request: HttpRequest, membership_id: int, payload: DuesIn) -> tuple[int, Any]:
    payment = actions.do_record_dues(queries.membership_by_id(membership_id), payload.amount,
                                     payload.paid_on, acting_user=acting_account(request))
    return 201, payment


# --- counts and electorate ------------------------------------------------------------------


@router.get("/counts", response={200: CountsOut, **ERRORS},
            summary="Count members on a day (?on=) or over a period (?start=&end=)")
def member_counts(request: HttpRequest, on: DateIn | None = None, start: DateIn | None = None,
                  end: DateIn | None = None) -> dict[str, Any]:
    """Members by type and kind. With no date, today; ``end`` alone is refused.

    Over a period a member counts once if any of their memberships ran on one of its days.
    """
    if on is not None and (start is not None or end is not None):
        raise InvalidInput(_("Give either a day (on) or a period (start and end), not both."),
                           field="on")
    if end is not None and start is None:
        raise InvalidInput(_("A period needs its first day (start)."), field="start")
    if start is not None:
        first, last = start, end or clock.today()
    else:
        first = last = on or clock.today()
    if last < first:
        raise InvalidInput(_("The period ends before it starts."), field="end")
    counts = queries.member_counts(first, last)
    return {"start": first, "end": last, **counts}


@router.get("/voting", response={200: list[PersonOut], **ERRORS},
            summary="The electorate: persons who may vote on a day (today by default)")
@paginate(Page)
def voting_members(request: HttpRequest, on: DateIn | None = None) -> Any:
    return queries.voting_members(on or clock.today()).order_by("full_name", "id")
