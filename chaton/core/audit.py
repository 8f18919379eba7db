"""Writing the audit log: every action calls :func:`record` inside its transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.db import models

from chaton.core import clock
from chaton.core.models import AuditLog

if TYPE_CHECKING:
    from chaton.directory.models import Account


#: Who the system acts for, when no person does (``on_behalf_of``).
_on_behalf_of: ContextVar[str | None] = ContextVar("chaton_audit_on_behalf_of", default=None)


@contextmanager
def on_behalf_of(label: str) -> Iterator[None]:
    """Within the block, rows written without an acting user name ``label`` as the actor
    (e.g. "decision #28"), so that every change a decision makes points back to it."""
    token = _on_behalf_of.set(label)
    try:
        yield
    finally:
        _on_behalf_of.reset(token)


def record(
    action: str,
    target: models.Model,
    *,
    acting_user: Account | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditLog:
    """Given an action name and its target, write and return an audit row.

    ``acting_user`` None means the system acted (the worker, an expiry);
    ``actor_label`` then says which part of it.
    """
    changed_before, changed_after = before, after
    if before is not None and after is not None:
        keys = [key for key in after if before.get(key) != after.get(key)]
        changed_before = {key: before.get(key) for key in keys}
        changed_after = {key: after[key] for key in keys}
    return AuditLog.objects.create(
        created_at=clock.now(),
        actor=acting_user,
        actor_label=actor_label or (acting_user.get_username() if acting_user
                                    else _on_behalf_of.get() or "system"),
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_label=str(target)[:255],
        before=changed_before,
        after=changed_after,
    )


def snapshot(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    """Return the JSON-able values of ``fields`` on ``instance``, for before/after."""
    values: dict[str, Any] = {}
    for name in fields:
        value = getattr(instance, name)
        if isinstance(value, models.Model):
            value = str(value)
        elif value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            value = str(value)
        values[name] = value
    return values
