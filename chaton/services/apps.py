from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class ServicesConfig(registry.ChatonAppConfig):
    name = "chaton.services"
    label = "services"
    verbose_name = _("Services")
    api_routers = [("/services", "chaton.services.api:router")]
    urls = "chaton.services.urls"
    jobs = "chaton.services.jobs"
    nav = [NavEntry(label=_("Services"), url_name="service-overview", admin_only=True,
                    order=80, active=("service-*",))]
    cli = [CliGroup("service", "chaton.cli.services:app",
                    "Services: hosts, the catalogue, instances and their proxy.", order=110)]
    demo = DemoLoader("chaton.services.demo:load", order=50)
