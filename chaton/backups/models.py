"""Backups: restic repositories, plans and their data sources, runs, and restore drills.

A :class:`Plan` says what to back up (its :class:`Source` rows), where (its
:class:`Repository`), how often and how long to keep it. Every backup,
retention pass, check and restore is a :class:`Run`, with one
:class:`SourceResult` per data source (snapshot id, sizes, fingerprint). A
:class:`Drill` is the evidence that one snapshot was restored into a scratch
place and matched what was backed up.

Secrets (repository passwords, S3 keys, database passwords in a source's
parameters) are stored encrypted with :mod:`chaton.core.secrets`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from chaton.adapters.restic import KeepPolicy
from chaton.backups import sources
from chaton.core import secrets


class RepositoryKind(models.TextChoices):
    LOCAL = "local", _("local directory")
    SFTP = "sftp", _("SFTP (another machine)")
    S3 = "s3", _("S3-compatible storage")


class Repository(models.Model):
    """A restic repository; its password never leaves the database unencrypted."""

    name = models.SlugField(_("name"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=RepositoryKind.choices)
    #: A path (local), ``sftp:user@host:/path`` or ``s3:https://host/bucket``.
    location = models.CharField(_("location"), max_length=500)
    password_encrypted = models.TextField()
    #: A JSON object of extra variables for restic (S3 keys …), encrypted; empty: none.
    environment_encrypted = models.TextField(blank=True, default="")
    #: The worker checks the repository every this many days; 0: never.
    check_interval_days = models.PositiveIntegerField(_("check every (days)"), default=7)
    #: What part of the data a check reads back (``restic check --read-data-subset``).
    check_read_data_subset = models.CharField(_("data read by a check"), max_length=20,
                                              default="5%")
    initialised_at = models.DateTimeField(_("initialised"), null=True, blank=True)
    checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    #: None until checked; the outcome of the last check.
    check_ok = models.BooleanField(_("last check passed"), null=True, blank=True)
    check_message = models.TextField(_("last check"), blank=True, default="")
    #: The part the next rotating check reads, from 0 (see :mod:`chaton.backups.checks`):
    #: ``--read-data-subset n/t`` with n = this + 1, so that t checks read every pack.
    check_cycle_position = models.PositiveIntegerField(default=0)
    #: When the first part of the cycle under way was read; None before it.
    check_cycle_started_at = models.DateTimeField(null=True, blank=True)
    #: When a check last finished having read every pack: a check of all the data, or the
    #: last part of a cycle whose every part passed.
    last_full_read_at = models.DateTimeField(_("last full read"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("repository")
        verbose_name_plural = _("repositories")

    def __str__(self) -> str:
        return self.name

    def password(self) -> str:
        """Return the repository's password in clear. Raise SecretError for another key."""
        return secrets.decrypt(self.password_encrypted)

    def environment(self) -> dict[str, str]:
        """Return the extra variables for restic in clear (empty when there are none)."""
        if not self.environment_encrypted:
            return {}
        values = json.loads(secrets.decrypt(self.environment_encrypted))
        return {str(name): str(value) for name, value in values.items()}

    @property
    def environment_names(self) -> list[str]:
        """The names of the extra variables (their values stay secret)."""
        return sorted(self.environment())


