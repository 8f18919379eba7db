"""Reads shared by every app: who may administer, and the audit log."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django_otp import devices_for_user

from chaton.core.errors import NotFound
from chaton.core.models import AuditLog, Job

#: The largest id a database row can have (a bigint): anything above is not found, never an
#: overflow.
MAX_ID = 2**63 - 1


def is_database_id(value: int) -> bool:
    """Given a number from a URL, a body or a command line, return whether it can be a row's id."""
    return 0 < value <= MAX_ID


#: What a name typed by someone can be before it is looked up: no control characters (PostgreSQL
#: refuses a NUL outright: a 500), at most 254 characters.
_LOOKUP_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,254}")


def lookup_text(text: str) -> str | None:
    """Given a name from a URL, a body or a command line, return it without surrounding
    spaces, or None when it cannot name anything (then nothing is asked of the database)."""
    text = text.strip()
    return text if _LOOKUP_TEXT.fullmatch(text) else None


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


def job_by_id(job_id: int) -> Job:
    """Given a job's id, return the job, its creator joined. Raise NotFound."""
    job = (Job.objects.select_related("created_by").filter(pk=job_id).first()
           if is_database_id(job_id) else None)
    if job is None:
        raise NotFound(_("No job has this id."), field="job_id")
    return job
