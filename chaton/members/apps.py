from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class MembersConfig(registry.ChatonAppConfig):
    name = "chaton.members"
    label = "members"
    verbose_name = _("Members")
    api_routers = [("/members", "chaton.members.api:router")]
    urls = "chaton.members.urls"
    nav = [NavEntry(label=_("Persons"), url_name="person-list", admin_only=True, order=10,
                    active=("*person-*", "*membership-*")),
           NavEntry(label=_("Organizations"), url_name="organization-list", admin_only=True,
                    order=20, active=("*organization-*",)),
           NavEntry(label=_("Member counts"), url_name="member-counts", admin_only=True,
                    order=30)]
    cli = [CliGroup("member", "chaton.cli.members:member_app", "Members and their memberships.",
                    order=20),
           CliGroup("org", "chaton.cli.members:organization_app", "Partner organizations.",
                    order=30)]
    demo = DemoLoader("chaton.members.demo:load", order=10)
