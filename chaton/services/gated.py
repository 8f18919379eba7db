"""The typed params of the services' gated changes: what the members decide on.

Each is the ``Params`` of a governance operation (``chaton/governance/operations/``)
and what the gated action hands to :func:`chaton.core.gate.require`: the
services app builds them, governance decides, and the services app never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

from chaton.core.gate import StrictParams
from chaton.members.models import Organization, Person

if TYPE_CHECKING:
    from chaton.directory.models import Group
    from chaton.services.actions import ValidInstance
    from chaton.services.models import Host


class OpenServiceParams(StrictParams):
    application: str
    domain: str
    #: The host's name; none: the default host.
    host: str | None = None
    #: The owner: a partner organization's short name, or a person's email; neither: the
    #: collective.
    organization: str | None = None
    person: str | None = None
    #: Whose members may log in; none: every account of the directory.
    login_group: str | None = None
    #: Some settings of the application (the others take their defaults).
    settings: dict[str, Any] = {}
    #: The instance's short name; none: made from the domain.
    slug: str | None = None

    @pydantic.field_validator("settings", mode="before")
    @classmethod
    def _settings_as_text(cls, value: Any) -> Any:
        """Accept the settings as a JSON object's text or as "name=value" lines — what a
        form, a command line or a proposal link carries — as well as an object."""
        from django import forms

        from chaton.core.forms import object_from_text

        if value is None:
            return {}
        if not isinstance(value, str):
            return value
        try:
            return object_from_text(value)
        except forms.ValidationError as error:
            raise ValueError(" ".join(error.messages)) from None

    @classmethod
    def of(cls, valid: ValidInstance, host: Host, *, owner: Person | Organization | None,
           login_group: Group | None) -> OpenServiceParams:
        """The params of opening the instance that ``validate_create_instance`` returned."""
        return cls(application=valid.manifest.name, domain=valid.domain, host=host.name,
                   organization=owner.slug if isinstance(owner, Organization) else None,
                   person=owner.email if isinstance(owner, Person) else None,
                   login_group=login_group.name if login_group is not None else None,
                   settings=valid.settings, slug=valid.slug or None)


class CloseServiceParams(StrictParams):
    #: The instance's short name.
    instance: str
    #: Remove its data volumes too (otherwise kept on the host).
    delete_data: bool = False
