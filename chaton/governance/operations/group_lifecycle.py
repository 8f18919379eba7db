"""``group.create``, ``group.rename``, ``group.delete``: a group's life, under the gate.

A group whose members are added by decision only keeps that protection across
its life: deleting or renaming it is extraordinary, and so is creating (or
renaming another group into) a group under the name of one that was protected
(the audit log remembers it), otherwise deleting and re-creating it would
clear the mark without a decision. Deleting or renaming a group that holds
accesses an adopted decision granted is extraordinary too: nothing a decision
made is undone without one (those accesses are known by the group's name, so a
new name would free them). Otherwise all three are ordinary.

Reverts: a created group is deleted again, a renamed one gets its name back, a
deleted one comes back with its description, mark and members.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydantic
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core import clock
from chaton.directory.gated import CreateGroupParams, DeleteGroupParams, RenameGroupParams
from chaton.directory.models import Account, Group, GroupKind, GroupMembership
from chaton.directory.queries import group_by_name
from chaton.governance.models import Kind, Operation
from chaton.governance.operations import OperationType, register


def _holds_decided_accesses(group: Group) -> bool:
    """Return whether ``group`` holds an access that an adopted decision granted."""
    from chaton.governance.queries import decided_accesses

    decided = decided_accesses(group.name)
    return bool(decided) and group.memberships.filter(account__uid__in=decided).exists()


@register
class CreateGroup(OperationType[CreateGroupParams]):
    type = "group.create"
    label = gettext_lazy("Create a group")
    Params = CreateGroupParams
    reverts_with = ("group.delete",)

    def default_kind(self, params: CreateGroupParams) -> Kind:
        from chaton.directory.queries import was_protected

        return Kind.EXTRAORDINARY if was_protected(params.name) else Kind.ORDINARY

    def describe(self, params: CreateGroupParams) -> str:
        if params.requires_decision:
            return _("create the group %(name)s, its members added by decision only") % {
                "name": params.name}
        return _("create the group %(name)s") % {"name": params.name}

    def check(self, params: CreateGroupParams) -> None:
        from chaton.directory.actions import validate_create_group

        validate_create_group(params.name, description=params.description, kind=params.kind)

    def apply(self, params: CreateGroupParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_create_group

        group = do_create_group(params.name, acting_user=acting_user,
                                description=params.description, kind=params.kind,
                                requires_decision=params.requires_decision,
                                authorised_by=authorised_by)
        return {"group": group.name}

    def revert(self, params: CreateGroupParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.directory.actions import do_delete_group
        from chaton.directory.models import Group

        group = Group.objects.filter(name=result.get("group") or params.name).first()
        if group is not None:
            do_delete_group(group, acting_user=acting_user, authorised_by=authorised_by)


@register
class RenameGroup(OperationType[RenameGroupParams]):
    type = "group.rename"
    label = gettext_lazy("Rename a group")
    Params = RenameGroupParams

    def default_kind(self, params: RenameGroupParams) -> Kind:
        from chaton.directory.queries import was_protected

        group = group_by_name(params.group)
        if (group.requires_decision or was_protected(params.name)
                or _holds_decided_accesses(group)):
            return Kind.EXTRAORDINARY
        return Kind.ORDINARY

    def describe(self, params: RenameGroupParams) -> str:
        return _("rename the group %(group)s to %(name)s") % {"group": params.group,
                                                              "name": params.name}

    def check(self, params: RenameGroupParams) -> None:
        from chaton.directory.actions import validate_rename_group

        validate_rename_group(group_by_name(params.group), params.name)

    def apply(self, params: RenameGroupParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_rename_group

        group = do_rename_group(group_by_name(params.group), params.name,
                                acting_user=acting_user, authorised_by=authorised_by)
        return {"group": group.name, "previous": params.group}

    def revert(self, params: RenameGroupParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.directory.actions import do_rename_group
        from chaton.directory.models import Group

        group = Group.objects.filter(name=result.get("group") or params.name).first()
        if group is not None and group.name != params.group:
            do_rename_group(group, params.group, acting_user=acting_user,
                            authorised_by=authorised_by)


class _Member(pydantic.BaseModel):
    account: str
    expires_on: dt.date | None = None


@register
class DeleteGroup(OperationType[DeleteGroupParams]):
    type = "group.delete"
    label = gettext_lazy("Delete a group")
    Params = DeleteGroupParams
    reverts_with = ("group.create", "group.grant")

    def default_kind(self, params: DeleteGroupParams) -> Kind:
        group = group_by_name(params.group)
        if group.requires_decision or _holds_decided_accesses(group):
            return Kind.EXTRAORDINARY
        return Kind.ORDINARY

    def describe(self, params: DeleteGroupParams) -> str:
        return _("delete the group %(group)s and the accesses it gives") % {
            "group": params.group}

    def check(self, params: DeleteGroupParams) -> None:
        group_by_name(params.group)

    def apply(self, params: DeleteGroupParams, *, acting_user: Account | None,
              authorised_by: Operation) -> dict[str, Any]:
        from chaton.directory.actions import do_delete_group

        group = group_by_name(params.group)
        members = [_Member(account=membership.account.uid,
                           expires_on=clock.last_day(membership.expires_at)).model_dump(
                               mode="json")
                   for membership in GroupMembership.objects.filter(group=group)
                   .select_related("account")]
        result = {"description": group.description, "kind": group.kind,
                  "requires_decision": group.requires_decision, "members": members}
        do_delete_group(group, acting_user=acting_user, authorised_by=authorised_by)
        return result

    def revert(self, params: DeleteGroupParams, result: dict[str, Any], *,
               acting_user: Account | None, authorised_by: Operation) -> None:
        from chaton.directory.actions import do_add_to_group, do_create_group
        from chaton.directory.models import Group

        group = Group.objects.filter(name=params.group).first()
        if group is None:
            group = do_create_group(params.group, acting_user=acting_user,
                                    description=str(result.get("description") or ""),
                                    kind=str(result.get("kind") or GroupKind.TEAM),
                                    requires_decision=bool(result.get("requires_decision")),
                                    authorised_by=authorised_by)
        for raw in result.get("members") or []:
            member = _Member.model_validate(raw)
            if member.expires_on is not None and member.expires_on < clock.today():
                continue  # the access would have ended by now anyway
            account = Account.objects.filter(uid=member.account).first()
            if account is not None:
                do_add_to_group(group, account, acting_user=acting_user,
                                expires_at=clock.end_of_day(member.expires_on),
                                authorised_by=authorised_by)
