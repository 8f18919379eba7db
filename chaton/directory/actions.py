"""Every write to accounts, groups and SSH keys.

Each ``do_*`` runs in one transaction, takes a keyword-only ``acting_user``,
writes an audit row, and schedules the directory update for after the commit.
"""

from __future__ import annotations

import datetime as dt
from types import EllipsisType
from typing import TYPE_CHECKING

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils.translation import gettext as _

from chaton.core import audit, clock, gate, limits
from chaton.core.errors import Conflict, Forbidden, InvalidInput
from chaton.directory import validation
from chaton.directory.gated import (
    CreateGroupParams,
    CreatePartnerAccountParams,
    DeleteGroupParams,
    GrantGroupParams,
    RenameGroupParams,
    RevokeGroupParams,
    UnprotectGroupParams,
)
from chaton.directory.models import (
    Account,
    AccountState,
    Group,
    GroupKind,
    GroupMembership,
    SSHKey,
)
from chaton.directory.names import RESERVED_UIDS
from chaton.directory.tasks import sync_after_commit
from chaton.members.models import Organization, Person

if TYPE_CHECKING:
    from chaton.core.gate import Authorisation

GROUP_FIELDS = ["name", "description", "kind", "requires_decision"]
ACCOUNT_FIELDS = ["uid", "display_name", "email", "person", "organization", "expires_at",
                  "state", "is_admin"]


def _require_partner_account(organization: Organization, uid: str, display_name: str,
                             email: str, expires_at: dt.datetime | None,
                             authorised_by: Authorisation | None) -> None:
    """Refuse an account for an organization that no adopted decision authorises, when the
    policy makes it extraordinary (the gate)."""
    gate.require(CreatePartnerAccountParams.of(organization, uid, display_name, email,
                                                expires_at), authorised_by)


#: Tries to give a new account a free uid number when others are created at the same time.
UID_NUMBER_ATTEMPTS = 5


def _refuse_past_expiry(expires_at: dt.datetime | None) -> None:
    """Raise InvalidInput (field ``expires_at``) for an expiry that is already past.

    The same rule for accounts and group memberships, through every interface:
    ending an access now is disabling the account or removing the membership,
    never a date in the past.
    """
    if expires_at is not None and expires_at <= clock.now():
        raise InvalidInput(_("The expiry date is already past."), field="expires_at")


def _next_uid_number() -> int:
    from django.conf import settings

    highest = Account.objects.aggregate(highest=Max("uid_number"))["highest"]
    return max(highest + 1 if highest else 0, settings.CHATON.directory.first_uid_number)


def _check_password(password: str, account: Account | None = None) -> None:
    """Raise InvalidInput (field ``password``) for a password that could not be typed again
    (control characters), an overlong one, or one the strength rules refuse."""
    validation.clean_password(password)
    try:
        validate_password(password, account)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), field="password") from None


def _check_email_free(email: str, account: Account | None = None) -> None:
    taken = Account.objects.filter(email=email)
    if account is not None:
        taken = taken.exclude(pk=account.pk)
    if taken.exists():
        raise Conflict(_("The email address %(email)s is already used by another account.")
                       % {"email": email}, field="email")


def validate_create_account(uid: str, *, display_name: str, email: str,
                            password: str | None = None, person: Person | None = None,
                            organization: Organization | None = None,
                            reserved_uid_allowed: bool = False) -> tuple[str, str, str]:
    """The rules of a new account, shared by the action and the operation that creates
    accounts for organizations. Return the uid, display name and email as they will be
    kept. Raise InvalidInput for a bad value, Conflict for a uid or email in use."""
    if not (reserved_uid_allowed and uid in RESERVED_UIDS):
        uid = validation.clean_uid(uid)
    display_name = validation.clean_text(display_name, field="display_name",
                                         max_length=limits.DISPLAY_NAME_MAX_LENGTH)
    email = validation.clean_email(email)
    if person is not None and organization is not None:
        raise InvalidInput(_("An account has one owner: a person or an organization."),
                           field="organization")
    if password:
        _check_password(password)
    if Account.objects.filter(uid=uid).exists():
        raise Conflict(_("The user name %(uid)s is already taken.") % {"uid": uid},
                       field="uid")
    _check_email_free(email)
    return uid, display_name, email


