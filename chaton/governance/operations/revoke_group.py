"""``group.revoke``: remove an account from a group. Ordinary; reverted by adding it back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock
from chaton.core.errors import InvalidInput
from chaton.directory.models import Account, GroupKind, GroupMembership
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, StrictParams, _lookups, register


class RevokeGroupParams(StrictParams):
    group: str
    account: str


@register
class RevokeGroup(OperationType):
    type = "group.revoke"
    label = gettext_lazy("Remove an account from a group")
    reverts_with = ("group.grant",)
    Params = RevokeGroupParams

    def default_kind(self, params: Any) -> Kind:
        return Kind.ORDINARY

    def describe(self, params: Any) -> str:
        return _("remove %(account)s from the group %(group)s") % {
            "account": params.account, "group": params.group}

    def check(self, params: Any) -> None:
        group = _lookups.group(params.group)
        _lookups.account(params.account)
        if group.kind == GroupKind.MEMBERS:
            raise InvalidInput(_("The group %(name)s follows the memberships: nobody is removed "
                                 "from it by hand.") % {"name": group.name}, field="group")

    def apply(self, params: Any, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_remove_from_group

        group, account = _lookups.group(params.group), _lookups.account(params.account)
        existing = GroupMembership.objects.filter(group=group, account=account).first()
        result: dict[str, Any] = {"was_member": existing is not None}
        if existing is not None:
            result["expires_on"] = str(clock.last_day(existing.expires_at) or "")
            do_remove_from_group(group, account, acting_user=acting_user,
                                 authorised_by=authorised_by)
        return result

    def revert(self, params: Any, result: dict[str, Any], *, acting_user: Account | None,
               authorised_by: Operation) -> None:
        from chaton.directory.actions import do_add_to_group

        if not result.get("was_member"):
            return
        previous = result.get("expires_on") or None
        day = dt.date.fromisoformat(previous) if previous else None
        if day is not None and day < clock.today():
            return  # the access would have ended by now anyway
        do_add_to_group(_lookups.group(params.group), _lookups.account(params.account),
                        acting_user=acting_user, expires_at=clock.end_of_day(day),
                        authorised_by=authorised_by)
