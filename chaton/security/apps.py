from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import NavEntry


class SecurityConfig(registry.ChatonAppConfig):
    name = "chaton.security"
    label = "security"
    verbose_name = "Second factors"
    urls = "chaton.security.urls"
    nav = [NavEntry(label=_("Two-step login"), url_name="two-factor", order=40)]
