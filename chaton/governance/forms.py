"""Forms of the governance pages.

The fields of an operation are not written by hand: :func:`operation_fields`
builds them from the JSON schema of the operation's pydantic ``Params``
(:func:`chaton.core.forms.schema_fields`: string, integer, number, boolean,
date, nullable, enum or Literal, object),
so a new operation type gets its form without a template or a form change.
The forms only collect input: :func:`chaton.governance.actions.do_propose`
and ``do_act`` validate the operations and their errors come back on the
field they name.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

# Re-exported: the governance pages and their tests know these fields by this module.
from chaton.core.forms import (  # noqa: F401
    JsonField,
    ObjectField,
    OptionalBooleanSelect,
    object_as_text,
    schema_fields,
)
from chaton.governance import operations
from chaton.members.forms import DateInput

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: Labels of the params fields that the operations share, in the reader's language.
#: A field missing here is labelled with its schema title (English).
FIELD_LABELS: dict[str, StrOrPromise] = {
    "group": _("Group"),
    "account": _("Account (user name)"),
    "expires_on": _("Last day"),
    "member": _("Member (a person's email or an organization's short name)"),
    "ends_on": _("Last day of the membership"),
    "person": _("Person (email)"),
    "organization": _("Organization (short name)"),
    "uid": _("User name"),
    "display_name": _("Display name"),
    "email": _("Email"),
    "voting_delay_days": _("Days of membership before voting"),
    "proposal_days": _("Days a proposal stays open"),
    "counter_vote_window_days": _("Days to open a counter-vote after an ordinary action"),
    "counter_vote_days": _("Days a counter-vote stays open"),
    "reminder_hours": _("Hours before the deadline when voters are reminded"),
    "votes_public": _("Members see who voted what"),
    "classes": _("Class of each operation"),
    "application": _("Application"),
    "domain": _("Domain"),
    "host": _("Host"),
    "login_group": _("Group whose members may log in"),
    "settings": _("Settings"),
    "instance": _("Service (its short name)"),
    "delete_data": _("Delete its data too"),
}

#: Help under a field whose meaning its label does not say in full.
FIELD_HELP: dict[str, StrOrPromise] = {
    "expires_on": _("Empty: for good."),
    "classes": _("One “type=class” per line (for example “group.revoke=extraordinary”), "
                 "or a JSON object. Empty: unchanged."),
}

_TRUE_TEXTS = {"true", "1", "yes", "on"}
_FALSE_TEXTS = {"false", "0", "no", "off"}


class DecisionForm(forms.Form):
    """What every decision has: its object and why."""

    title = forms.CharField(label=_("Object"), max_length=200,
                            help_text=_("One line, as the activity report will list it."))
    description = forms.CharField(
        label=_("Description"), required=False, max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Why, and anything the voters should know."))


class OperationChoiceForm(forms.Form):
    """The first step of a proposal without JavaScript: which operation."""

    operation = forms.ChoiceField(label=_("Operation"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["operation"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = operation_choices()


def operation_choices() -> list[tuple[str, str]]:
    """Return (type, label) of every registered operation, for a select."""
    return [(operation.type, str(operation.label)) for operation in operations.all_types()]


def operation_fields(operation: operations.OperationType[Any]) -> dict[str, forms.Field]:
    """Given an operation type, return a form field per property of its params' JSON schema,
    in the schema's order (:func:`chaton.core.forms.schema_fields`). A field is required
    when the schema requires it and it cannot be null."""
    return schema_fields(operations.params_schema(operation), labels=FIELD_LABELS,
                         help_texts=FIELD_HELP)


def initial_value(field: forms.Field, raw: str) -> Any:
    """Given a field and a text from a link's query, return the initial value it shows, typed:
    an object or a list that the link carries as JSON (:func:`~chaton.governance.gate.
    proposal_link`) is that object again."""
    if isinstance(field, ObjectField | JsonField):
        try:
            return json.loads(raw) if raw.strip().startswith(("{", "[")) else raw
        except json.JSONDecodeError:
            return raw
    if isinstance(field, forms.BooleanField | forms.NullBooleanField):
        text = raw.strip().lower()
        if text in _TRUE_TEXTS:
            return True
        if text in _FALSE_TEXTS:
            return False
        return None
    return raw


class OperationForm(forms.Form):
    """The fields of one operation, built from its params schema (see :func:`operation_fields`)."""

    def __init__(self, operation: operations.OperationType[Any], *args: Any,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operation = operation
        self.required_names = set(operations.params_schema(operation).get("required", []))
        self.fields.update(operation_fields(operation))

    def params(self) -> dict[str, Any]:
        """Return the cleaned values as the operation's raw params (JSON values): an empty
        optional field is left out, so the operation's default applies."""
        params: dict[str, Any] = {}
        for name, value in self.cleaned_data.items():
            if value is None or value == "":
                if name in self.required_names:
                    params[name] = None
                continue
            params[name] = value.isoformat() if isinstance(value, dt.date) else value
        return params


class ExportForm(forms.Form):
    """The period and format of an inventory download."""

    start = forms.DateField(label=_("From"), widget=DateInput)
    end = forms.DateField(label=_("To"), widget=DateInput)
    format = forms.ChoiceField(label=_("Format"), choices=[
        ("md", _("Markdown")), ("csv", _("CSV (spreadsheet)")), ("html", _("HTML"))])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", _("The period ends before it starts."))
        return cleaned
