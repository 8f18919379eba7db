"""``mail.publish_retired_keys``: publish each retired DKIM private key of a mail domain.

Extraordinary: once published, a key can forge old mail, so no one can prove with a
leaked message what a member wrote. Revocable by another decision (``publish: false``):
keys published until then stay known, later ones are not published. Reverted by writing
the old setting back.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.directory.models import Account
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, register
from chaton.mail.gated import PublishRetiredKeysParams
from chaton.mail.queries import domain_by_name


@register
class PublishRetiredKeys(OperationType[PublishRetiredKeysParams]):
    type = "mail.publish_retired_keys"
    label = gettext_lazy("Publish the retired DKIM keys of a mail domain")
    Params = PublishRetiredKeysParams

    def default_kind(self, params: PublishRetiredKeysParams) -> Kind:
        return Kind.EXTRAORDINARY

    def describe(self, params: PublishRetiredKeysParams) -> str:
        if params.publish:
            return _("publish each retired DKIM private key of %(domain)s") % {
                "domain": params.domain}
        return _("stop publishing the retired DKIM private keys of %(domain)s") % {
            "domain": params.domain}

    def check(self, params: PublishRetiredKeysParams) -> None:
        from chaton.mail.actions import validate_publish_retired_keys

        validate_publish_retired_keys(domain_by_name(params.domain))

    def apply(self, params: PublishRetiredKeysParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.mail.actions import do_set_publish_retired_keys

        domain = domain_by_name(params.domain)
        before = domain.publish_retired_keys
        do_set_publish_retired_keys(domain, params.publish, acting_user=acting_user,
                                    authorised_by=authorised_by)
        return {"publish": before}

    def revert(self, params: PublishRetiredKeysParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.mail.actions import do_set_publish_retired_keys

        do_set_publish_retired_keys(domain_by_name(params.domain), bool(result["publish"]),
                                    acting_user=acting_user, authorised_by=authorised_by)
