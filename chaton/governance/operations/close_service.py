"""``service.close``: remove an instance — its containers, its network, its route, and with
``delete_data`` its volumes.

**Extraordinary** by default: it takes away a service people use, and with
its data, what they put in it. The policy can make it ordinary. **Ordinary**
while the instance is new — opened less than ``services.new_instance_days``
(7) days ago, so it holds no one's data yet — unless it belongs to a partner
organization, whose opening the members decided: closing a mistake needs no
vote when opening it took none. The age comes from the instance's row
(``created_at``, set by the database), never from the request.

**Not revertible.** Once closed, the instance's row and its secrets (the
passwords its application and database were set up with) are gone, and with
``delete_data`` its data too: no automatic step can bring the same service
back. Without ``delete_data`` the volumes stay on the host (the reconciler
reports them as kept): an administrator can open a new instance and restore
them by hand, which is why a counter-vote can only report this, not undo it.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core.errors import Conflict
from chaton.directory.models import Account
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import (
    NotRevertible,
    OperationType,
    register,
)
from chaton.services.gated import CloseServiceParams


def _instance(slug: str) -> Any:
    from chaton.services.models import DesiredState
    from chaton.services.queries import instance_by_slug

    instance = instance_by_slug(slug, field="instance")
    if instance.state == DesiredState.REMOVED:
        raise Conflict(_("The instance %(slug)s is already being removed.") % {"slug": slug},
                       field="instance")
    return instance


def _is_new(slug: str) -> bool:
    """Given an instance's short name, return whether it was opened less than
    ``services.new_instance_days`` ago and not for a partner organization."""
    import datetime as dt

    from django.conf import settings

    from chaton.core import clock
    from chaton.services.models import Instance

    days = settings.CHATON.services.new_instance_days
    if days <= 0:
        return False
    since = clock.now() - dt.timedelta(days=days)
    return Instance.objects.filter(slug=slug, created_at__gt=since,
                                   organization__isnull=True).exists()


@register
class CloseService(OperationType[CloseServiceParams]):
    type = "service.close"
    label = gettext_lazy("Close a service (remove an instance)")
    Params = CloseServiceParams
    revertible = False

    def default_kind(self, params: CloseServiceParams) -> Kind:
        return Kind.ORDINARY if _is_new(params.instance) else Kind.EXTRAORDINARY

    def describe(self, params: CloseServiceParams) -> str:
        if params.delete_data:
            return _("close the instance %(slug)s and delete its data") % {
                "slug": params.instance}
        return _("close the instance %(slug)s (its data is kept)") % {"slug": params.instance}

    def check(self, params: CloseServiceParams) -> None:
        _instance(params.instance)

    def apply(self, params: CloseServiceParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.services.actions import do_remove_instance

        instance = _instance(params.instance)
        do_remove_instance(instance, confirm=instance.slug, acting_user=acting_user,
                           delete_data=params.delete_data, authorised_by=authorised_by)
        return {"instance": instance.slug, "application": instance.application,
                "domain": instance.domain, "host": instance.host.name,
                "data_kept": not params.delete_data}

    def revert(self, params: CloseServiceParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        values = {"slug": result.get("instance") or params.instance,
                  "host": result.get("host") or "?"}
        if result.get("data_kept"):
            raise NotRevertible(_(
                "The instance %(slug)s cannot be opened again automatically: its containers "
                "and secrets are gone. Its data is kept on the host %(host)s: open a new "
                "instance and restore it by hand.") % values)
        raise NotRevertible(_("The instance %(slug)s cannot be opened again: it was removed "
                              "with its data.") % values)
