"""The audit log and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from chaton.core import limits


class AuditLog(models.Model):
    """One row per change: who did what to which object, when, and the values before and after.

    Secrets (password hashes, tokens) never appear in ``before`` or ``after``.
    """

    created_at = models.DateTimeField(_("when"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("who"),
    )
    #: "system", "worker", "cli" …: who acted when no account did.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(_("action"), max_length=80, db_index=True)
    target_type = models.CharField(max_length=80)
    target_id = models.CharField(max_length=80)
    target_label = models.CharField(max_length=255)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]
        verbose_name = _("audit log entry")

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}"
        return f"{when} {self.actor_label} {self.action} {self.target_label}"


def _hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Scope(models.TextChoices):
    """What a token may do; a request needs the scope of its kind."""

    READ = "read", _("read")  # GET requests
    WRITE = "write", _("write")  # any other request, except a vote
    ADMIN = "admin", _("administer")  # the administrators' endpoints (with an admin account)
    VOTE = "vote", _("vote")  # cast the account's own votes: only on a token the owner made


class ApiToken(models.Model):
    """A bearer token for ``/api/v1``; only its SHA-256 is stored.

    ``minted_by_owner`` is true only for a token the account's owner created
    with their own credentials (their password, or a token of theirs that was
    itself minted by them); only such a token may carry the ``vote`` scope.
    """

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="api_tokens")
    name = models.CharField(_("name"), max_length=limits.TOKEN_NAME_MAX_LENGTH)
    key_hash = models.CharField(max_length=64, unique=True)
    #: The :class:`Scope` values this token carries.
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    minted_by_owner = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account} / {self.name}"

    def allows(self, scope: str) -> bool:
        """Return whether this token carries ``scope`` (a vote also needs its owner's minting)."""
        if scope == Scope.VOTE and not self.minted_by_owner:
            return False
        return scope in (self.scopes or [])

    @staticmethod
    def new_key() -> tuple[str, str]:
        """Return a fresh (key, hash) pair; the key is shown once and never stored."""
        key = "chaton_" + secrets.token_urlsafe(32)
        return key, _hash_token(key)

    @classmethod
    def find(cls, key: str) -> ApiToken | None:
        return cls.objects.select_related("account").filter(key_hash=_hash_token(key)).first()


class ThrottleEvent(models.Model):
    """One counted attempt under a throttle: a failed login, a password-reset request …

    :mod:`chaton.core.throttle` counts these rows per ``key`` and deletes them
    once they are too old to matter. Rows rather than a cache counter, so that
    every web worker and thread counts the same attempts. ``key`` is the limit's
    scope and a keyed hash of what is counted (a user name, an address), never
    the typed text itself: people sometimes type their password as user name.
    """

    key = models.CharField(max_length=100)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["key", "at"])]

    def __str__(self) -> str:
        return f"{self.key} {self.at:%Y-%m-%d %H:%M:%S}"


class JobState(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class Job(models.Model):
    """Long work asked for by someone (a repository's initialisation, a backup, an upgrade …).

    Created queued by :func:`chaton.core.jobs.do_start_job`, claimed by exactly one
    thread of one process (``runner``), and finished with its ``result`` (what the
    work's own endpoint would have answered) or its ``error`` (``code``, ``message``,
    ``field``, as the API's errors). Polled at ``GET /api/v1/jobs/{id}``.
    """

    kind = models.CharField(_("kind"), max_length=80)
    params = models.JSONField(default=dict)
    target_label = models.CharField(_("on"), max_length=255)
    #: The object it works on: two jobs with the same key never run at once.
    lock_key = models.CharField(max_length=200)
    state = models.CharField(_("state"), max_length=20, choices=JobState.choices,
                             default=JobState.QUEUED, db_index=True)
    #: Percent done, when the work can tell.
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("asked at"))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: ``host:pid`` of the process running it.
    runner = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("job")

    def __str__(self) -> str:
        return f"{self.kind} {self.target_label} #{self.pk}"

    @property
    def done(self) -> bool:
        return self.state in (JobState.SUCCEEDED, JobState.FAILED)
