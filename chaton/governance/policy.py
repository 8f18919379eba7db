"""The collective's governance policy: one row, its defaults from the configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from chaton.governance.models import Kind, Policy

#: The policy fields a decision may change (``policy.change``).
POLICY_FIELDS = ["voting_delay_days", "proposal_days", "counter_vote_window_days",
                 "counter_vote_days", "reminder_hours", "votes_public", "classes"]


def current() -> Policy:
    """Return the policy, creating it with the defaults the first time."""
    policy = Policy.objects.order_by("pk").first()
    if policy is None:
        policy = Policy.objects.create(
            voting_delay_days=settings.CHATON.directory.voting_delay_days)
    return policy


def kind_of(type_name: str, default: Kind, policy: Policy | None = None) -> Kind:
    """Given an operation type and its own default class, return the class the policy gives it."""
    classes: dict[str, Any] = (policy or current()).classes or {}
    chosen = classes.get(type_name)
    return Kind(chosen) if chosen in Kind.values else default
