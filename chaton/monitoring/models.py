"""What monitoring watches and what it saw.

Probe      one check, derived from the desired state or added by an administrator
Result     one raw outcome, kept ``monitoring.raw_hours`` then pruned
Rollup     an hour's or a day's summary of a probe (kept for years)
Incident   consecutive failures of a probe, from opening to resolution
Maintenance  a planned window that silences alerts for some services (all when empty)
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from chaton.core import clock


class Kind(models.TextChoices):
    HTTP = "http", "HTTP(S)"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"
    DNS = "dns", "DNS"
    SMTP = "smtp", "SMTP"
    IMAP = "imap", "IMAP"
    LDAP = "ldap", "LDAP"
    # Checks Chaton computes itself rather than through the probe engine.
    DOCKER = "docker", "Docker"
    BACKUP = "backup", _("backup")
    DISK = "disk", _("disk space")
    WEB = "web", _("Chaton's web")


#: The kinds the probe engine runs (the others are computed by Chaton).
ENGINE_KINDS = frozenset({"http", "tcp", "tls", "dns", "smtp", "imap", "ldap"})
#: The kinds an administrator may add as custom probes.
CUSTOM_KINDS = ENGINE_KINDS


class Source(models.TextChoices):
    DERIVED = "derived", _("derived")
    CUSTOM = "custom", _("custom")


class State(models.TextChoices):
    UP = "up", _("up")
    DOWN = "down", _("down")
    WARNING = "warning", _("warning")
    UNKNOWN = "unknown", _("no data")


class Probe(models.Model):
    """One check of something Chaton runs (or an administrator asked for)."""

    key = models.SlugField(_("key"), max_length=200, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    target = models.CharField(_("target"), max_length=500)
    conditions = models.JSONField(_("conditions"), default=list, blank=True)
    #: Engine options (method, headers, record …). Never a secret in clear: the directory
    #: probe's password is read from the service account at run time.
    options = models.JSONField(_("options"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices,
                              default=Source.DERIVED)
    #: The label a person sees on the status page (an instance's label, "Directory" …).
    service = models.CharField(_("service"), max_length=200)
    instance = models.ForeignKey("services.Instance", null=True, blank=True,
                                 on_delete=models.CASCADE, related_name="probes")
    public = models.BooleanField(_("shown on the status page"), default=False)
    interval_seconds = models.PositiveIntegerField(_("interval (seconds)"), default=60)
    timeout_seconds = models.PositiveIntegerField(_("timeout (seconds)"), default=10)
    enabled = models.BooleanField(_("enabled"), default=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices,
                             default=State.UNKNOWN)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    last_duration_ms = models.FloatField(_("last response time (ms)"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    cert_expires_at = models.DateTimeField(_("certificate expires"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["service", "key"]
        verbose_name = _("probe")

    def __str__(self) -> str:
        return self.key


class Result(models.Model):
    """One raw outcome of a probe."""

    probe = models.ForeignKey(Probe, on_delete=models.CASCADE, related_name="results")
    at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    duration_ms = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    cert_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["probe", "at"], name="monitoring_result_probe_at")]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'failed'}"


class Period(models.TextChoices):
    HOUR = "hour", _("hour")
    DAY = "day", _("day")


class Rollup(models.Model):
    """An hour or a day of one probe: time up, down and without data; response times.

    A gap in Chaton's own running counts as ``unknown_seconds``, never as down.
    """

    probe = models.ForeignKey(Probe, on_delete=models.CASCADE, related_name="rollups")
    period = models.CharField(max_length=4, choices=Period.choices)
    start = models.DateTimeField()
    up_seconds = models.FloatField(default=0.0)
    down_seconds = models.FloatField(default=0.0)
    unknown_seconds = models.FloatField(default=0.0)
    checks = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    p50_ms = models.FloatField(null=True, blank=True)
    p95_ms = models.FloatField(null=True, blank=True)
    p99_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["probe", "period", "start"]
        constraints = [models.UniqueConstraint(fields=["probe", "period", "start"],
                                               name="monitoring_rollup_unique")]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.period} {self.start:%Y-%m-%d %H:%M}"

    @property
    def uptime(self) -> float | None:
        """The share of known time the probe was up (0 to 1), None without data."""
        known = self.up_seconds + self.down_seconds
        return self.up_seconds / known if known else None


class Incident(models.Model):
    """A probe failing: opened after consecutive failures, resolved after successes."""

    probe = models.ForeignKey(Probe, on_delete=models.CASCADE, related_name="incidents")
    opened_at = models.DateTimeField(_("opened"), db_index=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    first_error = models.TextField(_("first error"), blank=True, default="")
    last_error = models.TextField(_("last error"), blank=True, default="")
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, default="")
    alerts_sent = models.PositiveIntegerField(default=0)
    last_alert_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"{self.probe.key} {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def duration(self) -> dt.timedelta | None:
        """How long it lasted (until now while open); None without an ``opened_at``."""
        if self.opened_at is None:
            return None
        return (self.resolved_at or clock.now()) - self.opened_at


class Maintenance(models.Model):
    """A planned window: alerts of its services are silenced, the status page announces it."""

    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True, default="")
    #: Service labels (a probe's ``service``); empty: every service.
    services = models.JSONField(_("services"), default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return self.title

    def covers(self, service: str, at: dt.datetime) -> bool:
        """Return whether this window silences ``service`` at ``at``."""
        return self.starts_at <= at < self.ends_at and (not self.services
                                                        or service in self.services)
