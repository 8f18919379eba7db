"""The monitoring forms: a custom probe, a maintenance window, an incident's note."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from chaton.monitoring.models import Kind

KIND_CHOICES = [(kind.value, kind.label) for kind in Kind
                if kind.value in ("http", "tcp", "tls", "dns", "smtp", "imap", "ldap")]


class ProbeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES)
    target = forms.CharField(label=_("Target"), max_length=500, help_text=_(
        "A URL for HTTP(S) and LDAP, HOST:PORT for TCP, TLS, SMTP and IMAP, a name for DNS."))
    conditions = forms.CharField(label=_("Conditions"), required=False, widget=forms.Textarea(
        attrs={"rows": 3}), help_text=_(
            "One a line, e.g. [STATUS] == 200, [BODY] contains pad, [RESPONSE_TIME] < 500, "
            "[CERTIFICATE_EXPIRATION] > 240h, [CONNECTED] == true."))
    service = forms.CharField(label=_("Service"), max_length=200, required=False,
                              help_text=_("The label shown on the status page; empty: the name."))
    public = forms.BooleanField(label=_("Shown on the status page"), required=False)
    interval_seconds = forms.IntegerField(label=_("Interval (seconds)"), initial=60,
                                          min_value=10, max_value=86400)
    timeout_seconds = forms.IntegerField(label=_("Timeout (seconds)"), initial=10, min_value=1,
                                         max_value=60)

    def condition_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["conditions"].splitlines()
                if line.strip()]


class MaintenanceForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    starts_at = forms.DateTimeField(label=_("Starts"), widget=forms.DateTimeInput(
        attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(label=_("Ends"), widget=forms.DateTimeInput(
        attrs={"type": "datetime-local"}))
    services = forms.MultipleChoiceField(label=_("Services"), required=False,
                                         widget=forms.CheckboxSelectMultiple,
                                         help_text=_("None checked: every service."))

    def __init__(self, *args: Any, services: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["services"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(service, service) for service in services]


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), required=False,
                           widget=forms.Textarea(attrs={"rows": 3}))
