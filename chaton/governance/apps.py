from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GovernanceConfig(AppConfig):
    name = "chaton.governance"
    label = "governance"
    verbose_name = _("Governance")

    def ready(self) -> None:
        # The apps below governance ask its gate through core's hook, never importing it.
        from chaton.core import gate
        from chaton.governance.gate import GovernanceGate

        gate.install(GovernanceGate())
