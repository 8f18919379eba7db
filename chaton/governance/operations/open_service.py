"""``service.open``: open an instance of a catalogue application at a domain, on a host.

**Ordinary** when the collective (or one of its persons) owns it: hosting a
pad or a paste bin for the members is the daily work the administrators are
trusted with, announced and open to a counter-vote. **Extraordinary** when a
partner organization owns it: the collective then commits its machines, its
volunteers' time and the care of another association's data to a third
party for as long as the service lives — an engagement the members decide.
The policy can change either (``Policy.classes``).

Reverted (a counter-vote cancels the opening) by removing the instance; its
data volumes are kept on the host, reported by the reconciler, since people
may have put something in them meanwhile (removing it performs
``service.close``, which the revert is allowed to).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core.errors import InvalidInput
from chaton.directory.models import Account
from chaton.directory.queries import group_by_name
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, register
from chaton.members.queries import organization_by_slug, person_by_email
from chaton.services.gated import OpenServiceParams


def _arguments(params: OpenServiceParams) -> dict[str, Any]:
    """Given the params, return the keyword arguments of ``do_create_instance`` (checked).

    Raise InvalidInput, NotFound.
    """
    from chaton.services import catalog
    from chaton.services.forms import typed_settings
    from chaton.services.queries import host_or_default

    if params.organization and params.person:
        raise InvalidInput(_("An instance has one owner: an organization or a person."),
                           field="organization")
    try:
        manifest = catalog.get(params.application)
    except KeyError:
        raise InvalidInput(_("There is no application %(name)s in the catalogue.")
                           % {"name": params.application}, field="application") from None
    owner = (organization_by_slug(params.organization) if params.organization
             else person_by_email(params.person) if params.person else None)
    return {
        "host": host_or_default(params.host), "owner": owner,
        "login_group": group_by_name(params.login_group) if params.login_group else None,
        "settings": typed_settings(manifest, params.settings), "slug": params.slug or "",
    }


@register
class OpenService(OperationType[OpenServiceParams]):
    type = "service.open"
    label = gettext_lazy("Open a service (an instance of an application)")
    Params = OpenServiceParams
    reverts_with = ("service.close",)

    def default_kind(self, params: OpenServiceParams) -> Kind:
        return Kind.EXTRAORDINARY if params.organization else Kind.ORDINARY

    def describe(self, params: OpenServiceParams) -> str:
        values = {"application": params.application, "domain": params.domain,
                  "owner": params.organization or params.person or ""}
        if values["owner"]:
            return _("open %(application)s at %(domain)s for %(owner)s") % values
        return _("open %(application)s at %(domain)s") % values

    def check(self, params: OpenServiceParams) -> None:
        from chaton.services.actions import validate_create_instance

        validate_create_instance(params.application, params.domain, **_arguments(params))

    def apply(self, params: OpenServiceParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.services.actions import do_create_instance

        arguments = _arguments(params)
        instance = do_create_instance(params.application, params.domain, acting_user=acting_user,
                                      authorised_by=authorised_by, **arguments)
        return {"instance": instance.slug}

    def revert(self, params: OpenServiceParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.services.actions import do_remove_instance
        from chaton.services.models import DesiredState, Instance

        instance = Instance.objects.filter(slug=result.get("instance") or "").first()
        if instance is None or instance.state == DesiredState.REMOVED:
            return  # already gone: reverting twice changes nothing
        do_remove_instance(instance, confirm=instance.slug, acting_user=acting_user,
                           delete_data=False, authorised_by=authorised_by)
