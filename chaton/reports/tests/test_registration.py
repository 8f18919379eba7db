"""The reports app plugs in from its own AppConfig: its link in the administration bar
(before the audit log), its command group, its demo part, its public page."""

from __future__ import annotations

from django.urls import reverse

from chaton.core import registry


def test_the_app_is_registered() -> None:
    admin = [entry.url_name for entry in registry.nav_entries(admin_only=True)]
    assert admin.index("report-admin-list") < admin.index("audit-log")
    assert "report" in [group.name for group in registry.cli_groups()]
    assert "chaton.reports.demo" in [loader.__module__ for loader in registry.demo_loaders()]
    assert ("/reports", "chaton.reports.api:router") in registry.api_routers()
    assert reverse("report-public-list") == "/reports/"
    assert reverse("report-public-file", args=["A18", "pdf"]) == "/reports/A18.pdf"
