"""``/api/v1`` for accounts, SSH keys, groups and the directory reconcile.

Every endpoint here is for administrators, except the ``/me`` family, which
any active account's token may use on its own account. Writes go through
:mod:`chaton.directory.actions`, reads through :mod:`chaton.directory.queries`.
No response ever carries a password or its hash.
"""


import datetime as dt
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from pydantic import StrictBool

from chaton.core import clock, limits
from chaton.core.api import (
    ERRORS,
    DateTimeIn,
    ErrorOut,
    InputSchema,
    Page,
    account_token,
    acting_account,
    clean_search,
    request_token,
)
from chaton.core.errors import Forbidden, InvalidInput, NotFound
from chaton.directory import actions, queries, reconcile
from chaton.directory.backend import get_directory
from chaton.directory.models import Account, AccountState, Group, GroupKind, SSHKey
from chaton.members.queries import organization_by_id, person_by_id

router = Router(tags=["accounts"])
groups_router = Router(tags=["groups"])
directory_router = Router(tags=["directory"])
me_router = Router(tags=["me"], auth=account_token)


# --- lookups --------------------------------------------------------------------------------


def _owner(person_id: int | None, organization_id: int | None) -> dict[str, Any]:
    """Return the owner keyword arguments of an account. Raise NotFound for an unknown id."""
    owner: dict[str, Any] = {}
    if person_id is not None:
        owner["person"] = person_by_id(person_id)
    if organization_id is not None:
        owner["organization"] = organization_by_id(organization_id)
    return owner


# --- schemas --------------------------------------------------------------------------------


class AccountOut(Schema):
    uid: str
    uid_number: int
    display_name: str
    email: str
    person_id: int | None
    organization_id: int | None
    expires_at: dt.datetime | None
    state: str = Field(..., description="active or disabled")
    is_admin: bool
    in_directory: bool = Field(..., description="Active and not expired: present in LDAP.")
    created_at: dt.datetime

    @staticmethod
    def resolve_in_directory(account: Account) -> bool:
        return account.is_in_directory()


class AccountGroupOut(Schema):
    name: str
    expires_at: dt.datetime | None


class AccountDetailOut(AccountOut):
    groups: list[AccountGroupOut]

    @staticmethod
    def resolve_groups(account: Account) -> list[dict[str, Any]]:
        return [{"name": membership.group.name, "expires_at": membership.expires_at}
                for membership in queries.group_memberships_of(account)]


#: Said once in the schema for every text field: what the server refuses besides the length.
_KEPT_AS_SENT = "Kept as sent: spaces at the start or the end are refused, never trimmed."


class AccountIn(InputSchema):
    uid: str = Field(..., min_length=limits.UID_MIN_LENGTH, max_length=limits.UID_MAX_LENGTH,
                     description="Lower-case letters, digits, '.', '_' or '-', a letter first.")
    display_name: str = Field(..., max_length=limits.DISPLAY_NAME_MAX_LENGTH,
                              description=_KEPT_AS_SENT)
    email: str = Field(..., max_length=limits.EMAIL_MAX_LENGTH, description=_KEPT_AS_SENT)
    password: str | None = Field(None, max_length=limits.PASSWORD_MAX_LENGTH,
                                 description="No control characters.")
    person_id: int | None = None
    organization_id: int | None = None
    expires_at: DateTimeIn | None = None
    is_admin: bool = False


class AccountPatch(InputSchema):
    """Only the fields sent change; ``"expires_at": null`` removes the expiry."""

    display_name: str | None = Field(None, max_length=limits.DISPLAY_NAME_MAX_LENGTH,
                                     description=_KEPT_AS_SENT)
    email: str | None = Field(None, max_length=limits.EMAIL_MAX_LENGTH,
                              description=_KEPT_AS_SENT)
    expires_at: DateTimeIn | None = Field(None, description="A new expiry must be in the future.")
    is_admin: bool | None = None
    #: Send one of them to change the owner; both null: the collective's own account.
    person_id: int | None = None
    organization_id: int | None = None


class MePatch(InputSchema):
    display_name: str | None = Field(None, max_length=limits.DISPLAY_NAME_MAX_LENGTH,
                                     description=_KEPT_AS_SENT)
    email: str | None = Field(None, max_length=limits.EMAIL_MAX_LENGTH,
                              description=_KEPT_AS_SENT)


class PasswordIn(InputSchema):
    password: str = Field(..., max_length=limits.PASSWORD_MAX_LENGTH,
                          description="No control characters.")


class MyPasswordIn(InputSchema):
    current_password: str = Field(..., max_length=limits.PASSWORD_MAX_LENGTH)
    password: str = Field(..., max_length=limits.PASSWORD_MAX_LENGTH,
                          description="No control characters.")


class SSHKeyOut(Schema):
    id: int
    key: str
    fingerprint: str
    added_at: dt.datetime


