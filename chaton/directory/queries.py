"""Reads about accounts and groups, shaped so that a list costs a fixed number of queries."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.core.queries import is_database_id
from chaton.directory.models import Account, AccountState, Group, GroupMembership, SSHKey
from chaton.directory.names import GROUP_PATTERN, UID_PATTERN


def search_accounts(text: str = "", state: str = "") -> QuerySet[Account]:
    """Return accounts whose uid, display name or email contains ``text``, owners joined.

    ``state`` (``active`` or ``disabled``) keeps only those; each row carries
    ``group_count``, the number of groups it is in.
    """
    accounts = Account.objects.select_related("person", "organization").annotate(
        group_count=Count("group_memberships"))
    if text.strip():
        words = text.strip()
        accounts = accounts.filter(Q(uid__icontains=words) | Q(display_name__icontains=words)
                                   | Q(email__icontains=words))
    if state in AccountState.values:
        accounts = accounts.filter(state=state)
    return accounts.order_by("uid")


# -- lookups by natural key ----------------------------------------------------------------
#
# Every interface (pages, API, CLI, governance operations) finds an account or a group through
# these: one message per thing, NotFound for the pages' 404, the API's ``not_found`` and the
# CLI's one line. A key that cannot be a name is not found without a query (PostgreSQL refuses
# a NUL outright). Keys are compared as given, never trimmed: " moss" is not "moss".


def account_by_uid(uid: str, *, field: str = "uid") -> Account:
    """Given a uid, return its account with its owner joined.

    Raise NotFound (``field`` names the input) for an unknown uid, and for a
    string that cannot be a uid at all, without asking the database.
    """
    account = (Account.objects.select_related("person", "organization").filter(uid=uid).first()
               if UID_PATTERN.fullmatch(uid) else None)
    if account is None:
        raise NotFound(_("No account has the user name “%(uid)s”.") % {"uid": uid[:64]},
                       field=field)
    return account


def group_by_name(name: str, *, field: str = "group") -> Group:
    """Given a group's name, return the group.

    Raise NotFound (``field`` names the input) for an unknown name, and for a
    string that cannot be a group name, without asking the database.
    """
    group = Group.objects.filter(name=name).first() if GROUP_PATTERN.fullmatch(name) else None
    if group is None:
        raise NotFound(_("No group is named %(name)s.") % {"name": name[:64]}, field=field)
    return group


def ssh_key_by_id(account: Account, key_id: int, *, field: str = "key_id") -> SSHKey:
    """Given an account and the id of one of its SSH keys, return the key (account set).

    Raise NotFound for an id that is not one of this account's keys (another
    account's key is not found either).
    """
    ssh_key = account.ssh_keys.filter(pk=key_id).first() if is_database_id(key_id) else None
    if ssh_key is None:
        raise NotFound(_("This account has no SSH key with this id."), field=field)
    ssh_key.account = account
    return ssh_key


def account_for_recovery(text: str) -> Account | None:
    """Given what someone typed on the forgotten-password page, return the account it names.

    Text with an ``@`` is an email (compared without case), other text a user
    name. Return None when nothing matches, or when emails differing only in
    case leave it ambiguous.
    """
    text = text.strip()
    if not text:
        return None
    if "@" in text:
        exact = Account.objects.filter(email=text).first()
        if exact is not None:
            return exact
        matches = list(Account.objects.filter(email__iexact=text)[:2])
        return matches[0] if len(matches) == 1 else None
    return Account.objects.filter(uid=text.lower()).first()


def group_memberships_of(account: Account) -> QuerySet[GroupMembership]:
    """Return an account's group memberships, group joined, by group name."""
    return account.group_memberships.select_related("group").order_by("group__name")


def groups_with_counts(at: dt.datetime) -> QuerySet[Group]:
    """Return every group with ``member_count`` (all rows) and ``valid_count`` (granting at ``at``).

    A membership is valid when neither it nor its account has expired and the
    account is active: the members the directory lists.
    """
    valid = (Q(memberships__expires_at__isnull=True) | Q(memberships__expires_at__gt=at)) & Q(
        memberships__account__state=AccountState.ACTIVE) & (
        Q(memberships__account__expires_at__isnull=True)
        | Q(memberships__account__expires_at__gt=at))
    return Group.objects.annotate(
        member_count=Count("memberships", distinct=True),
        valid_count=Count("memberships", filter=valid, distinct=True),
    ).order_by("name")


def group_members(group: Group) -> QuerySet[GroupMembership]:
    """Return a group's memberships, account joined, by uid."""
    return group.memberships.select_related("account").order_by("account__uid")


def accounts_outside(group: Group) -> QuerySet[Account]:
    """Return the uids and names of accounts not in ``group`` (to suggest when adding one)."""
    return Account.objects.exclude(group_memberships__group=group).only(
        "uid", "display_name").order_by("uid")


def was_protected(name: str) -> bool:
    """Return whether the last group that bore ``name`` before it was deleted or renamed had
    its members added by decision only (the audit log keeps it): a group created or renamed
    under that name again needs a decision too, or deleting and re-creating would clear the
    mark without one."""
    from chaton.core.models import AuditLog

    last = (AuditLog.objects.filter(Q(action="group.delete", before__name=name)
                                    | Q(action="group.rename", after__from=name))
            .order_by("-created_at", "-id").values_list("before", "after").first())
    if last is None:
        return False
    before, after = last
    return bool((before or {}).get("requires_decision") or (after or {}).get("requires_decision"))


def email_set_by_other(account: Account) -> bool:
    """Return whether ``account``'s present email address was set by someone else: changed
    by another account (or the command line), or by the account signed in with a password
    someone else set (the audit log keeps it). A password reset mailed there reaches them,
    so the password it sets is not only the account's own.

    The address the account was created with is the member's, as the collective recorded
    it when they joined: an address put back to it is the member's again.
    """
    from chaton.core.models import AuditLog

    rows = AuditLog.objects.filter(target_type="directory.account", target_id=str(account.pk))
    changes = (rows.filter(action="account.update", after__has_key="email")
               .order_by("-created_at", "-id").values_list("actor_id", "before", "after"))
    for actor_id, before, after in changes.iterator():
        # Every update's snapshot holds the address: only one that changed it counts.
        if (before or {}).get("email") == (after or {}).get("email"):
            continue
        if actor_id == account.pk and not (after or {}).get("email_known_to_others"):
            return False
        created = (rows.filter(action="account.create").values_list("after", flat=True)
                   .first())
        return (created or {}).get("email") != account.email
    return False
