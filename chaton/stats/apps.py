from django.utils.translation import gettext_lazy as _

from chaton.core import registry


class StatsConfig(registry.ChatonAppConfig):
    name = "chaton.stats"
    label = "stats"
    verbose_name = _("Statistics")
