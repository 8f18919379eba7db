"""Forms of the members pages. They only collect input: the actions check and write it.

Field names match the ``field`` that the actions put on their errors, so an
InvalidInput or a Conflict lands next to the field that caused it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from chaton.core import limits
from chaton.members.models import MembershipKind


class DateInput(forms.DateInput):
    """The browser's date picker; ISO dates work in every language."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=150)


class PersonForm(forms.Form):
    # strip=False: the action refuses spaces around a value rather than dropping them.
    full_name = forms.CharField(label=_("Full name"), max_length=limits.PERSON_NAME_MAX_LENGTH,
                                strip=False)
    email = forms.CharField(label=_("Email"), max_length=limits.EMAIL_MAX_LENGTH, strip=False,
                            widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    phone = forms.CharField(label=_("Phone"), max_length=limits.PHONE_MAX_LENGTH,
                            required=False, strip=False)


class OrganizationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=limits.ORGANIZATION_NAME_MAX_LENGTH,
                           strip=False)
    slug = forms.CharField(
        label=_("Short name"), max_length=limits.ORGANIZATION_SLUG_MAX_LENGTH, required=False,
        strip=False,
        help_text=_("Lower-case, used in the directory. Derived from the name when empty; "
                    "it cannot be changed later."))
    email = forms.CharField(label=_("Email"), max_length=limits.EMAIL_MAX_LENGTH, strip=False,
                            widget=forms.EmailInput)


class OrganizationEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=limits.ORGANIZATION_NAME_MAX_LENGTH,
                           strip=False)
    email = forms.CharField(label=_("Email"), max_length=limits.EMAIL_MAX_LENGTH, strip=False,
                            widget=forms.EmailInput)


class StartMembershipForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=MembershipKind.choices,
                             initial=MembershipKind.REGULAR)
    starts_on = forms.DateField(label=_("Starts on"), widget=DateInput)
    ends_on = forms.DateField(label=_("Ends on"), required=False, widget=DateInput,
                              help_text=_("Leave empty for a membership with no end yet."))


class EndMembershipForm(forms.Form):
    ends_on = forms.DateField(label=_("Last day"), widget=DateInput)


class DuesForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount (EUR)"), min_value=0, max_digits=9,
                                decimal_places=2, localize=True)
    paid_on = forms.DateField(label=_("Paid on"), widget=DateInput)


class MemberCountsForm(forms.Form):
    """A day, or a period from ``start`` to ``end``."""

    start = forms.DateField(label=_("On (or from)"), widget=DateInput)
    end = forms.DateField(label=_("Until"), required=False, widget=DateInput,
                          help_text=_("Leave empty to count on one day."))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", _("The end of the period is before its start."))
        return cleaned