def do_create_account(
    uid: str,
    *,
    acting_user: Account | None,
    display_name: str,
    email: str,
    password: str | None = None,
    person: Person | None = None,
    organization: Organization | None = None,
    expires_at: dt.datetime | None = None,
    is_admin: bool = False,
    reserved_uid_allowed: bool = False,
    authorised_by: Authorisation | None = None,
    password_by_owner: bool = False,
) -> Account:
    """Create an account and project it into the directory.

    ``reserved_uid_allowed`` lets an operator (``chaton init``, ``chaton demo``)
    name an account after a reserved word such as ``admin``; people never can.
    An initial ``password`` is chosen by whoever creates the account, so it is
    marked as set by someone else (``password_set_by_other_at``): it does not
    vote until the owner sets their own from a reset link (see
    :func:`do_set_password`). ``password_by_owner`` says the person typing the
    password is the account's owner: ``chaton init``'s administrator, and the
    invented voters of ``chaton demo``.
    Raise InvalidInput for a bad value, Conflict for a uid or email in use, and
    DecisionRequired when the policy makes accounts for organizations
    extraordinary and no decision authorises this one (``authorised_by``).
    """
    uid, display_name, email = validate_create_account(
        uid, display_name=display_name, email=email, password=password, person=person,
        organization=organization, reserved_uid_allowed=reserved_uid_allowed)
    _refuse_past_expiry(expires_at)
    if organization is not None:
        _require_partner_account(organization, uid, display_name, email, expires_at,
                                 authorised_by)
    with transaction.atomic():
        if Account.objects.filter(uid=uid).exists():
            raise Conflict(_("The user name %(uid)s is already taken.") % {"uid": uid},
                           field="uid")
        _check_email_free(email)
        account = Account(uid=uid, uid_number=0, display_name=display_name,
                          email=email, person=person, organization=organization,
                          expires_at=expires_at, is_admin=is_admin,
                          person_linked_at=clock.now() if person is not None else None)
        account.set_password(password or None)
        if password and not password_by_owner:
            account.password_set_by_other_at = clock.now()
        for attempt in range(UID_NUMBER_ATTEMPTS):
            account.uid_number = _next_uid_number()
            try:
                with transaction.atomic():
                    account.save()
                break
            except IntegrityError:
                # Accounts created at once (PostgreSQL does not serialise them) may pick
                # the same uid number: pick again, unless the name or the email was taken.
                if (Account.objects.filter(uid=uid).exists()
                        or attempt == UID_NUMBER_ATTEMPTS - 1):
                    raise Conflict(_("The user name %(uid)s is already taken.") % {"uid": uid},
                                   field="uid") from None
                _check_email_free(email)
        audit.record("account.create", account, acting_user=acting_user,
                     after=audit.snapshot(account, ACCOUNT_FIELDS))
        sync_after_commit(account_uids=[account.uid], group_names=groups_of(account))
    return account