class Plan(models.Model):
    """What to back up into which repository, how often, and how long to keep it."""

    name = models.SlugField(_("name"), max_length=64, unique=True)
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="plans",
                                   verbose_name=_("repository"))
    enabled = models.BooleanField(_("enabled"), default=True)
    #: The worker starts a backup when the last one is this old.
    interval_minutes = models.PositiveIntegerField(_("back up every (minutes)"), default=24 * 60)
    keep_last = models.PositiveIntegerField(_("keep the last"), default=0)
    keep_daily = models.PositiveIntegerField(_("daily snapshots kept"), default=7)
    keep_weekly = models.PositiveIntegerField(_("weekly snapshots kept"), default=4)
    keep_monthly = models.PositiveIntegerField(_("monthly snapshots kept"), default=6)
    keep_yearly = models.PositiveIntegerField(_("yearly snapshots kept"), default=0)
    #: Flagged stale when its last good backup is older than this.
    stale_after_hours = models.PositiveIntegerField(_("stale after (hours)"), default=36)
    #: The worker drills a restore every this many days; 0: never.
    drill_interval_days = models.PositiveIntegerField(_("drill every (days)"), default=7)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("backup plan")

    def __str__(self) -> str:
        return self.name

    def keep_policy(self) -> KeepPolicy:
        """Return the plan's retention as restic's ``--keep-*`` policy."""
        return KeepPolicy(last=self.keep_last, daily=self.keep_daily, weekly=self.keep_weekly,
                          monthly=self.keep_monthly, yearly=self.keep_yearly)

    @property
    def tags(self) -> list[str]:
        """The restic tags every snapshot of this plan bears."""
        return ["chaton", f"plan:{self.name}"]

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.interval_minutes)

    @property
    def stale_after(self) -> dt.timedelta:
        return dt.timedelta(hours=self.stale_after_hours)


class Source(models.Model):
    """One thing a plan backs up; ``params`` depend on the kind (see ``backups/sources/``)."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="sources",
                             verbose_name=_("plan"))
    #: A kind of :mod:`chaton.backups.sources` (one module each; no choices here, so that a
    #: new kind needs no migration).
    kind = models.CharField(_("kind"), max_length=20)
    name = models.SlugField(_("name"), max_length=64)
    #: The kind's parameters; its secret ones (passwords) are stored encrypted.
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["plan", "name"]
        constraints = [models.UniqueConstraint(fields=["plan", "name"],
                                               name="backups_source_unique_name")]
        verbose_name = _("data source")

    def __str__(self) -> str:
        return f"{self.plan.name}/{self.name}"

    @property
    def kind_label(self) -> str:
        """The kind's label in the active language."""
        return sources.kind_label(self.kind)

    @property
    def tags(self) -> list[str]:
        """The restic tags of this source's snapshots: the plan's, plus the source's."""
        return [*self.plan.tags, f"source:{self.name}"]


class RunKind(models.TextChoices):
    BACKUP = "backup", _("backup")
    FORGET = "forget", _("retention")
    CHECK = "check", _("check")
    RESTORE = "restore", _("restore")


class Outcome(models.TextChoices):
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class Run(models.Model):
    """One backup, retention pass, check or restore, from its start to its outcome."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="runs")
    #: None for a check of the repository as a whole.
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="runs", null=True,
                             blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=RunKind.choices)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices,
                               default=Outcome.RUNNING)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    #: Who or what started it: a uid, "worker", "cli".
    triggered_by = models.CharField(max_length=150, blank=True, default="")
    #: The process that ran it (a later run marks it interrupted if it died).
    pid = models.PositiveIntegerField(null=True, blank=True)
    files_new = models.PositiveBigIntegerField(default=0)
    files_changed = models.PositiveBigIntegerField(default=0)
    bytes_added = models.PositiveBigIntegerField(default=0)
    bytes_processed = models.PositiveBigIntegerField(default=0)
    #: What the kind has to say: snapshots kept and removed, check errors, restore target.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["plan", "kind", "-started_at"]),
                   models.Index(fields=["repository", "kind", "-started_at"])]
        verbose_name = _("run")

    def __str__(self) -> str:
        subject = self.plan.name if self.plan_id is not None and self.plan else str(
            self.repository)
        return f"{self.kind} {subject} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> dt.timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None

    @property
    def succeeded(self) -> bool:
        return self.outcome == Outcome.SUCCEEDED


class SourceResult(models.Model):
    """What one run did to one data source: its snapshot, its sizes, its fingerprint."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="results")
    source = models.ForeignKey(Source, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="results")
    #: Kept when the source is removed: the history still says what it was.
    source_name = models.CharField(max_length=64)
    source_kind = models.CharField(max_length=20)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    snapshot_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    #: A snapshot taken just before an in-place restore, to undo it.
    safety = models.BooleanField(default=False)
    files_new = models.PositiveBigIntegerField(default=0)
    files_changed = models.PositiveBigIntegerField(default=0)
    bytes_added = models.PositiveBigIntegerField(default=0)
    bytes_processed = models.PositiveBigIntegerField(default=0)
    #: What the source looked like when backed up (rows and checksums, entries, files).
    fingerprint = models.JSONField(default=dict, blank=True)
    #: Set when retention removed the snapshot from the repository.
    forgotten_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["source", "outcome", "-started_at"])]
        verbose_name = _("source result")

    def __str__(self) -> str:
        return f"{self.source_name} {self.snapshot_id or '-'}"

    @property
    def duration(self) -> dt.timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None


