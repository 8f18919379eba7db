from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class TransparencyConfig(registry.ChatonAppConfig):
    name = "chaton.transparency"
    label = "transparency"
    verbose_name = _("Transparency")
    api_routers = [("/transparency", "chaton.transparency.api:router")]
    urls = "chaton.transparency.urls"
    jobs = "chaton.transparency.jobs"
    nav = [NavEntry(label=_("Transparency"), url_name="transparency-settings", admin_only=True,
                    order=89, active=("transparency-*",))]
    cli = [CliGroup("chatonsinfos", "chaton.cli.transparency:chatonsinfos_app",
                    "ChatonsInfos files: check what is served.", order=140),
           CliGroup("transparency", "chaton.cli.transparency:app",
                    "Transparency: the software list, the register of authority requests.",
                    order=141)]
    demo = DemoLoader("chaton.transparency.demo:load", order=85)
