"""``group.revoke``: remove an account from a group. Reverted by adding it back.

Ordinary, except from a group whose members are added by decision only, or an
access that an adopted extraordinary decision granted: what the members
decided is undone only by a decision.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock
from chaton.directory.gated import RevokeGroupParams
from chaton.directory.models import Account, GroupMembership
from chaton.directory.queries import account_by_uid, group_by_name
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, register


@register
class RevokeGroup(OperationType[RevokeGroupParams]):
    type = "group.revoke"
    label = gettext_lazy("Remove an account from a group")
    reverts_with = ("group.grant",)
    Params = RevokeGroupParams

    def default_kind(self, params: RevokeGroupParams) -> Kind:
        from chaton.governance.queries import decided_accesses

        group = group_by_name(params.group)
        if group.requires_decision or params.account in decided_accesses(group.name):
            return Kind.EXTRAORDINARY
        return Kind.ORDINARY

    def describe(self, params: RevokeGroupParams) -> str:
        return _("remove %(account)s from the group %(group)s") % {
            "account": params.account, "group": params.group}

    def check(self, params: RevokeGroupParams) -> None:
        # Removing has no rule of its own beyond naming a group and an account.
        group_by_name(params.group)
        account_by_uid(params.account, field="account")

    def apply(self, params: RevokeGroupParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_remove_from_group

        group = group_by_name(params.group)
        account = account_by_uid(params.account, field="account")
        existing = GroupMembership.objects.filter(group=group, account=account).first()
        result: dict[str, Any] = {"was_member": existing is not None}
        if existing is not None:
            result["expires_on"] = str(clock.last_day(existing.expires_at) or "")
            do_remove_from_group(group, account, acting_user=acting_user,
                                 authorised_by=authorised_by)
        return result

    def revert(self, params: RevokeGroupParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.directory.actions import do_add_to_group

        if not result.get("was_member"):
            return
        previous = result.get("expires_on") or None
        day = dt.date.fromisoformat(previous) if previous else None
        if day is not None and day < clock.today():
            return  # the access would have ended by now anyway
        do_add_to_group(group_by_name(params.group),
                        account_by_uid(params.account, field="account"),
                        acting_user=acting_user, expires_at=clock.end_of_day(day),
                        authorised_by=authorised_by)
