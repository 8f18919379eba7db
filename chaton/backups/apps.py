from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class BackupsConfig(registry.ChatonAppConfig):
    name = "chaton.backups"
    label = "backups"
    verbose_name = _("Backups")
    api_routers = [("/backups", "chaton.backups.api:router")]
    urls = "chaton.backups.urls"
    jobs = "chaton.backups.jobs"
    nav = [NavEntry(label=_("Backups"), url_name="backup-overview", admin_only=True, order=60,
                    active=("backup-*",))]
    cli = [CliGroup("backup", "chaton.cli.backups:app",
                    "Backups: repositories, plans, runs, drills.", order=90)]
    demo = DemoLoader("chaton.backups.demo:load", order=40)
