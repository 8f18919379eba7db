from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, NavEntry


class StatsConfig(registry.ChatonAppConfig):
    name = "chaton.stats"
    label = "stats"
    verbose_name = _("Statistics")
    api_routers = [("/stats", "chaton.stats.api:router")]
    urls = "chaton.stats.urls"
    jobs = "chaton.stats.jobs"
    nav = [NavEntry(label=_("Statistics"), url_name="stats-overview", admin_only=True,
                    order=88, active=("stats-*",))]
    cli = [CliGroup("stats", "chaton.cli.stats:app", "Usage statistics: collect, show, export.",
                    order=130)]
