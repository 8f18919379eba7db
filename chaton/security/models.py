"""Second factors: a TOTP authenticator and single-use recovery codes, as django-otp devices.

Both are :class:`django_otp.models.Device` subclasses, so django-otp's
middleware marks a session verified once :func:`django_otp.login` is called
with one of them. Nothing here is stored in clear: the TOTP key is encrypted
with the data directory's key (:mod:`chaton.core.secrets`), recovery codes are
kept as SHA-256 digests (each is 50 random bits, shown once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time

from django.db import models
from django.db.models.functions import Now
from django_otp.models import Device, ThrottlingMixin
from django_otp.oath import TOTP

from chaton.core import secrets

#: Seconds per code, digits per code: what every authenticator app assumes.
TOTP_STEP = 30
TOTP_DIGITS = 6
#: One step either side: a phone whose clock is a little off still works.
TOTP_TOLERANCE = 1


class TotpDevice(ThrottlingMixin, Device):
    """An authenticator app (RFC 6238, SHA-1, 6 digits, 30 s). A code is accepted once."""

    encrypted_key: models.TextField[str, str] = models.TextField()
    #: The last time step whose code was accepted: an older or the same code is refused.
    last_step: models.BigIntegerField[int, int] = models.BigIntegerField(default=-1)
    created_at: models.DateTimeField[dt.datetime, dt.datetime] = models.DateTimeField(
        auto_now_add=True)

    class Meta:
        verbose_name = "TOTP device"

    def key(self) -> bytes:
        """Return the shared secret."""
        return bytes.fromhex(secrets.decrypt(self.encrypted_key))

    def totp(self, at: float | None = None) -> TOTP:
        """Return the code generator at ``at`` (a Unix time; now by default)."""
        generator = TOTP(self.key(), step=TOTP_STEP, t0=0, digits=TOTP_DIGITS, drift=0)
        generator.time = time.time() if at is None else at
        return generator

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token: object) -> bool:
        """Given what a person typed, return whether it is a valid code never used before."""
        allowed, _reason = self.verify_is_allowed()
        if not allowed:
            return False
        text = str(token).replace(" ", "")
        if not (text.isascii() and text.isdigit() and len(text) == TOTP_DIGITS):
            self.throttle_increment()
            return False
        generator = self.totp()
        if generator.verify(int(text), tolerance=TOTP_TOLERANCE, min_t=self.last_step + 1):
            self.last_step = generator.t()
            self.throttle_reset(commit=False)
            self.save(update_fields=["last_step", "throttling_failure_timestamp",
                                     "throttling_failure_count"])
            return True
        self.throttle_increment()
        return False


def recovery_digest(code: str) -> str:
    """Given a recovery code as typed (any case, spaces or dashes), return its stored digest."""
    normalized = "".join(character for character in code.lower() if character.isalnum())
    return hashlib.sha256(normalized.encode("ascii", errors="replace")).hexdigest()


class RecoveryDevice(ThrottlingMixin, Device):
    """A sheet of single-use recovery codes, for the day the phone is lost."""

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token: object) -> bool:
        """Given what a person typed, use the matching unused code and return whether one did."""
        allowed, _reason = self.verify_is_allowed()
        if not allowed:
            return False
        # A single UPDATE: the same code presented twice at once is used once.
        used = self.codes.filter(digest=recovery_digest(str(token)), used_at=None).update(
            used_at=Now())
        if used:
            self.throttle_reset()
            return True
        self.throttle_increment()
        return False

    def remaining(self) -> int:
        """Return how many codes are still unused."""
        return self.codes.filter(used_at=None).count()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "digest"],
                                               name="security_recovery_code_unique")]

    def __str__(self) -> str:
        return f"recovery code {self.pk} ({'used' if self.used_at else 'unused'})"