class SSHKeyIn(InputSchema):
    key: str = Field(..., max_length=limits.SSH_KEY_MAX_LENGTH,
                     description="One authorized_keys line: “ssh-ed25519 AAAA… name@host”.")


class GroupOut(Schema):
    name: str
    description: str
    kind: str = Field(..., description="team, members or service")
    member_count: int = Field(..., description="Every membership, expired ones included.")
    valid_count: int = Field(..., description="Members the directory lists now.")
    created_at: dt.datetime


class GroupIn(InputSchema):
    name: str = Field(..., min_length=limits.GROUP_NAME_MIN_LENGTH,
                      max_length=limits.GROUP_NAME_MAX_LENGTH,
                      description="Lower-case letters, digits, '_' or '-', a letter first.")
    description: str = Field("", max_length=limits.GROUP_DESCRIPTION_MAX_LENGTH,
                             description=_KEPT_AS_SENT)
    kind: str = Field(GroupKind.TEAM, max_length=20)


class GroupPatch(InputSchema):
    name: str | None = Field(None, max_length=limits.GROUP_NAME_MAX_LENGTH, description=(
        "A new name. Renaming a group whose members are added by decision only, or into "
        "the name of one that was, needs a decision (``decision_required``)."))
    description: str | None = Field(None, max_length=limits.GROUP_DESCRIPTION_MAX_LENGTH,
                                    description=_KEPT_AS_SENT)
    requires_decision: StrictBool | None = Field(None, description=(
        "Members added by decision only. Setting it is always allowed; clearing it needs a "
        "decision (``decision_required``)."))


class GroupMemberOut(Schema):
    uid: str
    display_name: str
    expires_at: dt.datetime | None
    added_at: dt.datetime

    @staticmethod
    def resolve_uid(membership: Any) -> str:
        return str(membership.account.uid)

    @staticmethod
    def resolve_display_name(membership: Any) -> str:
        return str(membership.account.display_name)


class GroupMemberIn(InputSchema):
    uid: str = Field(..., max_length=limits.UID_MAX_LENGTH)
    expires_at: DateTimeIn | None = Field(None, description="Leave out for good.")


class PlanOut(Schema):
    lines: list[str] = Field(..., description="+ add, ~ modify, - delete, ? foreign (kept)")
    counts: dict[str, int]
    is_noop: bool


class SyncIn(InputSchema):
    dry_run: StrictBool = False
    delete_foreign: StrictBool = Field(False,
                                       description="Also delete entries Chaton did not write.")


class SyncOut(PlanOut):
    applied: int
    failures: list[str]


# --- accounts -------------------------------------------------------------------------------


def _group_out(group: Group) -> Group:
    """Return ``group`` again with its member counts, as the list shows it."""
    return queries.groups_with_counts(clock.now()).get(pk=group.pk)


@router.get("/accounts", response={200: list[AccountOut], **ERRORS}, summary="List accounts")
@paginate(Page)
def list_accounts(request: HttpRequest, q: str = "", state: str = "") -> Any:
    """Accounts by uid; ``?q=`` searches uid, display name and email, ``?state=`` filters."""
    if state and state not in AccountState.values:
        raise InvalidInput(_("Unknown account state."), field="state")
    return queries.search_accounts(clean_search(q), state)


@router.post("/accounts", response={201: AccountDetailOut, **ERRORS},
             summary="Create an account")
def create_account(request: HttpRequest, payload: AccountIn) -> tuple[int, Account]:
    account = actions.do_create_account(
        payload.uid, acting_user=acting_account(request), display_name=payload.display_name,
        email=payload.email, password=payload.password, expires_at=payload.expires_at,
        is_admin=payload.is_admin, **_owner(payload.person_id, payload.organization_id))
    return 201, account


@router.get("/accounts/{uid}", response={200: AccountDetailOut, **ERRORS},
            summary="Get an account")
def get_account(request: HttpRequest, uid: str) -> Account:
    return queries.account_by_uid(uid)


@router.patch("/accounts/{uid}", response={200: AccountDetailOut, **ERRORS},
              summary="Change an account")
def update_account(request: HttpRequest, uid: str, payload: AccountPatch) -> Account:
    account = queries.account_by_uid(uid)
    sent = payload.model_fields_set
    expiry: Any = payload.expires_at if "expires_at" in sent else ...
    owner: Any = ...
    if {"person_id", "organization_id"} & sent:
        if payload.person_id is not None and payload.organization_id is not None:
            raise InvalidInput(_("An account has one owner: a person or an organization."),
                               field="organization_id")
        found = _owner(payload.person_id, payload.organization_id)
        owner = found.get("person") or found.get("organization")
    return actions.do_update_account(
        account, acting_user=acting_account(request), display_name=payload.display_name,
        email=payload.email, expires_at=expiry, is_admin=payload.is_admin, owner=owner)


