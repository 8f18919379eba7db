"""``membership.waive_voting_delay``: let one member vote before their delay has passed.

Extraordinary (it changes the electorate). Reverted by restoring the delay.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock
from chaton.core.errors import InvalidInput
from chaton.directory.models import Account
from chaton.governance.models import Operation
from chaton.governance.operations import OperationType, register
from chaton.members.gated import WaiveVotingDelayParams
from chaton.members.models import Membership
from chaton.members.queries import person_by_email


def _membership(email: str) -> Membership:
    from chaton.members.queries import open_membership_of

    person = person_by_email(email)
    membership = open_membership_of(person, clock.today())
    if membership is None:
        raise InvalidInput(_("%(person)s has no current membership.") % {"person": person},
                           field="person")
    return membership


@register
class WaiveVotingDelay(OperationType[WaiveVotingDelayParams]):
    type = "membership.waive_voting_delay"
    label = gettext_lazy("Let a new member vote at once")
    Params = WaiveVotingDelayParams

    def describe(self, params: WaiveVotingDelayParams) -> str:
        return _("let %(person)s vote without waiting for the voting delay") % {
            "person": params.person}

    def check(self, params: WaiveVotingDelayParams) -> None:
        _membership(params.person)

    def apply(self, params: WaiveVotingDelayParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.members.actions import do_set_voting_delay_waived

        membership = _membership(params.person)
        was_waived = membership.voting_delay_waived
        do_set_voting_delay_waived(membership, True, acting_user=acting_user,
                                   authorised_by=authorised_by)
        return {"membership": membership.pk, "was_waived": was_waived}

    def revert(self, params: WaiveVotingDelayParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.members.actions import do_set_voting_delay_waived

        membership = Membership.objects.filter(pk=int(result.get("membership") or 0)).first()
        if membership is not None and not result.get("was_waived"):
            do_set_voting_delay_waived(membership, False, acting_user=acting_user)
