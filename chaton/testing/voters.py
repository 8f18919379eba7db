"""Test helpers for votes and memberships (imported by tests only, after Django is set up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaton.directory.models import Account
    from chaton.governance.credentials import Credential
    from chaton.members.models import Membership


def own_session(account: Account) -> Credential:
    """The credential of ``account`` signed in on the web: what a member's own vote carries."""
    from chaton.governance.credentials import Credential

    return Credential.session(account)


def recorded_at_start(membership: Membership) -> Membership:
    """Date ``membership`` as recorded on its first day (a collective that has used Chaton
    since then), so that its voting delay runs from its start. Return it."""
    from chaton.members.models import Membership

    Membership.objects.filter(pk=membership.pk).update(recorded_on=membership.starts_on)
    membership.recorded_on = membership.starts_on
    return membership