def do_update_account(
    account: Account,
    *,
    acting_user: Account | None,
    display_name: str | None = None,
    email: str | None = None,
    expires_at: dt.datetime | EllipsisType | None = ...,
    is_admin: bool | None = None,
    owner: Person | Organization | EllipsisType | None = ...,
    authorised_by: Authorisation | None = None,
) -> Account:
    """Change an account's details; fields left out stay as they are (``...`` for expiry).

    Raise InvalidInput for a bad value, a new expiry already past included (an
    unchanged one is kept as it is), Forbidden when an administrator would lock
    themselves out (their own expiry in the past, or their own administrator
    right removed), and
    DecisionRequired when the account is given to an organization while the
    policy makes accounts for organizations extraordinary.
    """
    relinked = (not isinstance(owner, EllipsisType)
                and (owner.pk if isinstance(owner, Person) else None) != account.person_id)
    if relinked:
        _refuse_relink_while_voting(account, owner if isinstance(owner, Person) else None)
    if isinstance(owner, Organization) and owner.pk != account.organization_id:
        _require_partner_account(owner, account.uid, display_name or account.display_name,
                                 email or account.email, None, authorised_by)
    if acting_user is not None and acting_user.pk == account.pk:
        if (not isinstance(expires_at, EllipsisType) and expires_at is not None
                and expires_at <= clock.now()):
            raise Forbidden(_("You cannot make your own account expire now."),
                            field="expires_at")
        if is_admin is False and account.is_admin:
            raise Forbidden(_("You cannot remove your own administrator flag."),
                            field="is_admin")
    before = audit.snapshot(account, ACCOUNT_FIELDS)
    fields = []
    email_known_to_others = False
    if display_name is not None:
        display_name = validation.clean_text(display_name, field="display_name",
                                             max_length=limits.DISPLAY_NAME_MAX_LENGTH)
    if email is not None:
        email = validation.clean_email(email)
    if not isinstance(expires_at, EllipsisType) and expires_at != account.expires_at:
        _refuse_past_expiry(expires_at)
    if display_name is not None:
        account.display_name = display_name
        fields.append("display_name")
    if email is not None:
        changed_email = email != account.email
        account.email = email
        fields.append("email")
        if changed_email and (acting_user is None or acting_user.pk != account.pk
                              or account.password_set_by_other_at is not None):
            # A password reset now reaches whoever reads this mailbox: a password set
            # through it is not the member's own. Changed "by the account" signed in with
            # a password someone else set, it may be that someone else's doing.
            email_known_to_others = True
            account.password_set_by_other_at = clock.now()
            fields.append("password_set_by_other_at")
    if not isinstance(expires_at, EllipsisType):
        account.expires_at = expires_at
        fields.append("expires_at")
    if is_admin is not None:
        account.is_admin = is_admin
        fields.append("is_admin")
    if not isinstance(owner, EllipsisType):
        # One owner at most: setting one clears the other (None: the collective's own).
        account.person = owner if isinstance(owner, Person) else None
        account.organization = owner if isinstance(owner, Organization) else None
        fields += ["person", "organization"]
        if relinked:
            account.person_linked_at = clock.now()
            fields.append("person_linked_at")
    if not fields:
        return account
    with transaction.atomic():
        if "email" in fields:
            _check_email_free(account.email, account)
        account.save(update_fields=fields)
        after = audit.snapshot(account, ACCOUNT_FIELDS)
        if email_known_to_others:
            # Read by queries.email_set_by_other: a reset mailed there is not the owner's.
            after["email_known_to_others"] = True
        audit.record("account.update", account, acting_user=acting_user, before=before,
                     after=after)
        sync_after_commit(account_uids=[account.uid], group_names=groups_of(account))
    return account


class VotedOnOpenBallot(Conflict):
    """An account cannot change person while its person (or the new one) has a vote open."""

    code = "voted_on_open_ballot"


def _refuse_relink_while_voting(account: Account, person: Person | None) -> None:
    """Raise VotedOnOpenBallot when the account's person, or the one it would go to, has
    voted on a ballot still open: the vote must stay the member's own until the close."""
    if gate.persons_voting_now([account.person_id, person.pk if person else None]):
        raise VotedOnOpenBallot(
            _("%(uid)s cannot be given to another person now: a vote of its member is on a "
              "ballot still open. Try again once the vote is closed.")
            % {"uid": account.uid}, field="person_id")


def groups_of(account: Account) -> list[str]:
    """Return the names of the groups whose entry lists ``account``, or may list it.

    Its own group memberships, and every group of kind "members", which holds
    the accounts of the collective's members without anyone adding them.
    """
    return list(Group.objects.filter(Q(memberships__account=account) | Q(kind=GroupKind.MEMBERS))
                .values_list("name", flat=True).distinct())


