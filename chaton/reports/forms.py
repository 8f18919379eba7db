"""The forms of the reports' pages."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from chaton.reports.actions import SECTION_MAX_LENGTH
from chaton.reports.models import Language


class DateInput(forms.DateInput):
    input_type = "date"


class ReportForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=40, help_text=_('Such as "A18".'))
    starts_on = forms.DateField(label=_("First day"), widget=DateInput)
    ends_on = forms.DateField(label=_("Last day"), widget=DateInput)
    language = forms.ChoiceField(label=_("Language"), choices=Language.choices)


class SectionsForm(forms.Form):
    """The sections people write, in Markdown."""

    starts_on = forms.DateField(label=_("First day"), widget=DateInput)
    ends_on = forms.DateField(label=_("Last day"), widget=DateInput)
    language = forms.ChoiceField(label=_("Language"), choices=Language.choices)
    introduction = forms.CharField(label=_("Introduction"), required=False,
                                   max_length=SECTION_MAX_LENGTH,
                                   widget=forms.Textarea(attrs={"rows": 6}))
    events = forms.CharField(label=_("Events"), required=False, max_length=SECTION_MAX_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 6}))
    outreach = forms.CharField(label=_("Outreach"), required=False,
                               max_length=SECTION_MAX_LENGTH,
                               widget=forms.Textarea(attrs={"rows": 6}))
    conclusion = forms.CharField(label=_("Conclusion"), required=False,
                                 max_length=SECTION_MAX_LENGTH,
                                 widget=forms.Textarea(attrs={"rows": 4}))
