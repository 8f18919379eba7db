from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class GovernanceConfig(registry.ChatonAppConfig):
    name = "chaton.governance"
    label = "governance"
    verbose_name = _("Governance")
    api_routers = [("/governance", "chaton.governance.api:router")]
    urls = "chaton.governance.urls"
    jobs = "chaton.governance.jobs"
    nav = [NavEntry(label=_("Decisions"), url_name="decision-list", order=50,
                    active=("decision-*",))]
    cli = [CliGroup("decision", "chaton.cli.governance:app", "Proposals, votes and decisions.",
                    order=80)]
    demo = DemoLoader("chaton.governance.demo:load", order=30)

    def ready(self) -> None:
        # The apps below governance ask its gate through core's hook, never importing it.
        from chaton.core import gate
        from chaton.governance.gate import GovernanceGate

        gate.install(GovernanceGate())
