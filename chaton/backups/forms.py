"""Forms of the backups pages. They only collect input: the actions check and write it.

Field names match the ``field`` that the actions put on their errors (a source
form's parameter fields are ``<kind>-<parameter>``, built from each kind's
``Params``; :meth:`SourceForm.error_field` maps them), so an InvalidInput or a
Conflict lands next to the field that caused it. A password is never sent
back to the browser: the repository form leaves its field empty, and an empty
field on the edit form keeps the stored password.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.backups.models import Repository, RepositoryKind
from chaton.backups.sources import ParamSpec, kinds, param_specs
from chaton.core.errors import InvalidInput


def parse_environment(lines: Iterable[str]) -> dict[str, str]:
    """Given ``NAME=value`` lines (blank ones skipped), return the variables.

    Raise InvalidInput (field ``environment``) for a line without ``=``. The
    names themselves are checked by the action.
    """
    variables: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        if not text:
            continue
        name, separator, value = text.partition("=")
        if not separator or not name.strip():
            raise InvalidInput(_("Write one variable per line, as NAME=value: “%(line)s”.")
                               % {"line": name.strip()[:40]}, field="environment")
        variables[name.strip()] = value
    return variables


def _password_widget() -> forms.PasswordInput:
    # render_value=False: a password typed once is never written back into the page.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class RepositoryForm(forms.Form):
    """A new restic repository: where it is and the password that opens it."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=64,
                           help_text=gettext_lazy("Lower-case letters, digits and hyphens."))
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=RepositoryKind.choices)
    location = forms.CharField(
        label=gettext_lazy("Location"), max_length=500,
        help_text=gettext_lazy("An absolute path (local), sftp:user@host:/path or "
                               "s3:https://host/bucket."))
    password = forms.CharField(
        label=gettext_lazy("Password"), strip=False, max_length=1024, widget=_password_widget(),
        help_text=gettext_lazy("At least 8 characters. Stored encrypted; keep a copy apart: "
                               "without it the backups cannot be read."))
    environment = forms.CharField(
        label=gettext_lazy("Extra variables for restic"), required=False, max_length=10000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false",
                                     "placeholder": "AWS_ACCESS_KEY_ID=…"}),
        help_text=gettext_lazy("One NAME=value per line (S3 keys …); stored encrypted."))
    check_interval_days = forms.IntegerField(
        label=gettext_lazy("Check every (days)"), initial=7,
        help_text=gettext_lazy("0: never check it automatically."))
    check_read_data_subset = forms.CharField(
        label=gettext_lazy("Data read by a check"), max_length=20, initial="5%",
        help_text=gettext_lazy("A percentage (5%), a fraction (1/10) or a size (500M)."))
    initialise = forms.BooleanField(
        label=gettext_lazy("Initialise it now"), required=False, initial=True,
        help_text=gettext_lazy("Create the restic repository at the location (an existing "
                               "one that the password opens is adopted)."))

    def variables(self) -> dict[str, str]:
        """Return the extra variables typed. Raise InvalidInput for a malformed line."""
        return parse_environment(str(self.cleaned_data.get("environment") or "").splitlines())


class RepositoryEditForm(forms.Form):
    """How Chaton reaches a repository. Empty secret fields keep what is stored."""

    location = forms.CharField(
        label=gettext_lazy("Location"), max_length=500,
        help_text=gettext_lazy("Another location means another repository: it must be "
                               "initialised again."))
    password = forms.CharField(
        label=gettext_lazy("New password"), strip=False, required=False, max_length=1024,
        widget=_password_widget(),
        help_text=gettext_lazy("Leave empty to keep the current one. Only after changing it "
                               "in restic itself (restic key passwd), or to correct a typo."))
    environment = forms.CharField(
        label=gettext_lazy("Extra variables for restic"), required=False, max_length=10000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=gettext_lazy("One NAME=value per line; replaces all of them. Leave empty to "
                               "keep the current ones."))
    clear_environment = forms.BooleanField(label=gettext_lazy("Remove every extra variable"),
                                           required=False)
    check_interval_days = forms.IntegerField(label=gettext_lazy("Check every (days)"))
    check_read_data_subset = forms.CharField(label=gettext_lazy("Data read by a check"),
                                             max_length=20)

    def variables(self) -> dict[str, str] | None:
        """Return the new extra variables, or None to keep the stored ones.

        Raise InvalidInput for a malformed line.
        """
        if self.cleaned_data.get("clear_environment"):
            return {}
        text = str(self.cleaned_data.get("environment") or "")
        return parse_environment(text.splitlines()) if text.strip() else None