class DrillOutcome(models.TextChoices):
    RUNNING = "running", _("running")
    PASSED = "passed", _("passed")
    FAILED = "failed", _("failed")


class Drill(models.Model):
    """The evidence of one restore drill: a snapshot restored into a scratch place and compared.

    ``compared`` lists what was compared, ``expected`` what the backup recorded,
    ``found`` what the restored copy holds.
    """

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="drills")
    source = models.ForeignKey(Source, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="drills")
    source_name = models.CharField(max_length=64)
    source_kind = models.CharField(max_length=20)
    #: The backup whose snapshot was restored; None when there was none to test.
    result = models.ForeignKey(SourceResult, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="drills")
    snapshot_id = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(_("started"), db_index=True)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=DrillOutcome.choices,
                               default=DrillOutcome.RUNNING)
    #: What was compared: evidence items (``{"code": …, "params": {…}}``, see
    #: :mod:`chaton.backups.evidence`), shown in the reader's language.
    compared = models.JSONField(default=list, blank=True)
    expected = models.JSONField(default=dict, blank=True)
    found = models.JSONField(default=dict, blank=True)
    #: What the drill found — each difference, or why it failed — as evidence items.
    findings = models.JSONField(default=list, blank=True)
    #: Drills recorded before ``findings``: their findings as text, in the language of then.
    details = models.TextField(blank=True, default="")
    #: The ``restic check`` that ran with the drill, if any.
    check_run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="drills")
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["plan", "-started_at"])]
        verbose_name = _("restore drill")

    def __str__(self) -> str:
        return f"drill {self.plan.name}/{self.source_name} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def passed(self) -> bool:
        return self.outcome == DrillOutcome.PASSED

    @property
    def compared_labels(self) -> list[str]:
        """What was compared, in the active language."""
        from chaton.backups import evidence

        return [evidence.text(item) for item in self.compared]

    @property
    def findings_text(self) -> str:
        """What the drill found, one line each, in the active language."""
        from chaton.backups import evidence

        if self.findings:
            return "\n".join(evidence.text(item) for item in self.findings)
        return self.details

    def summary(self) -> dict[str, Any]:
        """Return the evidence as a JSON-able mapping (for a report), in the active language."""
        return {"plan": self.plan.name, "source": self.source_name,
                "snapshot": self.snapshot_id, "started_at": self.started_at.isoformat(),
                "duration_seconds": self.duration_seconds, "outcome": self.outcome,
                "compared": self.compared_labels, "details": self.findings_text}



class RecoveryKitEventKind(models.TextChoices):
    SHOWN = "shown", _("shown")
    STORED = "stored", _("confirmed stored")


class RecoveryKitEvent(models.Model):
    """The recovery kit was shown to someone, or someone said they stored it off the server.

    ``kit_digest`` identifies the kit's content (:func:`chaton.backups.recovery.kit_digest`),
    not the content itself: a new repository, password or key makes a new
    kit, and the warning on ``/backups/`` comes back until that one is stored.
    """

    kind = models.CharField(_("event"), max_length=10, choices=RecoveryKitEventKind.choices)
    at = models.DateTimeField(_("when"))
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="+")
    #: Who: a uid, or "cli" when the command ran without --as.
    actor_label = models.CharField(max_length=150, blank=True, default="")
    #: "web" or "cli".
    via = models.CharField(max_length=10, blank=True, default="")
    kit_digest = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("recovery kit event")

    def __str__(self) -> str:
        return f"recovery kit {self.kind} {self.kit_digest[:8]}"
