"""Forms of the mail pages: they collect input; the actions check and write it.

Field names match the ``field`` of the actions' errors. There is no field for
``publish_retired_keys``: that is the members' decision (``mail.publish_retired_keys``).
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from chaton.mail.models import DmarcPolicy, MtaStsMode, ZoneMode


class ZoneForm(forms.Form):
    name = forms.CharField(label=_("Zone"), max_length=255,
                           help_text=_("The zone's apex, such as example.org."))
    mode = forms.ChoiceField(label=_("Mode"), choices=ZoneMode.choices)
    server_host = forms.CharField(label=_("Primary server"), max_length=255, required=False)
    server_port = forms.IntegerField(label=_("Port"), initial=53)
    tsig_name = forms.CharField(label=_("TSIG key name"), max_length=255, required=False)
    tsig_algorithm = forms.CharField(label=_("TSIG algorithm"), initial="hmac-sha256")
    tsig_secret = forms.CharField(label=_("TSIG secret (base64)"), required=False,
                                  widget=forms.PasswordInput)


class DomainForm(forms.Form):
    name = forms.CharField(label=_("Domain"), max_length=253)
    zone = forms.CharField(label=_("Zone"), max_length=255)
    dkim_zone = forms.CharField(label=_("DKIM zone (optional)"), max_length=255,
                                required=False)
    mx_hosts = forms.CharField(label=_("Mail exchangers"), required=False,
                               help_text=_("Host names, separated by spaces."))
    sending_addresses = forms.CharField(label=_("Sending addresses"), required=False,
                                        help_text=_("IP addresses, separated by spaces."))
    dmarc_policy = forms.ChoiceField(label=_("DMARC policy"), choices=DmarcPolicy.choices)
    dmarc_report_address = forms.CharField(label=_("DMARC reports to"), required=False)
    mta_sts_mode = forms.ChoiceField(label=_("MTA-STS mode"), choices=MtaStsMode.choices)
    tls_rpt_address = forms.CharField(label=_("TLS reports to"), required=False)