def do_set_password(account: Account, password: str, *, acting_user: Account | None,
                    known_to_others: bool = False, from_own_mail_link: bool = False) -> None:
    """Set a new password; it binds in the directory as soon as the transaction commits.

    Set by anyone but the account itself (``acting_user``), it is marked
    (``password_set_by_other_at``): a marked password never votes, nor does a
    token made since the mark (see :func:`chaton.governance.actions.do_vote`).
    Changed by the account itself while signed in, the mark stays: the change
    proves only that someone knew the password someone else had set, which that
    someone else does too. ``known_to_others``: the account set it, but through
    a way someone else holds too (a reset link mailed to an address someone
    else gave the account): marked again. ``from_own_mail_link``: the account
    set it from a reset link mailed to an address nobody else set, which only
    its owner reads: the mark is lifted, and the account's tokens that vote and
    were made while it was marked (with a password someone else knew) are
    revoked. The audit row says which (``owned``).
    """
    _check_password(password, account)
    by_self = acting_user is not None and acting_user.pk == account.pk
    proves_owner = by_self and from_own_mail_link and not known_to_others
    with transaction.atomic():
        account.set_password(password)
        marked_since = account.password_set_by_other_at
        if proves_owner:
            account.password_set_by_other_at = None
        elif not by_self or known_to_others:
            # Whoever else knows it could vote with it: only the owner's own password votes.
            account.password_set_by_other_at = clock.now()
        account.save(update_fields=["password", "password_set_by_other_at"])
        audit.record("account.password", account, acting_user=acting_user,
                     after={"owned": account.password_set_by_other_at is None})
        if proves_owner and marked_since is not None:
            _revoke_voting_tokens_made_since(account, marked_since, acting_user=acting_user)
        sync_after_commit(account_uids=[account.uid])


def _revoke_voting_tokens_made_since(account: Account, since: dt.datetime, *,
                                     acting_user: Account | None) -> None:
    """Revoke ``account``'s tokens with the ``vote`` scope made at ``since`` or later: they
    were made with a password someone else knew, and must not vote once the mark is gone."""
    from chaton.core.actions import do_revoke_api_token
    from chaton.core.models import ApiToken, Scope

    for token in ApiToken.objects.filter(account=account, created_at__gte=since).order_by("pk"):
        if token.allows(Scope.VOTE):
            do_revoke_api_token(token, acting_user=acting_user)


def do_set_state(account: Account, state: AccountState, *, acting_user: Account | None) -> None:
    """Disable an account (it leaves the directory) or enable it again.

    Raise Forbidden when the acting user would disable their own account.
    """
    if (acting_user is not None and acting_user.pk == account.pk
            and state == AccountState.DISABLED):
        raise Forbidden(_("You cannot disable your own account."), field="state")
    if account.state == state:
        return
    before = audit.snapshot(account, ["state"])
    with transaction.atomic():
        account.state = state
        account.save(update_fields=["state"])
        audit.record("account.state", account, acting_user=acting_user, before=before,
                     after=audit.snapshot(account, ["state"]))
        sync_after_commit(account_uids=[account.uid], group_names=groups_of(account))


def do_add_ssh_key(account: Account, key: str, *, acting_user: Account | None) -> SSHKey:
    """Add an SSH public key. Raise InvalidInput for a malformed key, Conflict for a duplicate."""
    normalized, fingerprint = validation.parse_ssh_key(key)
    with transaction.atomic():
        if account.ssh_keys.filter(fingerprint=fingerprint).exists():
            raise Conflict(_("This key is already on the account."), field="key")
        ssh_key = SSHKey.objects.create(account=account, key=normalized, fingerprint=fingerprint)
        audit.record("ssh_key.add", account, acting_user=acting_user,
                     after={"fingerprint": fingerprint})
        sync_after_commit(account_uids=[account.uid])
    return ssh_key


