"""``policy.change``: change the collective's governance rules. Extraordinary; reverted by
putting back the previous values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pydantic
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core.errors import InvalidInput
from chaton.directory.models import Account
from chaton.governance.models import Operation
from chaton.governance.operations import OperationType, StrictParams, register


class ChangePolicyParams(StrictParams):
    voting_delay_days: int | None = pydantic.Field(default=None, ge=0, le=3650)
    proposal_days: int | None = pydantic.Field(default=None, ge=1, le=365)
    counter_vote_window_days: int | None = pydantic.Field(default=None, ge=0, le=365)
    counter_vote_days: int | None = pydantic.Field(default=None, ge=1, le=365)
    reminder_hours: int | None = pydantic.Field(default=None, ge=0, le=24 * 365)
    votes_public: bool | None = None
    classes: dict[str, Literal["ordinary", "extraordinary"]] | None = None

    @classmethod
    def of(cls, changes: Mapping[str, Any]) -> ChangePolicyParams:
        """The params of a direct change of ``changes``."""
        return cls.model_validate(dict(changes))

    def changes(self) -> dict[str, Any]:
        return {name: value for name, value in self.model_dump().items() if value is not None}


@register
class ChangePolicy(OperationType[ChangePolicyParams]):
    type = "policy.change"
    label = gettext_lazy("Change the governance rules")
    Params = ChangePolicyParams

    def describe(self, params: ChangePolicyParams) -> str:
        changes = ", ".join(f"{name} = {value}" for name, value in params.changes().items())
        return _("change the governance rules: %(changes)s") % {"changes": changes}

    def check(self, params: ChangePolicyParams) -> None:
        from chaton.governance import operations

        if not params.changes():
            raise InvalidInput(_("Say which rule changes."), field="policy")
        known = {operation.type for operation in operations.all_types()}
        for type_name in (params.classes or {}):
            if type_name not in known:
                raise InvalidInput(_("Unknown operation “%(type)s”.") % {"type": type_name},
                                   field="classes")

    def apply(self, params: ChangePolicyParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.governance.actions import do_set_policy

        return do_set_policy(params.changes(), acting_user=acting_user,
                             authorised_by=authorised_by)

    def revert(self, params: ChangePolicyParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.governance.actions import do_set_policy

        do_set_policy(result, acting_user=acting_user, authorised_by=authorised_by)
