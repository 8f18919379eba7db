from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class ReportsConfig(registry.ChatonAppConfig):
    name = "chaton.reports"
    label = "reports"
    verbose_name = _("Reports")
    api_routers = [("/reports", "chaton.reports.api:router")]
    urls = "chaton.reports.urls"
    nav = [NavEntry(label=_("Reports"), url_name="report-admin-list", admin_only=True,
                    order=88, active=("report-admin-*",))]
    cli = [CliGroup("report", "chaton.cli.reports:app",
                    "Activity reports: new, build, publish.", order=140)]
    demo = DemoLoader("chaton.reports.demo:load", order=80)
