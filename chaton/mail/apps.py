from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class MailConfig(registry.ChatonAppConfig):
    name = "chaton.mail"
    label = "mail"
    verbose_name = _("Mail identity")
    api_routers = [("/mail", "chaton.mail.api:router")]
    urls = "chaton.mail.urls"
    jobs = "chaton.mail.jobs"
    nav = [NavEntry(label=_("Mail"), url_name="mail-overview", admin_only=True, order=85,
                    active=("mail-*",))]
    cli = [CliGroup("mail", "chaton.cli.mail:app",
                    "Mail identity: domains, DNS records, DKIM keys.", order=115)]
    demo = DemoLoader("chaton.mail.demo:load", order=60)
