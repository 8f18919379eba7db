"""Forms of the self-service and directory administration pages.

They collect input and check what only the form can (two passwords match, the
old password is right); the actions check everything else and their errors are
put back on the field they name. Expiry is typed as a day: an account or a
group membership stops working at the start of that day, local time.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from chaton.core import clock, limits
from chaton.directory.models import Account, AccountState, GroupKind
from chaton.members.forms import DateInput
from chaton.members.models import Organization, Person

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: An action's error field → the form field that shows it, for every form below.
FIELD_NAMES = {"password": "new_password1", "expires_at": "expires_on", "person_id": "person"}


def start_of_day(day: dt.date | None) -> dt.datetime | None:
    """Given a day or None, return the aware datetime at which that local day begins."""
    if day is None:
        return None
    return clock.start_of_day(day)


def day_of(moment: dt.datetime | None) -> dt.date | None:
    """Given an aware datetime or None, return its local day."""
    return clock.local_day(moment) if moment is not None else None


def _password_field(label: StrOrPromise, *, required: bool = True,
                    new: bool = True) -> forms.CharField:
    autocomplete = "new-password" if new else "current-password"
    return forms.CharField(label=label, required=required, strip=False,
                           max_length=limits.PASSWORD_MAX_LENGTH,
                           widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}))


class NewPasswordMixin(forms.Form):
    """Two fields that must hold the same new password."""

    new_password1 = _password_field(_("New password"))
    new_password2 = _password_field(_("New password again"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("new_password1"), cleaned.get("new_password2")
        if first and second and first != second:
            self.add_error("new_password2", _("The two passwords differ."))
        return cleaned


class PasswordChangeForm(NewPasswordMixin):
    """An account changing its own password: the old one proves it is them."""

    field_order = ["old_password", "new_password1", "new_password2"]
    old_password = _password_field(_("Current password"), new=False)

    def __init__(self, account: Account, *args: Any, **kwargs: Any) -> None:
        self.account = account
        super().__init__(*args, **kwargs)

    def clean_old_password(self) -> str:
        password: str = self.cleaned_data["old_password"]
        if not self.account.check_password(password):
            raise forms.ValidationError(_("This is not your current password."))
        return password


class SetPasswordForm(NewPasswordMixin):
    """An administrator setting someone's password."""


class SSHKeyForm(forms.Form):
    key = forms.CharField(
        label=_("Public key"), max_length=limits.SSH_KEY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false",
                                     "placeholder": "ssh-ed25519 AAAA… name@host"}),
        help_text=_("One line from your ~/.ssh/id_ed25519.pub (or another .pub file)."))


class AccountSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=150)
    state = forms.ChoiceField(label=_("State"), required=False,
                              choices=[("", _("all")), *AccountState.choices])


class PersonChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        # Two persons may share a name; their emails are unique.
        return f"{obj.full_name} <{obj.email}>"


class AccountDetailsForm(forms.Form):
    """What an administrator may change on an account."""

    # strip=False here and below: the action refuses spaces around a value, by name, rather
    # than the form dropping them unseen.
    display_name = forms.CharField(label=_("Display name"),
                                   max_length=limits.DISPLAY_NAME_MAX_LENGTH, strip=False)
    email = forms.CharField(label=_("Email"), max_length=limits.EMAIL_MAX_LENGTH, strip=False,
                            widget=forms.EmailInput)
    expires_on = forms.DateField(
        label=_("Expires on"), required=False, widget=DateInput,
        help_text=_("The account stops working at the start of this day. Empty: no expiry."))
    is_admin = forms.BooleanField(label=_("Administrator"), required=False,
                                  help_text=_("May use every administration page."))
    person = PersonChoiceField(label=_("Owner (person)"), required=False,
                               queryset=Person.objects.order_by("full_name", "id"))
    organization = forms.ModelChoiceField(label=_("Owner (organization)"), required=False,
                                          queryset=Organization.objects.order_by("name"))
    field_order = ["display_name", "email", "person", "organization", "expires_on", "is_admin"]

    def owner(self) -> Person | Organization | None:
        """Return the owner chosen in the cleaned form (None: the collective's own account)."""
        owner: Person | Organization | None = (self.cleaned_data.get("person")
                                               or self.cleaned_data.get("organization"))
        return owner


class AccountCreateForm(AccountDetailsForm):
    field_order = ["uid", "display_name", "email", "person", "organization", "expires_on",
                   "is_admin", "new_password1", "new_password2"]
    uid = forms.CharField(
        label=_("User name"), max_length=limits.UID_MAX_LENGTH, strip=False,
        help_text=_("Lower-case letters, digits, '.', '_' or '-'; it cannot be changed later."))
    new_password1 = _password_field(_("Password"), required=False)
    new_password2 = _password_field(_("Password again"), required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("new_password1") or "", cleaned.get("new_password2") or ""
        if first != second:
            self.add_error("new_password2", _("The two passwords differ."))
        return cleaned


def _requires_decision_field() -> forms.BooleanField:
    return forms.BooleanField(
        label=_("Members added by decision only"), required=False,
        help_text=_("Adding someone then takes a vote of the members (for a group that opens "
                    "sensitive access). Clearing this mark takes a decision too."))


class GroupForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=limits.GROUP_NAME_MAX_LENGTH, strip=False,
        help_text=_("Lower-case letters, digits, '_' or '-'."))
    kind = forms.ChoiceField(label=_("Kind"), choices=GroupKind.choices,
                             initial=GroupKind.TEAM)
    description = forms.CharField(label=_("Description"),
                                  max_length=limits.GROUP_DESCRIPTION_MAX_LENGTH, required=False,
                                  strip=False)
    requires_decision = _requires_decision_field()


class GroupEditForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=limits.GROUP_NAME_MAX_LENGTH, required=False, strip=False,
        help_text=_("Renaming a group whose members are added by decision only takes a "
                    "decision."))
    description = forms.CharField(label=_("Description"),
                                  max_length=limits.GROUP_DESCRIPTION_MAX_LENGTH, required=False,
                                  strip=False)
    requires_decision = _requires_decision_field()


class GroupMemberForm(forms.Form):
    """Add an account to a group, or change the expiry of its membership."""

    uid = forms.CharField(label=_("User name"), max_length=limits.UID_MAX_LENGTH,
                          widget=forms.TextInput(attrs={"list": "account-uids",
                                                        "autocomplete": "off"}))
    expires_on = forms.DateField(
        label=_("Until"), required=False, widget=DateInput,
        help_text=_("The membership stops at the start of this day. Empty: no end."))


class ReconcileForm(forms.Form):
    delete_foreign = forms.BooleanField(
        label=_("Also delete the entries that are not Chaton's"), required=False)
