"""Test helpers for the second factor: enrol an account as a person would, and log a test
client in with both steps done.

The codes come from the device's own secret, computed as an authenticator app
does (RFC 6238), so the helpers go through the same verification as a person.
"""

from __future__ import annotations

import time
from typing import Any

from django_otp import DEVICE_ID_SESSION_KEY

from chaton.security import actions
from chaton.security.models import TOTP_STEP, TotpDevice


def code_for(device: TotpDevice) -> str:
    """Given an authenticator, return a code it accepts now: the current step's, or the next
    one's when the current code was already used."""
    device.refresh_from_db()
    at = max(time.time(), (device.last_step + 1) * TOTP_STEP)
    return f"{device.totp(at).token():06d}"


def enroll(account: Any) -> tuple[TotpDevice, list[str]]:
    """Given an account, enrol an authenticator for it; return the device and recovery codes."""
    device = actions.do_begin_totp_enrollment(account)
    codes = actions.do_confirm_totp(device, code_for(device), acting_user=account)
    device.refresh_from_db()
    return device, codes


def login_with_second_factor(client: Any, account: Any) -> Any:
    """Given a Django test client and an account, log it in with its second factor passed
    (enrolling one if it has none); return the client."""
    device = TotpDevice.objects.filter(user=account, confirmed=True).first()
    if device is None:
        device, _codes = enroll(account)
    client.force_login(account)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
