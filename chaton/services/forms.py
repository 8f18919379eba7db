"""Forms of the services pages, and settings typed as text.

An application's settings form is not written by hand: :class:`SettingsForm`
builds its fields from the JSON schema of the manifest's settings model
(:func:`chaton.core.forms.schema_fields`), so a new catalogue entry gets its
form without a template or a form change. The forms only collect input: the
actions of :mod:`chaton.services.actions` check it, and their errors come
back on the field they name (:func:`error_field`).

:func:`typed_settings` turns settings typed as text — on a command line, in
"name=value" lines of a proposal — into the types the manifest asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core.errors import InvalidInput
from chaton.core.forms import schema_fields
from chaton.directory.models import Group
from chaton.members.models import Organization
from chaton.services.catalog import Manifest
from chaton.services.models import Host, HostRole

_TRUE_TEXTS = {"true", "1", "yes", "on"}
_FALSE_TEXTS = {"false", "0", "no", "off"}


def typed_settings(manifest: Manifest, values: Mapping[str, Any]) -> dict[str, Any]:
    """Given settings whose values may be texts, return them with each text of an integer or
    boolean setting turned into a number or a truth value.

    Other values, and names the manifest does not know, are kept as they are:
    the action refuses what does not fit. Raise InvalidInput for a text that
    is not a number, or not yes/no.
    """
    kinds = {setting.name: setting.type for setting in manifest.settings}
    typed: dict[str, Any] = {}
    for name, value in values.items():
        kind = kinds.get(name)
        if isinstance(value, str) and kind in ("integer", "duration_days"):
            try:
                value = int(value.strip())
            except ValueError:
                raise InvalidInput(_("Invalid setting %(name)s: “%(value)s” is not a whole "
                                     "number.") % {"name": name, "value": value[:100]},
                                   field=f"settings.{name}") from None
        elif isinstance(value, str) and kind == "boolean":
            text = value.strip().lower()
            if text not in _TRUE_TEXTS | _FALSE_TEXTS:
                raise InvalidInput(_("Invalid setting %(name)s: “%(value)s” is neither yes "
                                     "nor no.") % {"name": name, "value": value[:100]},
                                   field=f"settings.{name}")
            value = text in _TRUE_TEXTS
        typed[name] = value
    return typed


def error_field(field: str | None) -> str | None:
    """Given the field an action's error names (``settings.max_size_mb``), return the name
    of that field in the instance forms (``max_size_mb``, in the settings form)."""
    if field and field.startswith("settings."):
        return field.removeprefix("settings.")
    return field


class SettingsForm(forms.Form):
    """One field per setting of an application, built from its settings schema; shown with
    the current values (or the defaults)."""

    def __init__(self, manifest: Manifest, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "settings")
        super().__init__(*args, **kwargs)
        self.manifest = manifest
        schema = manifest.settings_model().model_json_schema()
        # Every setting has a value (its default at least): each field is shown filled in.
        schema["required"] = list(schema.get("properties", {}))
        help_texts = {}
        for setting in manifest.settings:
            bounds = _bounds(setting.minimum, setting.maximum)
            default = _("Default: %(value)s.") % {"value": shown_value(setting.default)}
            parts = [setting.help, default, bounds]
            # A form's help text is shown as HTML: the manifest's text is escaped first.
            help_texts[setting.name] = escape(" ".join(part for part in parts if part))
        self.fields.update(schema_fields(schema, help_texts=help_texts))
        for name, field in self.fields.items():
            if type(field) is forms.CharField:
                field.required = False  # an empty text is a value
                field.empty_value = ""
            if name not in self.initial:
                self.initial[name] = next(setting.default for setting in manifest.settings
                                          if setting.name == name)

    def values(self) -> dict[str, Any]:
        """Return the cleaned settings (every one of them)."""
        return {name: value for name, value in self.cleaned_data.items() if value is not None}


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return _("From %(minimum)d to %(maximum)d.") % {"minimum": minimum, "maximum": maximum}
    if minimum is not None:
        return _("At least %(minimum)d.") % {"minimum": minimum}
    if maximum is not None:
        return _("At most %(maximum)d.") % {"maximum": maximum}
    return ""


def shown_value(value: Any) -> str:
    """Return a setting's value as a page shows it: yes/no, "(empty)", or the value."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value == "":
        return _("(empty)")
    return str(value)


