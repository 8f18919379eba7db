"""Forms of the governance pages.

The fields of an operation are not written by hand: :func:`operation_fields`
builds them from the JSON schema of the operation's pydantic ``Params``
(string, integer, number, boolean, date, nullable, enum or Literal, object),
so a new operation type gets its form without a template or a form change.
The forms only collect input: :func:`chaton.governance.actions.do_propose`
and ``do_act`` validate the operations and their errors come back on the
field they name.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

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


class OptionalBooleanSelect(forms.NullBooleanSelect):
    """Yes, no, or nothing chosen (the operation's default, or "unchanged")."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.choices = [("unknown", "—"), ("true", _("yes")), ("false", _("no"))]


class ObjectField(forms.CharField):
    """A JSON object typed as a JSON text or as "key=value" lines; cleans to a dict or None."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        return object_as_text(value)

    def to_python(self, value: Any) -> dict[str, Any] | None:  # type: ignore[override]
        text = str(super().to_python(value) or "").strip()
        if not text:
            return None
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise forms.ValidationError(_("This is not valid JSON: %(error)s"),
                                            params={"error": error.msg}) from None
            if not isinstance(parsed, dict):
                raise forms.ValidationError(_("Expected a JSON object."))
            return parsed
        result: dict[str, Any] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            key, equals, item = line.partition("=")
            if not equals or not key.strip():
                raise forms.ValidationError(
                    _("Line %(number)d is not of the form “name=value”."),
                    params={"number": number})
            result[key.strip()] = item.strip()
        return result or None


def object_as_text(value: Any) -> Any:
    """Given a dict, or its JSON or Python text (a proposal link carries ``str(dict)``),
    return it as "key=value" lines; any other value unchanged."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                # Only literals: a link's text can never run code here.
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return value
    if isinstance(value, Mapping):
        return "\n".join(f"{key}={item}" for key, item in value.items())
    return value


def _resolve(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """Given a property schema, return it with a local ``$ref`` replaced by its definition."""
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        resolved = dict(definitions.get(reference.removeprefix("#/$defs/"), {}))
        resolved.update({key: value for key, value in schema.items() if key != "$ref"})
        return resolved
    return dict(schema)


def _unwrap_nullable(schema: dict[str, Any],
                     definitions: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Given a property schema, return (the schema of its value, whether null is allowed)."""
    choices = schema.get("anyOf") or schema.get("oneOf")
    if not isinstance(choices, list):
        return _resolve(schema, definitions), False
    others = [_resolve(choice, definitions) for choice in choices
              if choice.get("type") != "null"]
    nullable = len(others) < len(choices)
    inner = dict(others[0]) if len(others) == 1 else {}
    for key in ("title", "description", "default"):
        if key in schema:
            inner.setdefault(key, schema[key])
    return inner, nullable


def _field_for(name: str, schema: dict[str, Any], *, required: bool,
               nullable: bool) -> forms.Field:
    """Given a property name and its (unwrapped) schema, return the form field that types it."""
    label = FIELD_LABELS.get(name) or schema.get("title") or name
    help_text = FIELD_HELP.get(name) or schema.get("description") or ""
    common: dict[str, Any] = {"label": label, "help_text": help_text, "required": required}
    values = schema.get("enum")
    if values is None and "const" in schema:
        values = [schema["const"]]
    kind = schema.get("type")
    if isinstance(values, list):
        choices = [(str(value), str(value)) for value in values]
        if not required:
            choices.insert(0, ("", "—"))
        return forms.TypedChoiceField(choices=choices, empty_value=None,
                                      coerce=_coerce_to(values), **common)
    if kind == "boolean":
        if nullable or not required:
            return forms.NullBooleanField(widget=OptionalBooleanSelect, **common)
        common["required"] = False  # an unticked box is "false", not "missing"
        return forms.BooleanField(**common)
    if kind == "integer":
        return forms.IntegerField(min_value=schema.get("minimum"),
                                  max_value=schema.get("maximum"), **common)
    if kind == "number":
        return forms.FloatField(min_value=schema.get("minimum"),
                                max_value=schema.get("maximum"), **common)
    if kind == "string" and schema.get("format") == "date":
        return forms.DateField(widget=DateInput, **common)
    if kind == "string" and schema.get("format") == "email":
        return forms.EmailField(max_length=schema.get("maxLength"), **common)
    if kind == "string":
        return forms.CharField(max_length=schema.get("maxLength"),
                               min_length=schema.get("minLength"), **common)
    if kind == "object" or kind is None:
        allowed = _allowed_values(schema)
        if allowed and not help_text:
            common["help_text"] = _("Values: %(values)s.") % {"values": ", ".join(allowed)}
        return ObjectField(**common)
    # Lists and anything more exotic: typed as JSON, checked by the operation.
    return JsonField(**common)


def _allowed_values(schema: Mapping[str, Any]) -> list[str]:
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping) and isinstance(extra.get("enum"), list):
        return [str(value) for value in extra["enum"]]
    return []


def _coerce_to(values: list[Any]) -> Any:
    """Return a function that turns a chosen text back into the enum's own value."""
    by_text = {str(value): value for value in values}
    return lambda text: by_text.get(text, text)


class JsonField(forms.CharField):
    """Any JSON value, typed as JSON text."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value)

    def to_python(self, value: Any) -> Any:
        text = str(super().to_python(value) or "").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(_("This is not valid JSON: %(error)s"),
                                        params={"error": error.msg}) from None


def operation_fields(operation: operations.OperationType) -> dict[str, forms.Field]:
    """Given an operation type, return a form field per property of its params' JSON schema,
    in the schema's order. A field is required when the schema requires it and it cannot
    be null."""
    schema = operations.params_schema(operation)
    definitions = schema.get("$defs", {})
    required_names = set(schema.get("required", []))
    fields = {}
    for name, property_schema in schema.get("properties", {}).items():
        inner, nullable = _unwrap_nullable(dict(property_schema), definitions)
        fields[name] = _field_for(name, inner, required=name in required_names and not nullable,
                                  nullable=nullable)
    return fields


def initial_value(field: forms.Field, raw: str) -> Any:
    """Given a field and a text from a link's query, return the initial value it shows."""
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

    def __init__(self, operation: operations.OperationType, *args: Any, **kwargs: Any) -> None:
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
