from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class MonitoringConfig(registry.ChatonAppConfig):
    name = "chaton.monitoring"
    label = "monitoring"
    verbose_name = _("Monitoring")
    api_routers = [("/monitoring", "chaton.monitoring.api:router")]
    urls = "chaton.monitoring.urls"
    jobs = "chaton.monitoring.jobs"
    nav = [NavEntry(label=_("Overview"), url_name="overview", admin_only=True, order=5),
           NavEntry(label=_("Monitoring"), url_name="monitoring-probes", admin_only=True,
                    order=87, active=("monitoring-*",))]
    cli = [CliGroup("monitor", "chaton.cli.monitoring:app",
                    "Monitoring: probes, incidents, maintenance windows, alerts.", order=120)]
    demo = DemoLoader("chaton.monitoring.demo:load", order=55)