class PlanSettingsForm(forms.Form):
    """A plan's settings: its repository, schedule, retention, staleness and drills."""

    repository = forms.ModelChoiceField(label=gettext_lazy("Repository"),
                                        queryset=Repository.objects.order_by("name"),
                                        to_field_name="name")
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False, initial=True,
                                 help_text=gettext_lazy("The worker backs it up on schedule."))
    interval_minutes = forms.IntegerField(label=gettext_lazy("Back up every (minutes)"),
                                          initial=24 * 60,
                                          help_text=gettext_lazy("1440: once a day."))
    keep_last = forms.IntegerField(label=gettext_lazy("Keep the last"), initial=0)
    keep_daily = forms.IntegerField(label=gettext_lazy("Daily snapshots kept"), initial=7)
    keep_weekly = forms.IntegerField(label=gettext_lazy("Weekly snapshots kept"), initial=4)
    keep_monthly = forms.IntegerField(label=gettext_lazy("Monthly snapshots kept"), initial=6)
    keep_yearly = forms.IntegerField(label=gettext_lazy("Yearly snapshots kept"), initial=0)
    stale_after_hours = forms.IntegerField(
        label=gettext_lazy("Stale after (hours)"), initial=36,
        help_text=gettext_lazy("The plan is flagged when its last good backup is older."))
    drill_interval_days = forms.IntegerField(
        label=gettext_lazy("Drill a restore every (days)"), initial=7,
        help_text=gettext_lazy("0: never drill automatically."))

    def settings(self) -> dict[str, Any]:
        """Return the cleaned settings as keyword arguments of the plan actions."""
        return {name: self.cleaned_data[name] for name in self.fields if name != "name"}


class PlanForm(PlanSettingsForm):
    """A new plan: its name (its restic tag, fixed once created) and its settings."""

    name = forms.CharField(
        label=gettext_lazy("Name"), max_length=64,
        help_text=gettext_lazy("Lower-case letters, digits and hyphens; it cannot change."))
    field_order = ["name"]


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _kind_choices() -> list[tuple[str, str]]:
    return [(kind, str(source.label)) for kind, source in kinds().items()]


def param_field_name(kind: str, name: str) -> str:
    """Return the form field of parameter ``name`` of ``kind``: ``<kind>-<name>``."""
    return f"{kind}-{name}"


def param_field(spec: ParamSpec) -> forms.Field:
    """Given a parameter of a kind, return its form field (never required: the kind judges)."""
    help_text: Any = spec.help
    if spec.default not in (None, "", []):
        help_text = format_lazy("{} {}", spec.help, format_lazy(
            gettext_lazy("Default: {}."), spec.default)) if spec.help else format_lazy(
            gettext_lazy("Default: {}."), spec.default)
    common: dict[str, Any] = {"label": spec.label, "help_text": help_text, "required": False}
    if spec.shape == "boolean":
        return forms.BooleanField(**common)
    if spec.shape == "integer":
        return forms.IntegerField(**common)
    if spec.shape == "lines":
        return forms.CharField(max_length=20000, **common, widget=forms.Textarea(
            attrs={"rows": 3, "spellcheck": "false"}))
    if spec.secret:
        return forms.CharField(max_length=1024, strip=False, widget=_password_widget(),
                               **common)
    return forms.CharField(max_length=500, **common)


class SourceForm(forms.Form):
    """A data source: its kind, its name, and the parameters of that kind.

    The parameters of every kind are in the form, built from each kind's
    ``Params`` (one field ``<kind>-<parameter>`` each, one fieldset per kind);
    :meth:`params` keeps those of the chosen kind that were filled in, and the
    kind's own model judges them.
    """

    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=_kind_choices)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=64,
                           help_text=gettext_lazy("Lower-case letters, digits and hyphens."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, source in kinds().items():
            for spec in param_specs(source.Params):
                self.fields[param_field_name(kind, spec.name)] = param_field(spec)

    def fieldsets(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """Return (kind, its label, its parameters' bound fields) for every kind."""
        return [(kind, str(source.label),
                 [self[param_field_name(kind, spec.name)] for spec in param_specs(source.Params)])
                for kind, source in kinds().items()]

    def params(self) -> dict[str, Any]:
        """Return the parameters of the chosen kind that were filled in, as the action takes."""
        data = self.cleaned_data
        kind = data.get("kind", "")
        source = kinds().get(kind)
        params: dict[str, Any] = {}
        if source is None:
            return params
        for spec in param_specs(source.Params):
            value = data.get(param_field_name(kind, spec.name))
            if spec.shape == "lines":
                value = _lines(value or "")
            if value or (spec.shape == "integer" and value is not None):
                params[spec.name] = value
        return params

    def error_field(self, field: str | None) -> dict[str, str]:
        """Return the mapping for :func:`~chaton.core.views.show_error`: a parameter's error
        belongs to the chosen kind's field of that parameter."""
        kind = self.cleaned_data.get("kind", "")
        if field and param_field_name(kind, field) in self.fields:
            return {field: param_field_name(kind, field)}
        return {}
