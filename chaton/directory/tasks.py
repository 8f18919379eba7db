"""Thin entry points that schedule directory work after a commit, or run it from the worker."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from chaton.members.models import Organization


def sync_after_commit(*, account_uids: Iterable[str] = (), group_names: Iterable[str] = (),
                      organization_slugs: Iterable[str] = ()) -> None:
    """Once the current transaction commits, write the touched entries to the directory.

    The directory being down never undoes the change: it is marked pending and
    the worker catches up.
    """
    from chaton.directory import reconcile

    uids, names, slugs = list(account_uids), list(group_names), list(organization_slugs)
    transaction.on_commit(lambda: reconcile.sync_some(
        account_uids=uids, group_names=names, organization_slugs=slugs))


def follow_organization(sender: object, *, organization: Organization,
                        **kwargs: object) -> None:
    """Receiver of ``members.signals.organization_changed``: after the commit, rewrite the
    organization's entry and those of the accounts it owns."""
    sync_after_commit(organization_slugs=[organization.slug],
                      account_uids=organization.accounts.values_list("uid", flat=True))


def follow_memberships(sender: object, **kwargs: object) -> None:
    """Receiver of ``members.signals.memberships_changed``: after the commit, rewrite the
    groups that hold every member (kind "members")."""
    from chaton.directory.models import Group, GroupKind

    sync_after_commit(group_names=Group.objects.filter(kind=GroupKind.MEMBERS)
                      .values_list("name", flat=True))
