"""``group.grant``: add an account to a group, until a date or for good.

Extraordinary for a group marked "needs a decision" (such as the one that can
read the technical passwords), and for changing the end of an access that an
adopted extraordinary decision granted; ordinary otherwise. Reverted by removing the
access again, or by putting back the expiry date it had.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock
from chaton.directory.gated import GrantGroupParams
from chaton.directory.models import Account, GroupMembership
from chaton.directory.queries import account_by_uid, group_by_name
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import (
    OperationType,
    fields_as_params,
    register,
)


@register
class GrantGroup(OperationType[GrantGroupParams]):
    type = "group.grant"
    label = gettext_lazy("Add an account to a group")
    reverts_with = ("group.revoke",)
    Params = GrantGroupParams

    def default_kind(self, params: GrantGroupParams) -> Kind:
        from chaton.governance.queries import decided_accesses

        group = group_by_name(params.group)
        if group.requires_decision:
            return Kind.EXTRAORDINARY
        # Changing the end of an access that the members granted takes them too.
        if (params.account in decided_accesses(group.name)
                and group.memberships.filter(account__uid=params.account).exists()):
            return Kind.EXTRAORDINARY
        return Kind.ORDINARY

    def describe(self, params: GrantGroupParams) -> str:
        if params.expires_on:
            return _("add %(account)s to the group %(group)s until %(day)s") % {
                "account": params.account, "group": params.group, "day": params.expires_on}
        return _("add %(account)s to the group %(group)s") % {
            "account": params.account, "group": params.group}

    def check(self, params: GrantGroupParams) -> None:
        from chaton.directory.actions import validate_add_to_group

        with fields_as_params({"expires_at": "expires_on"}):
            validate_add_to_group(group_by_name(params.group),
                                  account_by_uid(params.account, field="account"),
                                  clock.end_of_day(params.expires_on))

    def apply(self, params: GrantGroupParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_add_to_group

        group = group_by_name(params.group)
        account = account_by_uid(params.account, field="account")
        existing = GroupMembership.objects.filter(group=group, account=account).first()
        previous: dict[str, Any] = {"was_member": existing is not None}
        if existing is not None:
            previous["expires_on"] = str(clock.last_day(existing.expires_at) or "")
        do_add_to_group(group, account, acting_user=acting_user,
                        expires_at=clock.end_of_day(params.expires_on),
                        authorised_by=authorised_by)
        return previous

    def revert(self, params: GrantGroupParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.directory.actions import do_add_to_group, do_remove_from_group

        group = group_by_name(params.group)
        account = account_by_uid(params.account, field="account")
        if not result.get("was_member"):
            do_remove_from_group(group, account, acting_user=acting_user,
                                 authorised_by=authorised_by)
            return
        previous = result.get("expires_on") or None
        day = dt.date.fromisoformat(previous) if previous else None
        if day is not None and day < clock.today():
            do_remove_from_group(group, account, acting_user=acting_user,
                                 authorised_by=authorised_by)
        else:
            do_add_to_group(group, account, acting_user=acting_user,
                            expires_at=clock.end_of_day(day), authorised_by=authorised_by)
