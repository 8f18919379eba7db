"""Every write to persons, organizations, memberships and dues."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.db import models, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from chaton.core import audit, clock, gate, limits
from chaton.core.errors import Conflict, Forbidden, InvalidInput
from chaton.core.validation import clean_email, clean_text
from chaton.members.gated import EndMembershipParams, WaiveVotingDelayParams
from chaton.members.models import DuesPayment, Membership, MembershipKind, Organization, Person
from chaton.members.signals import memberships_changed, organization_changed

if TYPE_CHECKING:
    from chaton.core.gate import Authorisation
    from chaton.directory.models import Account

PERSON_FIELDS = ["full_name", "email", "phone"]
ORGANIZATION_FIELDS = ["name", "slug", "email"]
MEMBERSHIP_FIELDS = ["kind", "starts_on", "ends_on", "voting_delay_waived", "recorded_on"]


def _sync_members_groups() -> None:
    """Announce that who is a member changed: the directory rewrites the groups that hold
    every member (kind "members") after the commit."""
    memberships_changed.send(sender=Membership)


def do_create_person(full_name: str, email: str, *, acting_user: Account | None,
                     phone: str = "") -> Person:
    """Create a natural person. Raise InvalidInput, or Conflict for an email already known."""
    full_name = clean_text(full_name, field="full_name",
                           max_length=limits.PERSON_NAME_MAX_LENGTH)
    email = clean_email(email)
    phone = clean_text(phone, field="phone", required=False,
                       max_length=limits.PHONE_MAX_LENGTH)
    with transaction.atomic():
        if Person.objects.filter(email=email).exists():
            raise Conflict(_("A person with the email %(email)s already exists.")
                           % {"email": email}, field="email")
        person = Person.objects.create(full_name=full_name, email=email, phone=phone)
        audit.record("person.create", person, acting_user=acting_user,
                     after=audit.snapshot(person, PERSON_FIELDS))
    return person


def do_update_person(person: Person, *, acting_user: Account | None, full_name: str | None = None,
                     email: str | None = None, phone: str | None = None) -> Person:
    before = audit.snapshot(person, PERSON_FIELDS)
    fields = []
    if full_name is not None:
        person.full_name = clean_text(full_name, field="full_name",
                                      max_length=limits.PERSON_NAME_MAX_LENGTH)
        fields.append("full_name")
    if email is not None:
        person.email = clean_email(email)
        fields.append("email")
    if phone is not None:
        person.phone = clean_text(phone, field="phone", required=False,
                                  max_length=limits.PHONE_MAX_LENGTH)
        fields.append("phone")
    if not fields:
        return person
    with transaction.atomic():
        if Person.objects.filter(email=person.email).exclude(pk=person.pk).exists():
            raise Conflict(_("A person with the email %(email)s already exists.")
                           % {"email": person.email}, field="email")
        person.save(update_fields=fields)
        audit.record("person.update", person, acting_user=acting_user, before=before,
                     after=audit.snapshot(person, PERSON_FIELDS))
    return person


def do_create_organization(name: str, email: str, *, acting_user: Account | None,
                           slug: str = "") -> Organization:
    """Create a legal person (partner association); its short name is derived if not given."""
    name = clean_text(name, field="name",
                      max_length=limits.ORGANIZATION_NAME_MAX_LENGTH)
    email = clean_email(email)
    if slug and (slug != slugify(slug) or len(slug) > limits.ORGANIZATION_SLUG_MAX_LENGTH):
        # A short name typed by someone is kept as typed, or refused: never changed.
        raise InvalidInput(_("A short name is at most %(count)d lower-case letters, digits or "
                             "'-'.") % {"count": limits.ORGANIZATION_SLUG_MAX_LENGTH},
                           field="slug")
    slug = slug or slugify(name)[:limits.ORGANIZATION_SLUG_MAX_LENGTH]
    if not slug or not slug[0].isalpha():
        raise InvalidInput(_("The short name must start with a letter."), field="slug")
    with transaction.atomic():
        if Organization.objects.filter(name=name).exists():
            raise Conflict(_("The organization %(name)s already exists.") % {"name": name},
                           field="name")
        if Organization.objects.filter(slug=slug).exists():
            raise Conflict(_("The short name %(slug)s is already taken.") % {"slug": slug},
                           field="slug")
        organization = Organization.objects.create(name=name, slug=slug, email=email)
        audit.record("organization.create", organization, acting_user=acting_user,
                     after=audit.snapshot(organization, ORGANIZATION_FIELDS))
        organization_changed.send(sender=Organization, organization=organization)
    return organization


def do_update_organization(organization: Organization, *, acting_user: Account | None,
                           name: str | None = None, email: str | None = None) -> Organization:
    before = audit.snapshot(organization, ORGANIZATION_FIELDS)
    fields = []
    if name is not None:
        organization.name = clean_text(name, field="name",
                                       max_length=limits.ORGANIZATION_NAME_MAX_LENGTH)
        fields.append("name")
    if email is not None:
        organization.email = clean_email(email)
        fields.append("email")
    if not fields:
        return organization
    with transaction.atomic():
        if Organization.objects.filter(name=organization.name).exclude(
                pk=organization.pk).exists():
            raise Conflict(_("The organization %(name)s already exists.")
                           % {"name": organization.name}, field="name")
        organization.save(update_fields=fields)
        audit.record("organization.update", organization, acting_user=acting_user,
                     before=before, after=audit.snapshot(organization, ORGANIZATION_FIELDS))
        organization_changed.send(sender=Organization, organization=organization)
    return organization


def do_start_membership(member: Person | Organization, *, acting_user: Account | None,
                        starts_on: dt.date, kind: str = MembershipKind.REGULAR,
                        ends_on: dt.date | None = None) -> Membership:
    """Open a membership. Raise InvalidInput for bad dates or kind, Conflict if one overlaps."""
    if kind not in MembershipKind.values:
        raise InvalidInput(_("Unknown membership kind."), field="kind")
    if ends_on is not None and ends_on < starts_on:
        raise InvalidInput(_("A membership cannot end before it starts."), field="ends_on")
    owner = {"person": member} if isinstance(member, Person) else {"organization": member}
    with transaction.atomic():
        overlapping = Membership.objects.filter(**owner).overlapping(
            starts_on, ends_on or dt.date.max)
        if overlapping.exists():
            raise Conflict(_("%(member)s already has a membership over these dates.")
                           % {"member": member}, field="starts_on")
        # recorded_on is today whatever starts_on says: the voting delay runs from it.
        membership = Membership.objects.create(kind=kind, starts_on=starts_on, ends_on=ends_on,
                                               recorded_on=clock.today(), **owner)
        audit.record("membership.start", membership, acting_user=acting_user,
                     after=audit.snapshot(membership, MEMBERSHIP_FIELDS))
        _sync_members_groups()
    return membership


def _member_key(membership: Membership) -> str:
    """The natural key operations name a member by: a person's email, an organization's slug."""
    if membership.person is not None:
        return membership.person.email
    assert membership.organization is not None
    return membership.organization.slug


def validate_end_membership(membership: Membership, ends_on: dt.date | None) -> None:
    """The rule of ending ``membership`` on ``ends_on``, shared by the action and the
    ``membership.end`` operation. Raise InvalidInput if it is before the first day."""
    if ends_on is not None and ends_on < membership.starts_on:
        raise InvalidInput(_("A membership cannot end before it starts."), field="ends_on")


class OrdinaryActionRequired(Forbidden):
    """A change of the electorate asked for outside a decision (even an ordinary one)."""

    code = "ordinary_action_required"


def do_end_membership(membership: Membership, ends_on: dt.date | None, *,
                      acting_user: Account | None,
                      authorised_by: Authorisation | None = None) -> Membership:
    """Set the last day of a membership (None: open-ended again), for the operation
    ``membership.end`` of a decision (``authorised_by``) only.

    Ending a membership changes the electorate, so it is always a decision: an
    ordinary action, announced and open to a counter-vote, unless the policy
    makes it extraordinary (the pages, the API and the CLI go through
    ``do_end_membership_ordinarily``). Raise InvalidInput if
    it is before the first day, DecisionRequired when the policy makes it
    extraordinary and no adopted decision authorises it, OrdinaryActionRequired
    when no decision authorises it at all.
    """
    validate_end_membership(membership, ends_on)
    if ends_on is not None:
        gate.require(EndMembershipParams(member=_member_key(membership), ends_on=ends_on),
                     authorised_by)
    if not gate.is_authorised(EndMembershipParams, authorised_by):
        raise OrdinaryActionRequired(
            _("Ending a membership is an action of the collective: take it as an ordinary "
              "action (announced, open to a counter-vote)."), field="ends_on")
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    with transaction.atomic():
        membership.ends_on = ends_on
        membership.save(update_fields=["ends_on"])
        audit.record("membership.end", membership, acting_user=acting_user, before=before,
                     after=audit.snapshot(membership, MEMBERSHIP_FIELDS))
        _sync_members_groups()
    return membership


def do_end_membership_ordinarily(membership: Membership, ends_on: dt.date, *,
                                 acting_user: Account) -> models.Model:
    """End a membership directly, as an ordinary action (``membership.end``): done at once,
    announced, open to a counter-vote that would restore it. Return the decision.

    The way the pages, the API and the CLI end a membership; the action is taken through
    the gate (:func:`chaton.core.gate.act`). Raise InvalidInput for a day before its start
    or a membership that is not the member's current one, Forbidden for a
    non-administrator, DecisionRequired when the policy makes ending a membership
    extraordinary.
    """
    from chaton.members.queries import open_membership_of

    if ends_on < membership.starts_on:
        raise InvalidInput(_("A membership cannot end before it starts."), field="ends_on")
    member = membership.member
    if open_membership_of(member, min(ends_on, clock.today())) != membership:
        raise InvalidInput(_("Only the current membership of %(member)s can be ended.")
                           % {"member": member}, field="ends_on")
    return gate.act(_("End the membership of %(member)s on %(day)s")
                    % {"member": member, "day": ends_on.isoformat()},
                    [EndMembershipParams(member=_member_key(membership), ends_on=ends_on)],
                    acting_user=acting_user)


def do_set_voting_delay_waived(membership: Membership, waived: bool, *,
                               acting_user: Account | None,
                               authorised_by: Authorisation | None = None) -> Membership:
    """Let a member vote before the voting delay (``waived``), or make them wait again.

    Waiving changes the electorate: raise DecisionRequired unless an adopted
    decision authorises it (``membership.waive_voting_delay``).
    """
    if waived and membership.person is None:
        raise InvalidInput(_("Only persons vote."), field="person")
    if waived:
        gate.require(WaiveVotingDelayParams.of(membership), authorised_by)
    if membership.voting_delay_waived == waived:
        return membership
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    with transaction.atomic():
        membership.voting_delay_waived = waived
        membership.save(update_fields=["voting_delay_waived"])
        audit.record("membership.voting_delay", membership, acting_user=acting_user,
                     before=before, after=audit.snapshot(membership, MEMBERSHIP_FIELDS))
    return membership


def do_record_dues(membership: Membership, amount: Decimal | str, paid_on: dt.date, *,
                   acting_user: Account | None) -> DuesPayment:
    """Record a pay-what-you-want payment. Raise InvalidInput for a negative or bad amount."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise InvalidInput(_("The amount is not a number."), field="amount") from None
    if value < 0 or value >= Decimal("10000000"):
        raise InvalidInput(_("The amount must be between 0 and 9,999,999.99."), field="amount")
    with transaction.atomic():
        payment = DuesPayment.objects.create(membership=membership, amount=value, paid_on=paid_on)
        audit.record("dues.record", membership, acting_user=acting_user,
                     after={"amount": str(value), "paid_on": str(paid_on)})
    return payment