class ApplicationChoiceForm(forms.Form):
    """The first step of creating an instance without JavaScript: which application."""

    application = forms.ChoiceField(label=gettext_lazy("Application"))

    def __init__(self, *args: Any, manifests: Mapping[str, Manifest], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["application"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(name, f"{manifest.label} — {manifest.description}")
                         for name, manifest in manifests.items()]


class InstanceForm(forms.Form):
    """Where an instance lives and who owns it; its settings are a SettingsForm beside it."""

    domain = forms.CharField(label=gettext_lazy("Domain"), max_length=253,
                             help_text=gettext_lazy("Such as pad.example.org; the proxy "
                                                    "obtains its certificate."))
    host = forms.ModelChoiceField(label=gettext_lazy("Host"), queryset=Host.objects.none(),
                                  to_field_name="name", empty_label=None)
    organization = forms.ModelChoiceField(
        label=gettext_lazy("Owner"), queryset=Organization.objects.order_by("name"),
        to_field_name="slug", required=False, empty_label=gettext_lazy("the collective"),
        help_text=gettext_lazy("A service for a partner organization needs a decision of the "
                               "members."))
    login_group = forms.ModelChoiceField(
        label=gettext_lazy("Who may log in"), queryset=Group.objects.order_by("name"),
        to_field_name="name", required=False, empty_label=gettext_lazy("every account"))
    slug = forms.CharField(label=gettext_lazy("Short name"), max_length=31, required=False,
                           help_text=gettext_lazy("In the names of its containers and "
                                                  "volumes; empty: made from the domain."))
    image = forms.CharField(label=gettext_lazy("Image"), max_length=300, required=False,
                            help_text=gettext_lazy("Empty: the catalogue's pin. Or an image "
                                                   "loaded onto the host from an archive "
                                                   "(repository:tag or its sha256 id), or "
                                                   "another pin by digest."))

    def __init__(self, manifest: Manifest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manifest = manifest
        host = self.fields["host"]
        assert isinstance(host, forms.ModelChoiceField)
        hosts = Host.objects.order_by("-is_default", "name")
        # Only the hosts whose role is to run instances (roles are a JSON list: filtered here).
        host.queryset = hosts.filter(pk__in=[candidate.pk for candidate in hosts
                                             if HostRole.APPS in candidate.roles])
        if not manifest.ldap.supported:
            # The application has no login through the directory: nothing to choose.
            del self.fields["login_group"]


class LoginGroupForm(forms.Form):
    """Who may log in to an instance (for an application that uses the directory)."""

    login_group = forms.ModelChoiceField(
        label=gettext_lazy("Who may log in"), queryset=Group.objects.order_by("name"),
        to_field_name="name", required=False, empty_label=gettext_lazy("every account"))


class UpgradeForm(forms.Form):
    image = forms.CharField(label=gettext_lazy("New image"), max_length=300,
                            help_text=gettext_lazy("Pinned by digest: "
                                                   "repository:tag@sha256:…, or an image "
                                                   "loaded onto the host (repository:tag or "
                                                   "its sha256 id). The new "
                                                   "version takes the traffic only once it "
                                                   "is healthy; otherwise it is rolled back."))


class ImageImportForm(forms.Form):
    """An image archive (``docker save``) to load onto a host."""

    host = forms.ModelChoiceField(label=gettext_lazy("Host"), queryset=Host.objects.none(),
                                  to_field_name="name", empty_label=None)
    archive = forms.FileField(label=gettext_lazy("Image archive"),
                              help_text=gettext_lazy("A .tar file made by docker save "
                                                     "(docker image save), compressed or "
                                                     "not."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        host = self.fields["host"]
        assert isinstance(host, forms.ModelChoiceField)
        host.queryset = Host.objects.order_by("-is_default", "name")


class RemoveForm(forms.Form):
    confirm = forms.CharField(label=gettext_lazy("Type the instance's short name to confirm"),
                              max_length=40)
    delete_data = forms.BooleanField(
        label=gettext_lazy("Delete its data too"), required=False,
        help_text=gettext_lazy("Otherwise its volumes are kept on the host."))


class HostForm(forms.Form):
    """A new host: its Docker endpoint, roles, and where the proxy reaches it."""

    name = forms.SlugField(label=gettext_lazy("Name"), max_length=64)
    docker_url = forms.CharField(label=gettext_lazy("Docker endpoint"), max_length=255,
                                 help_text=gettext_lazy("unix:///var/run/docker.sock, "
                                                        "tcp://host:2376 (with TLS files) or "
                                                        "ssh://user@host."))
    address = forms.CharField(label=gettext_lazy("Address for the proxy"), max_length=255,
                              initial="127.0.0.1")
    roles = forms.MultipleChoiceField(label=gettext_lazy("Roles"), choices=HostRole.choices,
                                      initial=[HostRole.APPS],
                                      widget=forms.CheckboxSelectMultiple)
    swarm = forms.TypedChoiceField(
        label=gettext_lazy("Docker Swarm"), coerce=lambda text: {"yes": True, "no": False}
        .get(text), empty_value=None, required=False,
        choices=[("", gettext_lazy("as the engine says")), ("yes", gettext_lazy("a manager")),
                 ("no", gettext_lazy("a single engine"))])
    is_default = forms.BooleanField(label=gettext_lazy("Default host"), required=False)
    tls_ca = forms.CharField(label=gettext_lazy("TLS CA file"), max_length=255, required=False)
    tls_certificate = forms.CharField(label=gettext_lazy("TLS certificate file"),
                                      max_length=255, required=False)
    tls_key = forms.CharField(label=gettext_lazy("TLS key file"), max_length=255,
                              required=False)


class ReconcileForm(forms.Form):
    delete_orphan_volumes = forms.BooleanField(
        label=gettext_lazy("Also delete the data of instances that no longer exist"),
        required=False)
