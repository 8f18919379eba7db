"""Reads about second factors: who has one, how many recovery codes are left."""

from __future__ import annotations

from typing import Any

from chaton.security.models import RecoveryDevice, TotpDevice


def has_second_factor(account: Any) -> bool:
    """Given an account, return whether it has a confirmed authenticator."""
    return TotpDevice.objects.filter(user=account, confirmed=True).exists()


def recovery_codes_left(account: Any) -> int:
    """Given an account, return how many unused recovery codes it has."""
    device = RecoveryDevice.objects.filter(user=account, confirmed=True).first()
    return device.remaining() if device is not None else 0
