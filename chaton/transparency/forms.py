"""The transparency forms: the collective's profile, an authority request, its publication."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from chaton.transparency.models import (
    OrganizationStatus,
    OrganizationType,
    ProviderType,
    ServerType,
)


class ProfileForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    website = forms.CharField(label=_("Website"), max_length=200, required=False)
    logo = forms.CharField(label=_("Logo (URL)"), max_length=200, required=False)
    type = forms.ChoiceField(label=_("Type"), choices=OrganizationType.choices)
    status = forms.ChoiceField(label=_("Status"), choices=OrganizationStatus.choices)
    start_date = forms.DateField(label=_("Founded on"), required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}))
    chatons_start_date = forms.DateField(label=_("CHATONS member since"), required=False,
                                         widget=forms.DateInput(attrs={"type": "date"}))
    chatons_end_date = forms.DateField(label=_("CHATONS member until"), required=False,
                                       widget=forms.DateInput(attrs={"type": "date"}))
    country_name = forms.CharField(label=_("Country"), max_length=100, required=False)
    country_code = forms.CharField(label=_("Country code"), max_length=2, required=False,
                                   help_text=_("Two letters, ISO 3166-1: FR, BE, CH …"))
    contact_email = forms.CharField(label=_("Contact email"), max_length=254, required=False)
    contact_url = forms.CharField(label=_("Contact page"), max_length=200, required=False)
    legal_url = forms.CharField(label=_("Legal notice page"), max_length=200, required=False)
    funding = forms.CharField(label=_("Funding links"), required=False,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              help_text=_("One a line: name = address, for example "
                                          "liberapay = https://liberapay.com/example/"))

    def clean_funding(self) -> dict[str, str]:
        """Return the funding lines as ``{name: address}``; a line without “=” is refused."""
        links: dict[str, str] = {}
        for line in str(self.cleaned_data["funding"]).splitlines():
            if not line.strip():
                continue
            name, found, url = line.partition("=")
            if not found:
                raise forms.ValidationError(_("Write each link as name = address."))
            links[name.strip()] = url.strip()
        return links


class RequestForm(forms.Form):
    received_on = forms.DateField(label=_("Received on"),
                                  widget=forms.DateInput(attrs={"type": "date"}))
    authority = forms.CharField(label=_("Authority"), max_length=200, help_text=_(
        "Shown publicly once published: name the institution, never a person."))
    kind = forms.CharField(label=_("Kind of request"), max_length=200, help_text=_(
        "Shown publicly once published: identification, seizure, removal …"))
    asked = forms.CharField(label=_("What was asked"), widget=forms.Textarea(attrs={"rows": 4}))
    answered = forms.CharField(label=_("What was answered"), required=False,
                               widget=forms.Textarea(attrs={"rows": 4}))
    answered_on = forms.DateField(label=_("Answered on"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))


class PublishForm(forms.Form):
    published_text = forms.CharField(
        label=_("Text to publish"), widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What the public register shows: no name, address, account or other "
                    "personal data."))


class AnswerForm(forms.Form):
    answered = forms.CharField(label=_("What was answered"),
                               widget=forms.Textarea(attrs={"rows": 4}))
    answered_on = forms.DateField(label=_("Answered on"),
                                  widget=forms.DateInput(attrs={"type": "date"}))


class HostFactsForm(forms.Form):
    description = forms.CharField(label=_("Description"), max_length=300, required=False)
    provider_type = forms.ChoiceField(label=_("Provider type"), required=False,
                                      choices=[("", "—"), *ProviderType.choices])
    server_type = forms.ChoiceField(label=_("Server type"), required=False,
                                    choices=[("", "—"), *ServerType.choices])
    country_name = forms.CharField(label=_("Country"), max_length=100, required=False)
    country_code = forms.CharField(label=_("Country code"), max_length=2, required=False)
