"""Members: natural persons, legal persons (partner associations), memberships and dues."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from chaton.core import limits


class Person(models.Model):
    """A natural person."""

    full_name = models.CharField(_("full name"), max_length=limits.PERSON_NAME_MAX_LENGTH)
    email = models.EmailField(_("email"), max_length=limits.EMAIL_MAX_LENGTH, unique=True)
    phone = models.CharField(_("phone"), max_length=limits.PHONE_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["full_name", "id"]
        verbose_name = _("person")
        verbose_name_plural = _("persons")

    def __str__(self) -> str:
        return self.full_name


class Organization(models.Model):
    """A legal person: a partner association that is a member and may own accounts."""

    name = models.CharField(_("name"), max_length=limits.ORGANIZATION_NAME_MAX_LENGTH,
                            unique=True)
    #: Lower-case short name, used in the directory: ``o=<slug>,ou=organizations``.
    slug = models.SlugField(_("short name"), max_length=limits.ORGANIZATION_SLUG_MAX_LENGTH,
                            unique=True)
    email = models.EmailField(_("email"), max_length=limits.EMAIL_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return self.name


class MembershipKind(models.TextChoices):
    REGULAR = "regular", _("regular")
    SUPPORT = "support", _("support")


class MembershipQuerySet(models.QuerySet["Membership"]):
    def current(self, on: dt.date) -> MembershipQuerySet:
        """Memberships running on the day ``on``."""
        return self.filter(starts_on__lte=on).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=on))

    def overlapping(self, start: dt.date, end: dt.date) -> MembershipQuerySet:
        """Memberships running on at least one day of ``start``..``end``."""
        return self.filter(starts_on__lte=end).filter(
            Q(ends_on__isnull=True) | Q(ends_on__gte=start))


class Membership(models.Model):
    """A person's or an organization's membership of the collective, from one date to another."""

    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="memberships", verbose_name=_("person"))
    organization = models.ForeignKey(Organization, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="memberships",
                                     verbose_name=_("organization"))
    kind = models.CharField(_("kind"), max_length=20, choices=MembershipKind.choices,
                            default=MembershipKind.REGULAR)
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    #: Voting is allowed from this date even if the usual delay has not passed.
    voting_delay_waived = models.BooleanField(_("voting delay waived"), default=False)
    #: The day Chaton recorded the membership. The voting delay runs from it or from
    #: ``starts_on``, whichever is later: a back-dated start counts in the reports, never
    #: in the electorate.
    recorded_on = models.DateField(_("recorded on"), editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_on", "id"]
        verbose_name = _("membership")
        constraints = [
            models.CheckConstraint(
                condition=(Q(person__isnull=False, organization__isnull=True)
                           | Q(person__isnull=True, organization__isnull=False)),
                name="membership_one_member",
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="membership_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} ({self.get_kind_display()}, {self.starts_on})"

    @property
    def member(self) -> Person | Organization:
        member = self.person or self.organization
        assert member is not None
        return member

    def is_current(self, on: dt.date) -> bool:
        return self.starts_on <= on and (self.ends_on is None or self.ends_on >= on)


class DuesPayment(models.Model):
    """A pay-what-you-want contribution towards a membership."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="dues",
                                   verbose_name=_("membership"))
    amount = models.DecimalField(_("amount (EUR)"), max_digits=9, decimal_places=2)
    paid_on = models.DateField(_("paid on"))

    class Meta:
        ordering = ["-paid_on", "id"]
        verbose_name = _("dues payment")
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0),
                                              name="dues_not_negative")]

    def __str__(self) -> str:
        return f"{self.amount} € ({self.paid_on})"
