"""Every write to second factors: enrol an authenticator, recovery codes, verification, removal.

A person enrols by scanning a new secret and typing one code from it: only then
is the authenticator confirmed and a sheet of recovery codes made, shown once.
Every change writes an audit row; no secret or code ever reaches one.
"""

from __future__ import annotations

import base64
import secrets as random
import urllib.parse
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.models import Device

from chaton.core import audit, secrets
from chaton.core.errors import InvalidInput
from chaton.security.models import RecoveryCode, RecoveryDevice, TotpDevice, recovery_digest

if TYPE_CHECKING:
    from chaton.directory.models import Account

#: Codes on a recovery sheet, and the bytes of randomness behind each (10 base32 letters).
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 7
#: The size of a new TOTP secret (RFC 4226 recommends 160 bits).
TOTP_KEY_BYTES = 20


def do_begin_totp_enrollment(account: Account) -> TotpDevice:
    """Given an account, return a new unconfirmed authenticator with a fresh secret.

    Earlier unconfirmed ones are dropped: only the last secret shown can be confirmed.
    """
    with transaction.atomic():
        TotpDevice.objects.filter(user=account, confirmed=False).delete()
        return TotpDevice.objects.create(
            user=account, name="authenticator", confirmed=False,
            encrypted_key=secrets.encrypt(random.token_bytes(TOTP_KEY_BYTES).hex()))


def provisioning_uri(device: TotpDevice, issuer: str) -> str:
    """Given an authenticator and the collective's name, return the ``otpauth://`` URI to scan."""
    secret = base64.b32encode(device.key()).decode("ascii").rstrip("=")
    label = urllib.parse.quote(f"{issuer}:{device.user.get_username()}")
    query = urllib.parse.urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                                    "digits": 6, "period": 30})
    return f"otpauth://totp/{label}?{query}"


def readable_secret(device: TotpDevice) -> str:
    """Given an authenticator, return its secret in base32 groups of four, to type by hand."""
    secret = base64.b32encode(device.key()).decode("ascii").rstrip("=")
    return " ".join(secret[index:index + 4] for index in range(0, len(secret), 4))


def _new_recovery_codes(account: Account) -> list[str]:
    """Replace the account's recovery sheet; return the new codes (the only time they exist)."""
    RecoveryDevice.objects.filter(user=account).delete()
    device = RecoveryDevice.objects.create(user=account, name="recovery codes", confirmed=True)
    codes = []
    for _index in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(random.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii")
        code = f"{raw[:5]}-{raw[5:10]}".lower()
        codes.append(code)
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, digest=recovery_digest(code)) for code in codes)
    return codes


def do_confirm_totp(device: TotpDevice, code: str, *, acting_user: Account) -> list[str]:
    """Given an unconfirmed authenticator and a code it shows, confirm it.

    The account's earlier authenticator is replaced. Return the new recovery
    codes, to show once. Raise InvalidInput (field ``code``) for a wrong code.
    """
    if device.confirmed or not device.verify_token(code):
        raise InvalidInput(_("This code is not the one your app shows. Check that the "
                             "phone's clock is right and type the current code."), field="code")
    account = device.user
    with transaction.atomic():
        replaced = TotpDevice.objects.filter(user=account, confirmed=True).exclude(pk=device.pk)
        had_one = replaced.exists()
        replaced.delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(account)
        audit.record("second_factor.enroll", account, acting_user=acting_user,
                     after={"account": account.uid, "replaced": had_one,
                            "recovery_codes": len(codes)})
    return codes


def do_regenerate_recovery_codes(account: Account, *, acting_user: Account) -> list[str]:
    """Given an account with an authenticator, replace its recovery codes; return the new ones.

    Raise InvalidInput when it has no authenticator (codes alone are not a second factor).
    """
    if not TotpDevice.objects.filter(user=account, confirmed=True).exists():
        raise InvalidInput(_("Set up an authenticator app first."), field="code")
    with transaction.atomic():
        codes = _new_recovery_codes(account)
        audit.record("second_factor.recovery_codes", account, acting_user=acting_user,
                     after={"account": account.uid, "recovery_codes": len(codes)})
    return codes


def do_remove_second_factor(account: Account, *, acting_user: Account | None) -> int:
    """Remove the account's authenticator and recovery codes (a lost phone and lost sheet).

    An administrator then has to enrol again before using administration. The
    account's tokens that carry the ``admin`` scope are revoked too (each with
    its own audit row): they were made while a second factor guarded the
    account, and would otherwise outlive it. Return how many were revoked.
    """
    from chaton.core.actions import do_revoke_api_token
    from chaton.core.models import ApiToken, Scope

    with transaction.atomic():
        removed = TotpDevice.objects.filter(user=account).delete()[0]
        RecoveryDevice.objects.filter(user=account).delete()
        administering = [token for token in ApiToken.objects.filter(account=account)
                         .select_related("account").order_by("pk")
                         if token.allows(Scope.ADMIN)]
        for token in administering:
            do_revoke_api_token(token, acting_user=acting_user)
        audit.record("second_factor.remove", account, acting_user=acting_user,
                     before={"account": account.uid, "authenticators": removed},
                     after={"admin_tokens_revoked": len(administering)})
        return len(administering)


def verify_second_factor(account: Account, code: str) -> Device | None:
    """Given an account and what it typed, return the device that accepted it, or None.

    A six-digit code is tried on the authenticator, anything else on the
    recovery codes; a recovery code, once used, is gone and leaves an audit row.
    """
    text = code.strip()
    authenticator = TotpDevice.objects.filter(user=account, confirmed=True).first()
    if authenticator is not None and text.replace(" ", "").isdigit():
        return authenticator if authenticator.verify_token(text) else None
    recovery = RecoveryDevice.objects.filter(user=account, confirmed=True).first()
    if authenticator is None or recovery is None or not recovery.verify_token(text):
        return None
    audit.record("second_factor.recovery_code_used", account, acting_user=account,
                 after={"account": account.uid, "left": recovery.remaining()})
    return recovery
