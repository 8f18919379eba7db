from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, NavEntry


class CoreConfig(registry.ChatonAppConfig):
    name = "chaton.core"
    label = "core"
    verbose_name = "Chaton core"
    api_routers = [("/", "chaton.core.api:router"), ("/", "chaton.core.api:jobs_router")]
    urls = "chaton.core.urls"
    nav = [NavEntry(label=_("Audit log"), url_name="audit-log", admin_only=True, order=90)]
    cli = [CliGroup("token", "chaton.cli.accounts:token_app", "API tokens.", order=70),
           CliGroup("job", "chaton.cli.jobs:app",
                    "Long work asked through the API, and its outcome.", order=100)]