@router.post("/accounts/{uid}/disable", response={200: AccountDetailOut, **ERRORS},
             summary="Disable an account (it leaves the directory)")
def disable_account(request: HttpRequest, uid: str) -> Account:
    account = queries.account_by_uid(uid)
    actions.do_set_state(account, AccountState.DISABLED, acting_user=acting_account(request))
    return account


@router.post("/accounts/{uid}/enable", response={200: AccountDetailOut, **ERRORS},
             summary="Enable an account again")
def enable_account(request: HttpRequest, uid: str) -> Account:
    account = queries.account_by_uid(uid)
    actions.do_set_state(account, AccountState.ACTIVE, acting_user=acting_account(request))
    return account


@router.post("/accounts/{uid}/password", response={204: None, **ERRORS},
             summary="Set an account's password")
def set_password(request: HttpRequest, uid: str, payload: PasswordIn) -> tuple[int, None]:
    actions.do_set_password(queries.account_by_uid(uid), payload.password,
                            acting_user=acting_account(request))
    return 204, None


@router.get("/accounts/{uid}/ssh-keys", response={200: list[SSHKeyOut], **ERRORS},
            summary="List an account's SSH keys")
def list_ssh_keys(request: HttpRequest, uid: str) -> Any:
    return list(queries.account_by_uid(uid).ssh_keys.order_by("added_at", "id"))


@router.post("/accounts/{uid}/ssh-keys", response={201: SSHKeyOut, **ERRORS},
             summary="Add an SSH key to an account")
def add_ssh_key(request: HttpRequest, uid: str, payload: SSHKeyIn) -> tuple[int, SSHKey]:
    return 201, actions.do_add_ssh_key(queries.account_by_uid(uid), payload.key,
                                       acting_user=acting_account(request))


@router.delete("/accounts/{uid}/ssh-keys/{key_id}", response={204: None, **ERRORS},
               summary="Remove an SSH key from an account")
def remove_ssh_key(request: HttpRequest, uid: str, key_id: int) -> tuple[int, None]:
    ssh_key = queries.ssh_key_by_id(queries.account_by_uid(uid), key_id)
    actions.do_remove_ssh_key(ssh_key, acting_user=acting_account(request))
    return 204, None


# --- me: what any account may do on itself --------------------------------------------------


def _me_actor(request: HttpRequest) -> Account | None:
    """Who changes the account through ``/me``: the account itself with a token it made, or
    else whoever made the token (None: the command line). A token an administrator made
    for someone changes their email address or password as that administrator, so that
    neither becomes the member's own (see ``Account.password_set_by_other_at``)."""
    token = request_token(request)
    return acting_account(request) if token.minted_by_owner else token.created_by


@me_router.get("/me", response={200: AccountDetailOut, **ERRORS}, summary="My account")
def get_me(request: HttpRequest) -> Account:
    return acting_account(request)


@me_router.patch("/me", response={200: AccountDetailOut, **ERRORS},
                 summary="Change my display name or email")
def update_me(request: HttpRequest, payload: MePatch) -> Account:
    account = acting_account(request)
    return actions.do_update_account(account, acting_user=_me_actor(request),
                                     display_name=payload.display_name, email=payload.email)


@me_router.post("/me/password", response={204: None, **ERRORS}, summary="Change my password")
def change_my_password(request: HttpRequest, payload: MyPasswordIn) -> tuple[int, None]:
    """Change the password; the current one is asked, so a leaked token cannot take it over."""
    account = acting_account(request)
    if not account.check_password(payload.current_password):
        raise Forbidden(_("The current password is wrong."), field="current_password")
    actions.do_set_password(account, payload.password, acting_user=_me_actor(request))
    return 204, None


@me_router.get("/me/ssh-keys", response={200: list[SSHKeyOut], **ERRORS},
               summary="My SSH keys")
def list_my_ssh_keys(request: HttpRequest) -> Any:
    return list(acting_account(request).ssh_keys.order_by("added_at", "id"))


@me_router.post("/me/ssh-keys", response={201: SSHKeyOut, **ERRORS}, summary="Add an SSH key")
def add_my_ssh_key(request: HttpRequest, payload: SSHKeyIn) -> tuple[int, SSHKey]:
    account = acting_account(request)
    return 201, actions.do_add_ssh_key(account, payload.key, acting_user=account)


@me_router.delete("/me/ssh-keys/{key_id}", response={204: None, **ERRORS},
                  summary="Remove one of my SSH keys")
def remove_my_ssh_key(request: HttpRequest, key_id: int) -> tuple[int, None]:
    account = acting_account(request)
    actions.do_remove_ssh_key(queries.ssh_key_by_id(account, key_id), acting_user=account)
    return 204, None


# --- groups ---------------------------------------------------------------------------------


