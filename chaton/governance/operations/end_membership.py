"""``membership.end``: end the current membership of a person or an organization on a day.

Ordinary by default (members leave, dues lapse); a collective that wants a vote
for it says so in its policy. Reverted by putting back the previous end.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock
from chaton.core.errors import InvalidInput
from chaton.directory.models import Account
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, register
from chaton.members.gated import EndMembershipParams
from chaton.members.models import Membership
from chaton.members.queries import member_by_name


def _membership(key: str, ends_on: dt.date) -> Membership:
    from chaton.members.queries import open_membership_of

    member = member_by_name(key)
    membership = open_membership_of(member, min(ends_on, clock.today()))
    if membership is None:
        raise InvalidInput(_("%(member)s has no current membership.") % {"member": member},
                           field="member")
    return membership


@register
class EndMembership(OperationType[EndMembershipParams]):
    type = "membership.end"
    label = gettext_lazy("End a membership")
    Params = EndMembershipParams

    def default_kind(self, params: EndMembershipParams) -> Kind:
        return Kind.ORDINARY

    def describe(self, params: EndMembershipParams) -> str:
        return _("end the membership of %(member)s on %(day)s") % {
            "member": params.member, "day": params.ends_on}

    def check(self, params: EndMembershipParams) -> None:
        from chaton.members.actions import validate_end_membership

        validate_end_membership(_membership(params.member, params.ends_on), params.ends_on)

    def apply(self, params: EndMembershipParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.members.actions import do_end_membership

        membership = _membership(params.member, params.ends_on)
        previous = membership.ends_on
        do_end_membership(membership, params.ends_on, acting_user=acting_user,
                          authorised_by=authorised_by)
        return {"membership": membership.pk, "ends_on": str(previous or "")}

    def revert(self, params: EndMembershipParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.members.actions import do_end_membership

        membership = Membership.objects.filter(pk=int(result.get("membership") or 0)).first()
        if membership is None:
            return
        previous = result.get("ends_on") or None
        do_end_membership(membership, dt.date.fromisoformat(previous) if previous else None,
                          acting_user=acting_user, authorised_by=authorised_by)
