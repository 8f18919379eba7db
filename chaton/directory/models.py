"""The directory's desired state: accounts, groups with expiring memberships, SSH keys.

The reconciler (:mod:`chaton.directory.reconcile`) projects these rows into
OpenLDAP; nothing here talks to the directory.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from chaton.core import clock, limits
from chaton.members.models import Organization, Person


class AccountState(models.TextChoices):
    ACTIVE = "active", _("active")
    DISABLED = "disabled", _("disabled")


class AccountManager(BaseUserManager["Account"]):
    def create_user(self, uid: str, password: str | None = None, **fields: Any) -> Account:
        account = self.model(uid=uid, **fields)
        account.set_password(password)
        account.save()
        return account

    def create_superuser(self, uid: str, password: str | None = None, **fields: Any) -> Account:
        return self.create_user(uid, password, is_admin=True, **fields)


class Account(AbstractBaseUser):
    """A login in the directory, owned by a person or by a partner organization.

    It is in the directory while it is active and not expired; ``expires_at`` is
    enforced by the reconciler and by login, not remembered by someone.
    """

    uid = models.CharField(_("user name"), max_length=limits.UID_MAX_LENGTH, unique=True)
    uid_number = models.PositiveIntegerField(unique=True)
    display_name = models.CharField(_("display name"),
                                    max_length=limits.DISPLAY_NAME_MAX_LENGTH)
    email = models.EmailField(_("email"), max_length=limits.EMAIL_MAX_LENGTH, unique=True)
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="accounts", verbose_name=_("owner (person)"))
    organization = models.ForeignKey(Organization, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="accounts",
                                     verbose_name=_("owner (organization)"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=20, choices=AccountState.choices,
                             default=AccountState.ACTIVE)
    #: May use the administration pages and the whole API.
    is_admin = models.BooleanField(_("administrator"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    #: When the account was given to its present person (None: before this was recorded).
    #: It votes only on ballots opened after that.
    person_linked_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: When someone other than the account's owner (an administrator, the command line)
    #: last set its password; None once the owner sets it. A password set by another does
    #: not vote on a ballot opened before it was set.
    password_set_by_other_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AccountManager()

    USERNAME_FIELD = "uid"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email", "display_name", "uid_number"]

    class Meta:
        ordering = ["uid"]
        verbose_name = _("account")
        constraints = [
            models.CheckConstraint(condition=Q(person__isnull=True) | Q(organization__isnull=True),
                                   name="account_one_owner"),
        ]

    def __str__(self) -> str:
        return self.uid

    @property
    def owner(self) -> Person | Organization | None:
        return self.person or self.organization

    def is_expired(self, at: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or clock.now())

    def is_in_directory(self, at: dt.datetime | None = None) -> bool:
        """True when the account should exist in LDAP at ``at`` (now by default)."""
        return self.state == AccountState.ACTIVE and not self.is_expired(at)

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        # Django refuses to log in an inactive user: an expired account cannot log in.
        return self.is_in_directory()

    @property
    def is_staff(self) -> bool:
        return self.is_admin


class GroupKind(models.TextChoices):
    TEAM = "team", _("team")
    MEMBERS = "members", _("members")
    SERVICE = "service", _("service access")


class Group(models.Model):
    """A group of accounts: the tech team, the core team, those who may use a service …"""

    name = models.CharField(_("name"), max_length=limits.GROUP_NAME_MAX_LENGTH, unique=True)
    description = models.CharField(_("description"),
                                   max_length=limits.GROUP_DESCRIPTION_MAX_LENGTH, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=GroupKind.choices,
                            default=GroupKind.TEAM)
    #: Adding a member takes a decision of the members (an extraordinary operation).
    requires_decision = models.BooleanField(_("members added by decision only"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("group")

    def __str__(self) -> str:
        return self.name


class GroupMembershipQuerySet(models.QuerySet["GroupMembership"]):
    def valid(self, at: dt.datetime) -> GroupMembershipQuerySet:
        """Memberships that grant access at ``at``: not expired, account in the directory."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at)).filter(
            account__state=AccountState.ACTIVE
        ).filter(Q(account__expires_at__isnull=True) | Q(account__expires_at__gt=at))


class GroupMembership(models.Model):
    """An account in a group, until an optional date of its own."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE,
                                related_name="group_memberships")
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    objects = GroupMembershipQuerySet.as_manager()

    class Meta:
        ordering = ["group__name", "account__uid"]
        constraints = [models.UniqueConstraint(fields=["group", "account"],
                                               name="group_membership_unique")]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.group_id}"

    def is_expired(self, at: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or clock.now())


class SSHKey(models.Model):
    """An SSH public key of an account, published as ``sshPublicKey``."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="ssh_keys")
    #: One line in OpenSSH's authorized_keys format: type, base64 blob, optional comment.
    key = models.TextField(_("public key"))
    fingerprint = models.CharField(_("fingerprint"), max_length=100)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        verbose_name = _("SSH key")
        constraints = [models.UniqueConstraint(fields=["account", "fingerprint"],
                                               name="ssh_key_unique")]

    def __str__(self) -> str:
        return self.fingerprint


class ProjectedEntry(models.Model):
    """A DN that Chaton wrote into the directory, so it knows which entries are its own.

    An entry under the directory's base that is not listed here is someone
    else's: reported, never deleted unless asked.
    """

    dn = models.CharField(max_length=512, unique=True)

    def __str__(self) -> str:
        return self.dn


class ExpiryNotice(models.Model):
    """A notice mailed before an account or a group membership expires, or the expiry itself.

    One row per (account, group, date, kind), so each is sent and audited once.
    """

    class Kind(models.TextChoices):
        NOTICE = "notice", _("notice before expiry")
        EXPIRED = "expired", _("expired")

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.NOTICE)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+")
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "group", "expires_at", "kind"],
                                               name="expiry_notice_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.account_id} {self.expires_at:%Y-%m-%d}"


class SyncState(models.Model):
    """The one row that says whether the directory is behind the database."""

    #: Set when a change could not reach the directory; the worker retries soon.
    pending_since = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return "directory sync"

    @classmethod
    def get(cls) -> SyncState:
        state, _ = cls.objects.get_or_create(pk=1)
        return state
