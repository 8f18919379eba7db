"""Thin entry points that schedule directory work after a commit, or run it from the worker."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction


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
