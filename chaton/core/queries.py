"""Reads shared by every app: who may administer, and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from chaton.core.models import AuditLog


def is_administrator(user: Any) -> bool:
    """Given a request's user (an Account or AnonymousUser), return whether they are an admin."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_admin", False))


def audit_actions() -> list[str]:
    """Return the distinct action names in the audit log, sorted."""
    return list(AuditLog.objects.order_by("action").values_list("action", flat=True).distinct())


def audit_entries(action: str = "") -> QuerySet[AuditLog]:
    """Return audit rows newest first, only those of ``action`` when it is given.

    The acting account is not joined: ``actor_label`` already names it, so the
    list costs one query whatever its length.
    """
    entries = AuditLog.objects.order_by("-created_at", "-id")
    if action:
        entries = entries.filter(action=action)
    return entries
