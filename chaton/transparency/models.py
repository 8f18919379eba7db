"""The transparency app's state: the collective's profile, each host's facts, the register
of authority requests and the yearly software lists."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OrganizationType(models.TextChoices):
    ASSOCIATION = "ASSOCIATION", _("association")
    INFORMAL = "INFORMAL", _("informal group")
    COOPERATIVE = "COOPERATIVE", _("cooperative")
    MICROCOMPANY = "MICROCOMPANY", _("micro-company")
    COMPANY = "COMPANY", _("company")
    INDIVIDUAL = "INDIVIDUAL", _("individual")
    OTHER = "OTHER", _("other")


class OrganizationStatus(models.TextChoices):
    ACTIVE = "ACTIVE", _("active")
    IDLE = "IDLE", _("idle")
    AWAY = "AWAY", _("gone")


class OrganizationProfile(models.Model):
    """The one row of the collective's ``organization.*`` facts (ChatonsInfos)."""

    name = models.CharField(_("name"), max_length=200, default="")
    description = models.TextField(_("description"), blank=True, default="")
    website = models.URLField(_("website"), blank=True, default="")
    logo = models.URLField(_("logo (URL)"), blank=True, default="")
    type = models.CharField(_("type"), max_length=20, choices=OrganizationType.choices,
                            default=OrganizationType.ASSOCIATION)
    status = models.CharField(_("status"), max_length=10, choices=OrganizationStatus.choices,
                              default=OrganizationStatus.ACTIVE)
    start_date = models.DateField(_("founded on"), null=True, blank=True)
    chatons_start_date = models.DateField(_("CHATONS member since"), null=True, blank=True)
    chatons_end_date = models.DateField(_("CHATONS member until"), null=True, blank=True)
    country_name = models.CharField(_("country"), max_length=100, blank=True, default="")
    country_code = models.CharField(_("country code (ISO 3166-1)"), max_length=2, blank=True,
                                    default="")
    contact_email = models.EmailField(_("contact email"), blank=True, default="")
    contact_url = models.URLField(_("contact page"), blank=True, default="")
    legal_url = models.URLField(_("legal notice page"), blank=True, default="")
    #: ``{"liberapay": "https://…", "helloasso": "https://…"}``: ``organization.funding.<name>``.
    funding = models.JSONField(_("funding links"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("organization profile")

    def __str__(self) -> str:
        return self.name or "organization"


class ProviderType(models.TextChoices):
    HOME = "HOME", _("at a member's home")
    HOSTEDBAY = "HOSTEDBAY", _("own machine in a data centre bay")
    HOSTEDSERVER = "HOSTEDSERVER", _("rented server")
    OUTSOURCED = "OUTSOURCED", _("outsourced")


class ServerType(models.TextChoices):
    NANO = "NANO", _("nano-computer")
    PHYSICAL = "PHYSICAL", _("physical machine")
    VIRTUAL = "VIRTUAL", _("virtual machine")
    SHARED = "SHARED", _("shared hosting")
    CLOUD = "CLOUD", _("cloud")


class HostFacts(models.Model):
    """What ChatonsInfos says of a host (``host.*``); kept here, beside the services' Host."""

    host = models.OneToOneField("services.Host", on_delete=models.CASCADE,
                                related_name="transparency_facts")
    description = models.CharField(_("description"), max_length=300, blank=True, default="")
    provider_type = models.CharField(_("provider type"), max_length=20,
                                     choices=ProviderType.choices, blank=True, default="")
    server_type = models.CharField(_("server type"), max_length=20, choices=ServerType.choices,
                                   blank=True, default="")
    country_name = models.CharField(_("country"), max_length=100, blank=True, default="")
    country_code = models.CharField(_("country code"), max_length=2, blank=True, default="")

    class Meta:
        verbose_name = _("host facts")

    def __str__(self) -> str:
        return f"facts of {self.host_id}"


class AuthorityRequest(models.Model):
    """A request received from an authority (police, court, administration …).

    ``asked`` and ``answered`` are the private record, which may name people;
    only ``published_text`` — written with personal data removed — is ever shown
    publicly, and only once ``published`` is set.
    """

    received_on = models.DateField(_("received on"))
    authority = models.CharField(_("authority"), max_length=200)
    kind = models.CharField(_("kind of request"), max_length=200)
    asked = models.TextField(_("what was asked"))
    answered = models.TextField(_("what was answered"), blank=True, default="")
    answered_on = models.DateField(_("answered on"), null=True, blank=True)
    published = models.BooleanField(_("published"), default=False)
    published_text = models.TextField(_("published text (no personal data)"), blank=True,
                                      default="")
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        ordering = ["-received_on", "-id"]
        verbose_name = _("authority request")

    def __str__(self) -> str:
        return f"#{self.pk} {self.received_on} {self.kind}"


class SoftwareList(models.Model):
    """One snapshot of the software the collective runs: instances' images, hosts' packages.

    ``entries``: ``[{"host": …, "kind": "image"|"package", "name": …, "version": …,
    "instance": slug or ""}]``.
    """

    year = models.PositiveIntegerField(_("year"))
    generated_at = models.DateTimeField(_("generated"))
    entries = models.JSONField(_("entries"), default=list)
    #: How the hosts' packages were read, or why they were not (shown with the list).
    notes = models.JSONField(default=list)

    class Meta:
        ordering = ["-generated_at"]
        verbose_name = _("software list")

    def __str__(self) -> str:
        return f"software {self.year} ({self.generated_at:%Y-%m-%d})"
