"""The services' desired state: hosts, instances of catalogue applications, their history.

The reconciler (:mod:`chaton.services.reconcile`) makes each host's Docker
engine run what these rows say; nothing here talks to an engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from chaton.directory.models import Group
from chaton.members.models import Organization, Person

if TYPE_CHECKING:
    from chaton.services.catalog import Manifest


class HostRole(models.TextChoices):
    APPS = "apps", _("runs instances")
    PROXY = "proxy", _("runs the reverse proxy")
    BACKUPS = "backups", _("keeps backups")


class Host(models.Model):
    """A machine with a Docker endpoint; with ``swarm``, the manager of a Docker Swarm.

    ``address`` is where the reverse proxy reaches the ports the host publishes;
    published ports are bound to it when it is an IP address.
    """

    name = models.SlugField(_("name"), max_length=64, unique=True)
    docker_url = models.CharField(_("Docker endpoint"), max_length=255)
    #: PEM files of a ``tcp://`` endpoint with TLS (all three, or none).
    tls_ca = models.CharField(_("TLS CA file"), max_length=255, blank=True)
    tls_certificate = models.CharField(_("TLS certificate file"), max_length=255, blank=True)
    tls_key = models.CharField(_("TLS key file"), max_length=255, blank=True)
    #: HostRole values.
    roles = models.JSONField(_("roles"), default=list)
    swarm = models.BooleanField(_("Swarm manager"), default=False)
    is_default = models.BooleanField(_("default host"), default=False)
    address = models.CharField(_("address for the proxy"), max_length=255, default="127.0.0.1")
    #: How the containers of this host reach the directory; empty: ``ldap.url``.
    ldap_url = models.CharField(_("directory URL for the containers"), max_length=255,
                                blank=True)
    #: Instances get published ports from this range.
    first_port = models.PositiveIntegerField(_("first port"), default=20000)
    last_port = models.PositiveIntegerField(_("last port"), default=29999)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("host")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                    name="services_one_default_host"),
            models.CheckConstraint(condition=Q(first_port__lte=models.F("last_port")),
                                   name="services_host_port_range"),
        ]

    def __str__(self) -> str:
        return self.name


class HostImage(models.Model):
    """An image loaded onto a host from an archive (``docker save`` format), without a
    registry. An instance runs it pinned by ``image_id``, the digest of the image's
    configuration, which Docker never tries to pull."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="images",
                             verbose_name=_("host"))
    #: ``repository:tag`` as the archive named it; empty for an untagged image.
    reference = models.CharField(_("name"), max_length=300, blank=True)
    image_id = models.CharField(_("image id"), max_length=71)
    size = models.PositiveBigIntegerField(_("size"), default=0)
    loaded_at = models.DateTimeField(_("loaded"))
    loaded_by = models.CharField(_("loaded by"), max_length=150, blank=True)

    class Meta:
        ordering = ["host__name", "reference", "-loaded_at"]
        verbose_name = _("loaded image")
        constraints = [
            models.UniqueConstraint(fields=["host", "reference", "image_id"],
                                    name="services_host_image_once"),
        ]

    def __str__(self) -> str:
        return f"{self.reference or self.image_id} on {self.host_id}"


class DesiredState(models.TextChoices):
    RUNNING = "running", _("running")
    #: Nothing runs; the network and the data stay.
    STOPPED = "stopped", _("stopped")
    #: Being removed: the reconciler removes what runs (and the data, if asked), then the row.
    REMOVED = "removed", _("being removed")


class Instance(models.Model):
    """One application of the catalogue at one domain, on one host, for one owner.

    The owner is the collective (no person, no organization), a person or a
    partner organization. ``secrets`` maps each generated secret's name to its
    ciphertext (:mod:`chaton.core.secrets`); it never appears in the audit log.
    """

    slug = models.SlugField(_("short name"), max_length=40, unique=True)
    application = models.CharField(_("application"), max_length=64)
    domain = models.CharField(_("domain"), max_length=253, unique=True)
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="instances",
                             verbose_name=_("host"))
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="instances", verbose_name=_("owner (person)"))
    organization = models.ForeignKey(Organization, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="instances",
                                     verbose_name=_("owner (organization)"))
    settings = models.JSONField(_("settings"), default=dict)
    #: Whose members may log in (None: every account of the directory).
    login_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="instances", verbose_name=_("login group"))
    secrets = models.JSONField(default=dict)
    #: The image pin when it is not the catalogue's (an upgrade sets it).
    image_override = models.CharField(_("image"), max_length=300, blank=True)
    #: The host port the application is published on, where the proxy reaches it.
    port = models.PositiveIntegerField(_("published port"))
    state = models.CharField(_("desired state"), max_length=20, choices=DesiredState.choices,
                             default=DesiredState.RUNNING)
    #: With state "removed": remove the volumes too.
    remove_data = models.BooleanField(default=False)
    #: The spec hash last applied per role ({"app": …, "database": …}): a workload whose
    #: label is neither this nor the desired hash was changed by hand.
    applied = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("instance")
        constraints = [
            models.UniqueConstraint(fields=["host", "port"], name="services_one_port_per_host"),
            models.CheckConstraint(condition=Q(person__isnull=True) | Q(organization__isnull=True),
                                   name="services_instance_one_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.slug} ({self.domain})"

    @property
    def owner(self) -> Person | Organization | None:
        return self.person or self.organization

    @property
    def manifest(self) -> Manifest:
        """The catalogue's manifest of the application. Raise KeyError when it left it."""
        from chaton.services import catalog

        return catalog.get(self.application)

    @property
    def image(self) -> str:
        """The image this instance runs: its own pin, else the catalogue's."""
        return self.image_override or self.manifest.image


class DeploymentKind(models.TextChoices):
    CREATE = "create", _("creation")
    UPGRADE = "upgrade", _("upgrade")
    SETTINGS = "settings", _("settings change")
    REPAIR = "repair", _("repair")


class Outcome(models.TextChoices):
    PENDING = "pending", _("under way")
    HEALTHY = "healthy", _("healthy")
    ROLLED_BACK = "rolled_back", _("rolled back")
    FAILED = "failed", _("failed")
    DONE = "done", _("done")


class Deployment(models.Model):
    """One event in an instance's life that the instance page shows: an upgrade attempt
    (from, to, healthy / rolled back / failed), a repair of a change made by hand …"""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="deployments")
    kind = models.CharField(_("kind"), max_length=20, choices=DeploymentKind.choices)
    from_image = models.CharField(_("from"), max_length=300, blank=True)
    to_image = models.CharField(_("to"), max_length=300, blank=True)
    from_port = models.PositiveIntegerField(null=True, blank=True)
    #: The port the new version is published on during the attempt.
    to_port = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices,
                               default=Outcome.PENDING)
    message = models.TextField(_("message"), blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(_("when"))
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("deployment")
        constraints = [
            models.UniqueConstraint(fields=["instance"], condition=Q(outcome="pending"),
                                    name="services_one_pending_deployment"),
        ]

    def __str__(self) -> str:
        return f"{self.instance.slug} {self.kind} {self.outcome}"
