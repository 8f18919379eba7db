"""Mail identity: the zones Chaton writes to, the mail domains, their DKIM keys.

A :class:`MailDomain` lives in a :class:`DnsZone` (updated by RFC 2136, or
"manual": shown and checked only); its DKIM records may live in another zone
(``dkim_zone``: the domain then carries fixed CNAMEs to it). Each
:class:`DkimKey` walks the rotation lifecycle of :mod:`chaton.mail.rotation`::

    pending → active → retiring → retired → revealed

Private keys and TSIG secrets are stored encrypted (:mod:`chaton.core.secrets`).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from chaton.core import secrets


class ZoneMode(models.TextChoices):
    RFC2136 = "rfc2136", _("updated by Chaton (RFC 2136)")
    MANUAL = "manual", _("set by hand (shown and checked)")


class DnsZone(models.Model):
    """A DNS zone: the primary Chaton updates, or one someone edits by hand."""

    #: Absolute, lower case, with the trailing dot: "example.org.".
    name = models.CharField(_("zone"), max_length=255, unique=True)
    mode = models.CharField(_("mode"), max_length=10, choices=ZoneMode.choices,
                            default=ZoneMode.MANUAL)
    #: The primary that takes updates (and is asked first); empty for a manual zone whose
    #: servers are found from its NS records.
    server_host = models.CharField(_("server"), max_length=255, blank=True, default="")
    server_port = models.PositiveIntegerField(_("port"), default=53)
    tsig_name = models.CharField(_("TSIG key name"), max_length=255, blank=True, default="")
    tsig_algorithm = models.CharField(_("TSIG algorithm"), max_length=40,
                                      default="hmac-sha256")
    #: The TSIG secret (base64), encrypted; empty: none.
    tsig_secret = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("DNS zone")
        verbose_name_plural = _("DNS zones")

    def __str__(self) -> str:
        return self.name

    def tsig_secret_clear(self) -> str | None:
        """Return the TSIG secret in clear, or None when there is none."""
        return secrets.decrypt(self.tsig_secret) if self.tsig_secret else None


class DmarcPolicy(models.TextChoices):
    NONE = "none", _("none (report only)")
    QUARANTINE = "quarantine", _("quarantine")
    REJECT = "reject", _("reject")


class MtaStsMode(models.TextChoices):
    TESTING = "testing", _("testing")
    ENFORCE = "enforce", _("enforce")
    NONE = "none", _("none")


class MailDomain(models.Model):
    """A domain the collective sends or receives mail for (its own or a partner's)."""

    #: Lower case, without the trailing dot: "example.org".
    name = models.CharField(_("domain"), max_length=253, unique=True)
    #: A partner's own domain; none: the collective's.
    organization = models.ForeignKey("members.Organization", on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="mail_domains",
                                     verbose_name=_("organization"))
    zone = models.ForeignKey(DnsZone, on_delete=models.PROTECT, related_name="domains",
                             verbose_name=_("zone"))
    #: Where the DKIM records live when the domain carries fixed CNAMEs to them.
    dkim_zone = models.ForeignKey(DnsZone, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="dkim_domains", verbose_name=_("DKIM zone"))
    mx_hosts = models.JSONField(_("mail exchangers"), default=list)
    sending_addresses = models.JSONField(_("sending addresses"), default=list)
    dmarc_policy = models.CharField(_("DMARC policy"), max_length=12,
                                    choices=DmarcPolicy.choices, default=DmarcPolicy.NONE)
    dmarc_report_address = models.CharField(_("DMARC reports to"), max_length=254,
                                            blank=True, default="")
    mta_sts_mode = models.CharField(_("MTA-STS mode"), max_length=10,
                                    choices=MtaStsMode.choices, default=MtaStsMode.TESTING)
    mta_sts_max_age = models.PositiveIntegerField(_("MTA-STS max age (seconds)"),
                                                  default=604800)
    tls_rpt_address = models.CharField(_("TLS reports to"), max_length=254, blank=True,
                                       default="")
    #: Set ONLY by the governance operation ``mail.publish_retired_keys``.
    publish_retired_keys = models.BooleanField(_("retired keys published"), default=False)
    rotation_days = models.PositiveIntegerField(_("rotate every (days)"), default=30)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("mail domain")
        verbose_name_plural = _("mail domains")

    def __str__(self) -> str:
        return self.name


class KeyState(models.TextChoices):
    PENDING = "pending", _("pending (advertised, not signing)")
    ACTIVE = "active", _("active (signing)")
    RETIRING = "retiring", _("retiring (advertised, not signing)")
    RETIRED = "retired", _("retired (record removed)")
    REVEALED = "revealed", _("revealed (private key published)")


class KeyAlgorithm(models.TextChoices):
    RSA = "rsa", "RSA"
    ED25519 = "ed25519", "Ed25519"


class DkimKey(models.Model):
    """One DKIM key of a domain, under one selector."""

    domain = models.ForeignKey(MailDomain, on_delete=models.CASCADE, related_name="keys",
                               verbose_name=_("domain"))
    selector = models.CharField(_("selector"), max_length=63)
    algorithm = models.CharField(_("algorithm"), max_length=10, choices=KeyAlgorithm.choices,
                                 default=KeyAlgorithm.RSA)
    bits = models.PositiveIntegerField(_("bits"), default=2048)
    #: The private key (PEM, PKCS#8), encrypted.
    private_key = models.TextField()
    #: The base64 of the public key: the record's ``p=`` value.
    public_key = models.TextField(_("public key"))
    state = models.CharField(_("state"), max_length=10, choices=KeyState.choices,
                             default=KeyState.PENDING)
    created_at = models.DateTimeField(_("created"))
    #: When its record was first seen with this key on every authoritative server.
    advertised_at = models.DateTimeField(_("seen in DNS"), null=True, blank=True)
    activated_at = models.DateTimeField(_("signing since"), null=True, blank=True)
    retiring_at = models.DateTimeField(_("retiring since"), null=True, blank=True)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)
    revealed_at = models.DateTimeField(_("revealed"), null=True, blank=True)
    #: Retired at once because it was compromised, or made by an emergency rotation.
    emergency = models.BooleanField(_("emergency"), default=False)
    #: sha256 (hex) of the ``p=`` value: the name of the published private key.
    published_name = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["domain__name", "created_at", "id"]
        verbose_name = _("DKIM key")
        verbose_name_plural = _("DKIM keys")

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"

    def private_key_pem(self) -> str:
        """Return the private key (PEM) in clear. Raise SecretError for another key."""
        return secrets.decrypt(self.private_key)
