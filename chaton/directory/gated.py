"""The typed params of the directory's gated changes: what the members decide on.

Each is the ``Params`` of a governance operation (``chaton/governance/operations/``)
and what the gated action hands to :func:`chaton.core.gate.require`: the
directory builds them, governance decides, and the directory never imports it.
"""

from __future__ import annotations

import datetime as dt

from chaton.core import clock
from chaton.core.gate import StrictParams
from chaton.directory.models import Account, Group, GroupKind
from chaton.members.models import Organization


class CreatePartnerAccountParams(StrictParams):
    organization: str
    uid: str
    display_name: str
    email: str
    expires_on: dt.date | None = None

    @classmethod
    def of(cls, organization: Organization, uid: str, display_name: str, email: str,
           expires_at: dt.datetime | None) -> CreatePartnerAccountParams:
        """The params of an account ``uid`` for ``organization``."""
        return cls(organization=organization.slug, uid=uid, display_name=display_name,
                   email=email, expires_on=clock.last_day(expires_at))


class CreateGroupParams(StrictParams):
    name: str
    description: str = ""
    kind: str = GroupKind.TEAM
    #: Whether its members are added by decision only.
    requires_decision: bool = False


class RenameGroupParams(StrictParams):
    #: The group's name now.
    group: str
    #: Its new name.
    name: str


class DeleteGroupParams(StrictParams):
    group: str


class UnprotectGroupParams(StrictParams):
    group: str


class GrantGroupParams(StrictParams):
    group: str
    account: str
    #: The last day of the access; none: for good.
    expires_on: dt.date | None = None

    @classmethod
    def of(cls, group: Group, account: Account,
           expires_at: dt.datetime | None) -> GrantGroupParams:
        """The params of putting ``account`` in ``group`` until ``expires_at``."""
        return cls(group=group.name, account=account.uid,
                   expires_on=clock.last_day(expires_at))


class RevokeGroupParams(StrictParams):
    group: str
    account: str
