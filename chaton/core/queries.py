"""Reads shared by every app: who may administer, and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_otp import devices_for_user

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


def passed_second_factor(user: Any) -> bool:
    """Given ``request.user``, return whether this session passed a second factor.

    django-otp's middleware gives the user ``is_verified()``; without it, no.
    """
    is_verified = getattr(user, "is_verified", None)
    return bool(callable(is_verified) and is_verified())


def has_second_factor(account: Any) -> bool:
    """Given an account, return whether it has any confirmed second-factor device."""
    return any(True for _device in devices_for_user(account, confirmed=True))
