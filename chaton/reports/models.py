"""The activity reports of the collective.

Report      a period (a semester such as "A18", or any dates), its language and the
            sections people write in Markdown; a draft until published
ReportFile  one built file of a report (HTML, PDF or Markdown) with its SHA-256;
            a published report's files never change
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    FR = "fr", "Français"
    EN = "en", "English"


class ReportState(models.TextChoices):
    DRAFT = "draft", _("draft")
    PUBLISHED = "published", _("published")


class Format(models.TextChoices):
    HTML = "html", "HTML"
    PDF = "pdf", "PDF"
    MD = "md", "Markdown"


#: The sections people write, in the order the report shows them.
SECTIONS: tuple[str, ...] = ("introduction", "events", "outreach", "conclusion")


class Report(models.Model):
    """One activity report over a period."""

    name = models.SlugField(_("name"), max_length=40, unique=True,
                            help_text=_('A short name, such as "A18".'))
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    language = models.CharField(_("language"), max_length=2, choices=Language.choices,
                                default=Language.FR)
    #: section name → the Markdown people wrote (see SECTIONS).
    sections = models.JSONField(_("sections"), default=dict, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=ReportState.choices,
                             default=ReportState.DRAFT)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "name"]
        verbose_name = _("activity report")

    def __str__(self) -> str:
        return self.name

    @property
    def is_published(self) -> bool:
        return self.state == ReportState.PUBLISHED


class ReportFile(models.Model):
    """One built file of a report."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="files")
    format = models.CharField(_("format"), max_length=4, choices=Format.choices)
    content = models.BinaryField(_("content"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    built_at = models.DateTimeField(_("built at"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "format"],
                                               name="reports_one_file_per_format")]
        ordering = ["format"]

    def __str__(self) -> str:
        return f"{self.report.name}.{self.format}"
