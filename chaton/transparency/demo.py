"""Transparency's part of ``chaton demo``: the demo collective's profile and its hosts' facts.

Invented names and addresses (``example.org``); loading again changes nothing.
"""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _

from chaton.core.demo import DemoReport
from chaton.services.models import Host
from chaton.transparency import actions
from chaton.transparency.models import OrganizationProfile


def load(report: DemoReport) -> None:
    """Write the demo's profile and host facts when missing; say so in ``report.created``."""
    if not OrganizationProfile.objects.exists():
        actions.do_update_profile(
            acting_user=None, name="Chaton Demo",
            description="A small hosting collective of friends and partner associations.",
            website="https://www.chaton-demo.test/", type="ASSOCIATION", status="ACTIVE",
            start_date=dt.date(2018, 3, 1), chatons_start_date=dt.date(2019, 1, 15),
            country_name="France", country_code="FR", contact_email="contact@example.org",
            contact_url="https://www.chaton-demo.test/contact",
            legal_url="https://www.chaton-demo.test/legal",
            funding={"liberapay": "https://liberapay.example.org/chaton-demo/"})
        report.created.append(_("the collective's profile for the ChatonsInfos files"))
    for host in Host.objects.filter(transparency_facts__isnull=True):
        actions.do_update_host_facts(host, acting_user=None, provider_type="HOSTEDSERVER",
                                     server_type="VIRTUAL", country_name="France",
                                     country_code="FR")
        report.created.append(_("the facts of host %(name)s") % {"name": host.name})
