"""The typed params of the members' gated changes: what the members decide on.

Each is the ``Params`` of a governance operation (``chaton/governance/operations/``)
and what the gated action hands to :func:`chaton.core.gate.require`: the
members app builds them, governance decides, and the members app never imports it.
"""

from __future__ import annotations

import datetime as dt

from chaton.core.gate import StrictParams
from chaton.members.models import Membership


class EndMembershipParams(StrictParams):
    #: The email of a person, or the short name of an organization.
    member: str
    ends_on: dt.date


class WaiveVotingDelayParams(StrictParams):
    #: The email of the person.
    person: str

    @classmethod
    def of(cls, membership: Membership) -> WaiveVotingDelayParams:
        """The params of waiving the delay of ``membership`` (a person's)."""
        assert membership.person is not None
        return cls(person=membership.person.email)