def do_remove_ssh_key(ssh_key: SSHKey, *, acting_user: Account | None) -> None:
    account = ssh_key.account
    with transaction.atomic():
        audit.record("ssh_key.remove", account, acting_user=acting_user,
                     before={"fingerprint": ssh_key.fingerprint})
        ssh_key.delete()
        sync_after_commit(account_uids=[account.uid])


def validate_create_group(name: str, *, description: str = "",
                          kind: str = GroupKind.TEAM) -> tuple[str, str]:
    """Given a new group's name, description and kind, return the name and description as
    they will be kept. Raise InvalidInput for a bad value, Conflict for a name in use."""
    name = validation.clean_group_name(name)
    description = validation.clean_text(description, field="description", required=False,
                                        max_length=limits.GROUP_DESCRIPTION_MAX_LENGTH)
    if kind not in GroupKind.values:
        raise InvalidInput(_("Unknown group kind."), field="kind")
    if Group.objects.filter(name=name).exists():
        raise Conflict(_("The group %(name)s already exists.") % {"name": name}, field="name")
    return name, description


def do_create_group(name: str, *, acting_user: Account | None, description: str = "",
                    kind: str = GroupKind.TEAM, requires_decision: bool = False,
                    authorised_by: Authorisation | None = None) -> Group:
    """Create a group. Raise InvalidInput, Conflict (:func:`validate_create_group`), and
    DecisionRequired when a group whose members were added by decision only bore that name
    (``group.create`` is then extraordinary) and ``authorised_by`` is not the operation of
    an adopted decision."""
    name, description = validate_create_group(name, description=description, kind=kind)
    gate.require(CreateGroupParams(name=name, description=description, kind=kind,
                                   requires_decision=requires_decision), authorised_by)
    with transaction.atomic():
        try:
            with transaction.atomic():
                group = Group.objects.create(name=name, description=description, kind=kind,
                                             requires_decision=requires_decision)
        except IntegrityError:
            raise Conflict(_("The group %(name)s already exists.") % {"name": name},
                           field="name") from None
        audit.record("group.create", group, acting_user=acting_user,
                     after=audit.snapshot(group, GROUP_FIELDS))
        sync_after_commit(group_names=[name])
    return group


def do_update_group(group: Group, *, acting_user: Account | None,
                    description: str | None = None, requires_decision: bool | None = None,
                    authorised_by: Authorisation | None = None) -> Group:
    """Change a group's description or whether its members are added by decision only.

    Marking a group is always allowed; clearing the mark takes a decision
    (``group.unprotect``). Raise DecisionRequired without one.
    """
    fields = []
    if description is not None:
        description = validation.clean_text(
            description, field="description", required=False,
            max_length=limits.GROUP_DESCRIPTION_MAX_LENGTH)
        fields.append("description")
    if requires_decision is not None and requires_decision != group.requires_decision:
        if not requires_decision:
            gate.require(UnprotectGroupParams(group=group.name), authorised_by)
        fields.append("requires_decision")
    if not fields:
        return group
    before = audit.snapshot(group, GROUP_FIELDS)
    with transaction.atomic():
        if description is not None:
            group.description = description
        if requires_decision is not None:
            group.requires_decision = requires_decision
        group.save(update_fields=fields)
        audit.record("group.update", group, acting_user=acting_user, before=before,
                     after=audit.snapshot(group, GROUP_FIELDS))
        sync_after_commit(group_names=[group.name])
    return group


def validate_rename_group(group: Group, name: str) -> str:
    """Given a group and its new name, return the name as it will be kept. Raise
    InvalidInput for a bad or unchanged name, Conflict for a name in use."""
    name = validation.clean_group_name(name)
    if name == group.name:
        raise InvalidInput(_("The group is already named %(name)s.") % {"name": name},
                           field="name")
    if Group.objects.filter(name=name).exists():
        raise Conflict(_("The group %(name)s already exists.") % {"name": name}, field="name")
    return name


