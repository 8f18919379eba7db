"""Forms every app shares: the login form, and form fields built from a JSON schema.

- :class:`ThrottledAuthenticationForm`: Django's login form, with the brute-force
  throttle of :mod:`chaton.core.throttle`.
- :func:`schema_fields`: the fields that type the properties of a pydantic
  model's JSON schema (a governance operation's params, an application's
  settings), so that a new type gets its form without a template.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from chaton.core import limits, throttle

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class MyTokenForm(forms.Form):
    """A token of one's own: its label and its scopes (``admin`` only for an administrator)."""

    name = forms.CharField(label=_("What it is for"), max_length=limits.TOKEN_NAME_MAX_LENGTH,
                           strip=False)
    scopes = forms.MultipleChoiceField(label=_("It may"), widget=forms.CheckboxSelectMultiple,
                                       initial=["read"])

    def __init__(self, *args: Any, is_admin: bool, **kwargs: Any) -> None:
        from chaton.core.models import Scope

        super().__init__(*args, **kwargs)
        field = self.fields["scopes"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(value, label) for value, label in Scope.choices
                         if is_admin or value != Scope.ADMIN]


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing a user name or an address after too many failures.

    Before the password is even checked (so the refusal holds with the right
    password, and a flood costs no argon2 work), it refuses a user name with
    ``LOGIN_PER_USER_NAME`` recent failures and an address with
    ``LOGIN_PER_ADDRESS``. A failure counts for both; a success clears the user
    name's count (not the address's: one right password must not reopen an
    address that tried many names).
    """

    def clean(self) -> dict[str, Any]:
        user_name = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if user_name is None or not password:
            # A field is missing: Django's form reports it, nothing was tried.
            return super().clean()
        address = throttle.client_address(self.request) if self.request is not None else None
        self._refuse_if_throttled(user_name, address)
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.hit(throttle.LOGIN_PER_USER_NAME, user_name)
            if address is not None:
                throttle.hit(throttle.LOGIN_PER_ADDRESS, address)
            raise
        throttle.clear(throttle.LOGIN_PER_USER_NAME, user_name)
        return cleaned

    def _refuse_if_throttled(self, user_name: str, address: str | None) -> None:
        """Raise ValidationError (code ``throttled``) if the user name or address is refused."""
        wait = throttle.retry_after(throttle.LOGIN_PER_USER_NAME, user_name)
        if wait is not None:
            count = throttle.minutes(wait)
            raise forms.ValidationError(
                ngettext("Too many failed logins for this user name. Try again in %(minutes)d "
                         "minute, or reset your password.",
                         "Too many failed logins for this user name. Try again in %(minutes)d "
                         "minutes, or reset your password.", count) % {"minutes": count},
                code="throttled")
        wait = throttle.retry_after(throttle.LOGIN_PER_ADDRESS, address) if address else None
        if wait is not None:
            count = throttle.minutes(wait)
            raise forms.ValidationError(
                ngettext("Too many failed logins from your network address. Try again in "
                         "%(minutes)d minute.",
                         "Too many failed logins from your network address. Try again in "
                         "%(minutes)d minutes.", count) % {"minutes": count},
                code="throttled")


# -- form fields from a JSON schema ------------------------------------------------------------
#
# Typed input that is data, not code — an operation's params, an application's settings — gets
# its form from the JSON schema of its pydantic model: no template or form to write per type.

_NO_LABELS: Mapping[str, StrOrPromise] = {}


class DatePicker(forms.DateInput):
    """The browser's date picker; ISO dates work in every language."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


class OptionalBooleanSelect(forms.NullBooleanSelect):
    """Yes, no, or nothing chosen (the default, or "unchanged")."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.choices = [("unknown", "—"), ("true", _("yes")), ("false", _("no"))]


class ObjectField(forms.CharField):
    """A JSON object typed as a JSON text or as "key=value" lines; cleans to a dict or None."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        return object_as_text(value)

    def to_python(self, value: Any) -> dict[str, Any] | None:  # type: ignore[override]
        return object_from_text(str(super().to_python(value) or "")) or None


def object_from_text(text: str) -> dict[str, Any]:
    """Given a JSON object's text, or "name=value" lines, return the object (a line's value
    is a text; an empty text is an empty object).

    The one parser of objects typed as text: a form's field, an operation's
    params from a proposal link or a command line. Raise ValidationError for
    JSON that is not an object, or a line without "=".
    """
    text = text.strip()
    if not text.startswith("{"):
        return key_value_lines(text.splitlines())
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise forms.ValidationError(_("This is not valid JSON: %(error)s"),
                                    params={"error": error.msg}) from None
    if not isinstance(parsed, dict):
        raise forms.ValidationError(_("Expected a JSON object."))
    return parsed


def key_value_lines(lines: Iterable[str]) -> dict[str, str]:
    """Given "name=value" texts (blank ones ignored), return them as a dict of texts.

    Raise ValidationError naming the first line that is not "name=value".
    """
    result: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        key, equals, item = line.partition("=")
        if not equals or not key.strip():
            raise forms.ValidationError(
                _("Line %(number)d is not of the form “name=value”."),
                params={"number": number})
        result[key.strip()] = item.strip()
    return result


def object_as_text(value: Any) -> Any:
    """Given a dict, or its JSON text (a proposal link carries a dict as JSON), return it as
    "key=value" lines; any other value unchanged."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, Mapping):
        return "\n".join(f"{key}={item}" for key, item in value.items())
    return value


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


def _allowed_values(schema: Mapping[str, Any]) -> list[str]:
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping) and isinstance(extra.get("enum"), list):
        return [str(value) for value in extra["enum"]]
    return []


def _coerce_to(values: list[Any]) -> Any:
    """Return a function that turns a chosen text back into the enum's own value."""
    by_text = {str(value): value for value in values}
    return lambda text: by_text.get(text, text)


def _field_for(name: str, schema: dict[str, Any], *, required: bool, nullable: bool,
               label: StrOrPromise | None, help_text: StrOrPromise | None) -> forms.Field:
    """Given a property name and its (unwrapped) schema, return the form field that types it."""
    help_text = help_text or schema.get("description") or ""
    common: dict[str, Any] = {"label": label or schema.get("title") or name,
                              "help_text": help_text, "required": required}
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
        return forms.DateField(widget=DatePicker, **common)
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
    # Lists and anything more exotic: typed as JSON, checked by whoever receives it.
    return JsonField(**common)


def schema_fields(schema: Mapping[str, Any], *,
                  labels: Mapping[str, StrOrPromise] = _NO_LABELS,
                  help_texts: Mapping[str, StrOrPromise] = _NO_LABELS) -> dict[str, forms.Field]:
    """Given the JSON schema of a pydantic model, return a form field per property, in the
    schema's order.

    A field is required when the schema requires it and it cannot be null.
    ``labels`` and ``help_texts`` replace, per property, the schema's title
    and description (in English) with translated ones. Strings, integers,
    numbers, booleans, dates, emails, enums and Literals, nullable or not, get
    their own field; an object is typed as "key=value" lines or JSON, anything
    else as JSON.
    """
    definitions = schema.get("$defs", {})
    required_names = set(schema.get("required", []))
    fields = {}
    for name, property_schema in schema.get("properties", {}).items():
        inner, nullable = _unwrap_nullable(dict(property_schema), definitions)
        fields[name] = _field_for(name, inner,
                                  required=name in required_names and not nullable,
                                  nullable=nullable, label=labels.get(name),
                                  help_text=help_texts.get(name))
    return fields
