from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DirectoryConfig(AppConfig):
    name = "chaton.directory"
    label = "directory"
    verbose_name = _("Directory")

    def ready(self) -> None:
        # The members app announces its changes; the directory rewrites its entries.
        from chaton.directory import tasks
        from chaton.members import signals

        signals.organization_changed.connect(tasks.follow_organization,
                                             dispatch_uid="directory.follow_organization")
        signals.memberships_changed.connect(tasks.follow_memberships,
                                            dispatch_uid="directory.follow_memberships")