@groups_router.get("/groups", response={200: list[GroupOut], **ERRORS}, summary="List groups")
@paginate(Page)
def list_groups(request: HttpRequest, q: str = "") -> Any:
    groups = queries.groups_with_counts(clock.now())
    text = clean_search(q)
    if text:
        groups = groups.filter(name__icontains=text)
    return groups


@groups_router.post("/groups", response={201: GroupOut, **ERRORS}, summary="Create a group")
def create_group(request: HttpRequest, payload: GroupIn) -> tuple[int, Group]:
    group = actions.do_create_group(payload.name, acting_user=acting_account(request),
                                    description=payload.description, kind=payload.kind)
    return 201, _group_out(group)


@groups_router.get("/groups/{name}", response={200: GroupOut, **ERRORS}, summary="Get a group")
def get_group(request: HttpRequest, name: str) -> Group:
    return _group_out(queries.group_by_name(name, field="name"))


@groups_router.patch("/groups/{name}", response={200: GroupOut, **ERRORS},
                     summary="Rename a group, change its description or its protection")
def update_group(request: HttpRequest, name: str, payload: GroupPatch) -> Group:
    """All the changes, or none: a refused one (a rename or unprotection that needs a
    decision) leaves the group as it was."""
    group = queries.group_by_name(name, field="name")
    account = acting_account(request)
    with transaction.atomic():
        if payload.name is not None and payload.name != group.name:
            group = actions.do_rename_group(group, payload.name, acting_user=account)
        group = actions.do_update_group(group, acting_user=account,
                                        description=payload.description,
                                        requires_decision=payload.requires_decision)
    return _group_out(group)


@groups_router.delete("/groups/{name}", response={204: None, **ERRORS},
                      summary="Delete a group (a protected one: by decision only)")
def delete_group(request: HttpRequest, name: str) -> tuple[int, None]:
    actions.do_delete_group(queries.group_by_name(name, field="name"),
                            acting_user=acting_account(request))
    return 204, None


@groups_router.get("/groups/{name}/members", response={200: list[GroupMemberOut], **ERRORS},
                   summary="List a group's members, expired ones included")
@paginate(Page)
def list_group_members(request: HttpRequest, name: str) -> Any:
    return queries.group_members(queries.group_by_name(name, field="name"))


@groups_router.post("/groups/{name}/members", response={201: GroupMemberOut, **ERRORS},
                    summary="Add an account to a group, until a date or for good")
def add_group_member(request: HttpRequest, name: str,
                     payload: GroupMemberIn) -> tuple[int, Any]:
    """Adding an account already in the group sets its expiry date instead."""
    membership = actions.do_add_to_group(queries.group_by_name(name, field="name"),
                                         queries.account_by_uid(payload.uid),
                                         acting_user=acting_account(request),
                                         expires_at=payload.expires_at)
    return 201, membership


@groups_router.delete("/groups/{name}/members/{uid}", response={204: None, **ERRORS},
                      summary="Remove an account from a group")
def remove_group_member(request: HttpRequest, name: str, uid: str) -> tuple[int, None]:
    group, account = queries.group_by_name(name, field="name"), queries.account_by_uid(uid)
    if not group.memberships.filter(account=account).exists():
        raise NotFound(_("%(uid)s is not in the group %(name)s.")
                       % {"uid": account.uid, "name": group.name}, field="uid")
    actions.do_remove_from_group(group, account, acting_user=acting_account(request))
    return 204, None


# --- directory reconcile --------------------------------------------------------------------


@directory_router.get("/directory/plan", response={200: PlanOut, **ERRORS, 503: ErrorOut},
                      summary="What a sync would change in the directory (dry run)")
def directory_plan(request: HttpRequest) -> dict[str, Any]:
    """Read the directory and return the plan, changing nothing. 503 if it cannot be read."""
    plan = reconcile.plan_all(get_directory())
    return {"lines": plan.lines(), "counts": plan.counts(), "is_noop": plan.is_noop}


@directory_router.post("/directory/sync", response={200: SyncOut, **ERRORS, 503: ErrorOut},
                       summary="Bring the directory to the desired state now")
def directory_sync(request: HttpRequest, payload: SyncIn | None = None) -> dict[str, Any]:
    """Plan and apply (or only plan, with ``dry_run``). 503 if the directory is unreachable."""
    options = payload or SyncIn(dry_run=False, delete_foreign=False)
    plan, outcome = reconcile.sync_all(dry_run=options.dry_run,
                                       delete_foreign=options.delete_foreign)
    return {"lines": plan.lines(), "counts": plan.counts(), "is_noop": plan.is_noop,
            "applied": outcome.applied if outcome else 0,
            "failures": [f"{change.kind} {change.dn}: {error}"
                         for change, error in (outcome.failures if outcome else [])]}
