"""``account.create_for_organization``: open an account owned by a partner organization.

Ordinary by default. The account has no password: its holder sets one
through "forgotten password". Reverted by disabling the account (never by
deleting it: what it did meanwhile stays attributed).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock
from chaton.directory.gated import CreatePartnerAccountParams
from chaton.directory.models import Account, AccountState
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, register
from chaton.members.queries import organization_by_slug


@register
class CreatePartnerAccount(OperationType[CreatePartnerAccountParams]):
    type = "account.create_for_organization"
    label = gettext_lazy("Create an account for a partner organization")
    Params = CreatePartnerAccountParams

    def default_kind(self, params: CreatePartnerAccountParams) -> Kind:
        return Kind.ORDINARY

    def describe(self, params: CreatePartnerAccountParams) -> str:
        return _("create the account %(uid)s for %(organization)s") % {
            "uid": params.uid, "organization": params.organization}

    def check(self, params: CreatePartnerAccountParams) -> None:
        from chaton.directory.actions import validate_create_account

        validate_create_account(params.uid, display_name=params.display_name,
                                email=params.email,
                                organization=organization_by_slug(params.organization))

    def apply(self, params: CreatePartnerAccountParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_create_account

        account = do_create_account(
            params.uid, acting_user=acting_user, display_name=params.display_name,
            email=params.email, organization=organization_by_slug(params.organization),
            expires_at=clock.end_of_day(params.expires_on), authorised_by=authorised_by)
        return {"account": account.uid}

    def revert(self, params: CreatePartnerAccountParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.directory.actions import do_set_state

        account = Account.objects.filter(uid=result.get("account")).first()
        if account is not None and account.state != AccountState.DISABLED:
            do_set_state(account, AccountState.DISABLED, acting_user=acting_user)