def do_rename_group(group: Group, name: str, *, acting_user: Account | None,
                    authorised_by: Authorisation | None = None) -> Group:
    """Give a group another name (its LDAP entry moves to the new ``cn``).

    Raise InvalidInput, Conflict (:func:`validate_rename_group`), and
    DecisionRequired when the group's members are added by decision only, or a
    group that was bore the new name (``group.rename`` is then extraordinary),
    and ``authorised_by`` is not the operation of an adopted decision.
    """
    name = validate_rename_group(group, name)
    gate.require(RenameGroupParams(group=group.name, name=name), authorised_by)
    previous = group.name
    with transaction.atomic():
        group.name = name
        try:
            with transaction.atomic():
                group.save(update_fields=["name"])
        except IntegrityError:
            group.name = previous
            raise Conflict(_("The group %(name)s already exists.") % {"name": name},
                           field="name") from None
        audit.record("group.rename", group, acting_user=acting_user, after={
            "from": previous, "to": name, "requires_decision": group.requires_decision})
        sync_after_commit(group_names=[previous, name])
    return group


def do_delete_group(group: Group, *, acting_user: Account | None,
                    authorised_by: Authorisation | None = None) -> None:
    """Delete a group and the accesses it gives.

    Raise DecisionRequired when its members are added by decision only, or it
    holds accesses that an adopted decision granted (``group.delete`` is then
    extraordinary), and ``authorised_by`` is not the operation of an adopted
    decision: nothing a decision made is undone without one.
    """
    gate.require(DeleteGroupParams(group=group.name), authorised_by)
    with transaction.atomic():
        audit.record("group.delete", group, acting_user=acting_user,
                     before=audit.snapshot(group, GROUP_FIELDS))
        name = group.name
        group.delete()
        sync_after_commit(group_names=[name])


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def validate_add_to_group(group: Group, account: Account,
                          expires_at: dt.datetime | None) -> None:
    """The rules of putting ``account`` in ``group`` until ``expires_at``, shared by the
    action and the ``group.grant`` operation. Raise InvalidInput for a past date."""
    _refuse_past_expiry(expires_at)


def do_add_to_group(group: Group, account: Account, *, acting_user: Account | None,
                    expires_at: dt.datetime | None = None,
                    authorised_by: Authorisation | None = None) -> GroupMembership:
    """Put ``account`` in ``group`` until ``expires_at`` (or for good); re-adding sets the date.

    Raise InvalidInput for a past date, DecisionRequired for a group whose
    members are added by decision only, unless ``authorised_by`` is the
    operation of the decision that adopted it.
    """
    validate_add_to_group(group, account, expires_at)
    gate.require(GrantGroupParams.of(group, account, expires_at), authorised_by)
    with transaction.atomic():
        membership, created = GroupMembership.objects.get_or_create(
            group=group, account=account, defaults={"expires_at": expires_at})
        before = None if created else {"expires_at": _iso(membership.expires_at)}
        if not created and membership.expires_at != expires_at:
            membership.expires_at = expires_at
            membership.save(update_fields=["expires_at"])
        audit.record("group.add_member", group, acting_user=acting_user, before=before,
                     after={"account": account.uid, "expires_at": _iso(expires_at)})
        sync_after_commit(group_names=[group.name])
    return membership


def do_remove_from_group(group: Group, account: Account, *, acting_user: Account | None,
                         authorised_by: Authorisation | None = None) -> None:
    """Take ``account`` out of ``group``. Raise DecisionRequired when that is extraordinary
    (a group whose members are added by decision only, an access an adopted decision
    granted, or the policy says so) and ``authorised_by`` is not the operation of an
    adopted decision."""
    gate.require(RevokeGroupParams(group=group.name, account=account.uid), authorised_by)
    with transaction.atomic():
        deleted, _count = GroupMembership.objects.filter(group=group, account=account).delete()
        if deleted:
            audit.record("group.remove_member", group, acting_user=acting_user,
                         before={"account": account.uid})
            sync_after_commit(group_names=[group.name])
