from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup


class NotificationsConfig(registry.ChatonAppConfig):
    name = "chaton.notifications"
    label = "notifications"
    verbose_name = _("Notifications")
    jobs = "chaton.notifications.jobs"
    cli = [CliGroup("notification", "chaton.cli.notifications:app",
                    "Mails and webhook messages not sent.", order=105)]
