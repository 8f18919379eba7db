from django.utils.translation import gettext_lazy as _

from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class DirectoryConfig(registry.ChatonAppConfig):
    name = "chaton.directory"
    label = "directory"
    verbose_name = _("Directory")
    api_routers = [("/", "chaton.directory.api:router"), ("/", "chaton.directory.api:me_router"),
                   ("/", "chaton.directory.api:groups_router"),
                   ("/", "chaton.directory.api:directory_router")]
    urls = "chaton.directory.urls"
    jobs = "chaton.directory.jobs"
    nav = [NavEntry(label=_("My account"), url_name="profile", order=10),
           NavEntry(label=_("Password"), url_name="password-change", order=20),
           NavEntry(label=_("SSH keys"), url_name="ssh-keys", order=30),
           NavEntry(label=_("Accounts"), url_name="account-list", admin_only=True, order=40,
                    active=("*account-*",)),
           NavEntry(label=_("Groups"), url_name="group-list", admin_only=True, order=50,
                    active=("*group-*",)),
           NavEntry(label=_("Directory"), url_name="directory-plan", admin_only=True,
                    order=70)]
    cli = [CliGroup("directory", "chaton.cli.directory:app",
                    "Compare and sync the LDAP directory.", order=10),
           CliGroup("account", "chaton.cli.accounts:account_app", "Directory accounts.",
                    order=40),
           CliGroup("group", "chaton.cli.accounts:group_app", "Groups and their members.",
                    order=50),
           CliGroup("ssh-key", "chaton.cli.accounts:ssh_key_app", "SSH public keys of accounts.",
                    order=60)]
    demo = DemoLoader("chaton.directory.demo:load", order=20)

    def ready(self) -> None:
        # The members app announces its changes; the directory rewrites its entries.
        from chaton.directory import tasks
        from chaton.members import signals

        signals.organization_changed.connect(tasks.follow_organization,
                                             dispatch_uid="directory.follow_organization")
        signals.memberships_changed.connect(tasks.follow_memberships,
                                            dispatch_uid="directory.follow_memberships")
