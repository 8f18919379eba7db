"""What statistics keep.

Sample       one value of a figure for a subject (an instance's slug, or "chaton") on a day
Gap          a collector that could not answer for a subject on a day (shown on the pages)
LogCursor    how far an access log has been read (inode and offset)
DaySalt      the random salt that hashes visitors' addresses, kept only for its day
Visitor      a salted hash seen on a day for a subject, deleted once the day is counted
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

#: The subject of the collective's own figures.
CHATON = "chaton"


class Sample(models.Model):
    """The value of a figure (see :data:`chaton.stats.figures.FIGURES`) for a subject on a day."""

    figure = models.CharField(_("figure"), max_length=100)
    subject = models.CharField(_("subject"), max_length=100)
    day = models.DateField(_("day"))
    value = models.FloatField(_("value"))
    collected_at = models.DateTimeField(_("collected"))

    class Meta:
        verbose_name = _("sample")
        verbose_name_plural = _("samples")
        constraints = [models.UniqueConstraint(fields=["figure", "subject", "day"],
                                               name="stats_sample_unique")]
        indexes = [models.Index(fields=["subject", "figure", "day"], name="stats_sample_subject")]
        ordering = ["figure", "subject", "day"]

    def __str__(self) -> str:
        return f"{self.figure} {self.subject} {self.day}: {self.value}"


class Gap(models.Model):
    """A collector that failed for a subject on a day: its figures stay empty that day."""

    subject = models.CharField(_("subject"), max_length=100)
    day = models.DateField(_("day"))
    collector = models.CharField(_("collector"), max_length=100)
    message = models.TextField(_("message"))
    noted_at = models.DateTimeField(_("noted"))

    class Meta:
        verbose_name = _("gap")
        verbose_name_plural = _("gaps")
        constraints = [models.UniqueConstraint(fields=["subject", "day", "collector"],
                                               name="stats_gap_unique")]
        ordering = ["-day", "subject"]

    def __str__(self) -> str:
        return f"{self.subject} {self.day}: {self.message}"


class LogCursor(models.Model):
    """Where the reading of one access log stopped."""

    path = models.CharField(_("path"), max_length=500, unique=True)
    inode = models.BigIntegerField(_("inode"), default=0)
    offset = models.BigIntegerField(_("offset"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    def __str__(self) -> str:
        return f"{self.path}@{self.offset}"


class DaySalt(models.Model):
    """The salt of one day's visitor hashes; deleted with the day's hashes once counted."""

    day = models.DateField(_("day"), unique=True)
    salt = models.BinaryField(_("salt"))

    def __str__(self) -> str:
        return str(self.day)


class Visitor(models.Model):
    """One distinct (salted, hashed) client of a subject on a day."""

    subject = models.CharField(_("subject"), max_length=100)
    day = models.DateField(_("day"))
    digest = models.CharField(_("digest"), max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject", "day", "digest"],
                                               name="stats_visitor_unique")]

    def __str__(self) -> str:
        return f"{self.subject} {self.day}"
