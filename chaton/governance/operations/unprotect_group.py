"""``group.unprotect``: let administrators change a group's members without a decision.

Extraordinary: otherwise clearing the mark would bypass every vote on the group.
Reverted by marking the group again.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.directory.gated import UnprotectGroupParams
from chaton.directory.models import Account
from chaton.directory.queries import group_by_name
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, register


@register
class UnprotectGroup(OperationType[UnprotectGroupParams]):
    type = "group.unprotect"
    label = gettext_lazy("Let administrators change a protected group")
    Params = UnprotectGroupParams

    def default_kind(self, params: UnprotectGroupParams) -> Kind:
        return Kind.EXTRAORDINARY

    def describe(self, params: UnprotectGroupParams) -> str:
        return _("let administrators change the members of %(group)s without a decision") % {
            "group": params.group}

    def check(self, params: UnprotectGroupParams) -> None:
        group_by_name(params.group)

    def apply(self, params: UnprotectGroupParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_update_group

        group = group_by_name(params.group)
        was_protected = group.requires_decision
        do_update_group(group, acting_user=acting_user, requires_decision=False,
                        authorised_by=authorised_by)
        return {"was_protected": was_protected}

    def revert(self, params: UnprotectGroupParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.directory.actions import do_update_group

        if result.get("was_protected"):
            do_update_group(group_by_name(params.group), acting_user=acting_user,
                            requires_decision=True, authorised_by=authorised_by)
