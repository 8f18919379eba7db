"""Forms of the backups pages. They only collect input: the actions check and write it.

Field names match the ``field`` that the actions put on their errors (a source
form's fields are named after the kind's parameters), so an InvalidInput or a
Conflict lands next to the field that caused it. A password is never sent
back to the browser: the repository form leaves its field empty, and an empty
field on the edit form keeps the stored password.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.backups.models import Repository, RepositoryKind, SourceKind
from chaton.core.errors import InvalidInput

#: Which fieldset of the source form each kind shows (the CSS hides the others).
SOURCE_FIELDSETS: dict[str, tuple[str, ...]] = {
    SourceKind.POSTGRES: ("database", "host", "port", "user", "password"),
    SourceKind.MARIADB: ("database", "host", "port", "user", "password"),
    SourceKind.LDAP: ("chaton_directory", "base_dn", "config", "url", "bind_dn",
                      "ldap_password"),
    SourceKind.CHATON: (),
    SourceKind.PATHS: ("paths", "exclude"),
    SourceKind.DOCKER_VOLUME: ("volume",),
}


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


class SourceForm(forms.Form):
    """A data source: its kind, its name, and the parameters of that kind.

    The fields of every kind are in the form; :meth:`params` keeps those of the
    chosen kind, and the kind's own check (``clean_params``) judges them.
    """

    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=SourceKind.choices)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=64,
                           help_text=gettext_lazy("Lower-case letters, digits and hyphens."))
    # PostgreSQL and MariaDB
    database = forms.CharField(label=gettext_lazy("Database"), required=False, max_length=200)
    host = forms.CharField(label=gettext_lazy("Host"), required=False, max_length=300,
                           help_text=gettext_lazy("Default 127.0.0.1; for PostgreSQL also a "
                                                  "socket directory."))
    port = forms.IntegerField(label=gettext_lazy("Port"), required=False,
                              help_text=gettext_lazy("Default 5432 (PostgreSQL), 3306 "
                                                     "(MariaDB)."))
    user = forms.CharField(label=gettext_lazy("User"), required=False, max_length=200)
    password = forms.CharField(label=gettext_lazy("Password"), required=False, strip=False,
                               max_length=1024, widget=_password_widget(),
                               help_text=gettext_lazy("Stored encrypted."))
    # LDAP
    chaton_directory = forms.BooleanField(
        label=gettext_lazy("Chaton's own directory"), required=False,
        help_text=gettext_lazy("As chaton.toml says; no other parameter."))
    base_dn = forms.CharField(label=gettext_lazy("Base DN"), required=False, max_length=500)
    config = forms.CharField(label=gettext_lazy("slapd configuration"), required=False,
                             max_length=500,
                             help_text=gettext_lazy("A slapd.conf path: read with slapcat."))
    url = forms.CharField(label=gettext_lazy("Directory URL"), required=False, max_length=500,
                          help_text=gettext_lazy("ldap://, ldaps:// or ldapi://, when the "
                                                 "server's files are out of reach."))
    bind_dn = forms.CharField(label=gettext_lazy("Bind DN"), required=False, max_length=500)
    ldap_password = forms.CharField(label=gettext_lazy("Bind password"), required=False,
                                    strip=False, max_length=1024, widget=_password_widget(),
                                    help_text=gettext_lazy("Stored encrypted."))
    # Directories
    paths = forms.CharField(
        label=gettext_lazy("Directories"), required=False, max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=gettext_lazy("One absolute path per line."))
    exclude = forms.CharField(
        label=gettext_lazy("Excluded patterns"), required=False, max_length=20000,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text=gettext_lazy("One restic exclude pattern per line."))
    # Docker
    volume = forms.CharField(label=gettext_lazy("Docker volume"), required=False,
                             max_length=200)

    def fieldsets(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """Return (kinds as CSS classes, legend, bound fields) per group of parameters."""
        groups = [
            ("postgres mariadb", _("Database"), SOURCE_FIELDSETS[SourceKind.POSTGRES]),
            ("ldap", _("LDAP directory"), SOURCE_FIELDSETS[SourceKind.LDAP]),
            ("paths", _("Directories"), SOURCE_FIELDSETS[SourceKind.PATHS]),
            ("docker_volume", _("Docker volume"), SOURCE_FIELDSETS[SourceKind.DOCKER_VOLUME]),
        ]
        return [(kinds, legend, [self[name] for name in names])
                for kinds, legend, names in groups]

    def params(self) -> dict[str, Any]:
        """Return the parameters of the chosen kind that were filled in, as the action takes."""
        data = self.cleaned_data
        kind = data.get("kind", "")
        params: dict[str, Any] = {}
        if kind in (SourceKind.POSTGRES, SourceKind.MARIADB):
            for name in ("database", "host", "user", "password"):
                if data.get(name):
                    params[name] = data[name]
            if data.get("port") is not None:
                params["port"] = data["port"]
        elif kind == SourceKind.LDAP:
            if data.get("chaton_directory"):
                params["chaton_directory"] = True
            for name in ("base_dn", "config", "url", "bind_dn"):
                if data.get(name):
                    params[name] = data[name]
            if data.get("ldap_password"):
                params["password"] = data["ldap_password"]
        elif kind == SourceKind.PATHS:
            params["paths"] = _lines(data.get("paths") or "")
            params["exclude"] = _lines(data.get("exclude") or "")
        elif kind == SourceKind.DOCKER_VOLUME and data.get("volume"):
            params["volume"] = data["volume"]
        return params

    def error_field(self, field: str | None) -> dict[str, str]:
        """Return the mapping for :func:`~chaton.core.views.show_error`: an LDAP password
        error belongs to the LDAP password field."""
        if field == "password" and self.cleaned_data.get("kind") == SourceKind.LDAP:
            return {"password": "ldap_password"}
        return {}

