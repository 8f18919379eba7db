"""Every write to the API tokens.

A token's key is shown once, when it is created, and never stored: the
database keeps its SHA-256 only, and no audit row or log line ever holds it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.core import audit, clock, limits
from chaton.core.errors import InvalidInput
from chaton.core.models import ApiToken

if TYPE_CHECKING:
    from chaton.directory.models import Account

#: last_used_at is written at most this often per token, so that a busy client
#: does not turn every read into a write.
LAST_USED_PRECISION = dt.timedelta(minutes=1)


def do_create_api_token(account: Account, name: str, *,
                        acting_user: Account | None) -> tuple[ApiToken, str]:
    """Given an account and a label for the token, create a token for it.

    Return (token, key): the key is the bearer secret, to show once and forget.
    Raise InvalidInput for an empty, overlong or control-character name, or for
    an account that is disabled or expired (it could not use the token).
    """
    from chaton.core import runner
    from chaton.directory.validation import clean_text

    name = clean_text(name, field="name", max_length=limits.TOKEN_NAME_MAX_LENGTH)
    if not account.is_active:
        raise InvalidInput(_("A disabled or expired account cannot get an API token."),
                           field="account")
    key, key_hash = ApiToken.new_key()
    # Should the key ever reach a log line (a traceback, a debug print), it is masked.
    runner.register_secret(key)
    with transaction.atomic():
        token = ApiToken.objects.create(account=account, name=name, key_hash=key_hash)
        audit.record("api_token.create", token, acting_user=acting_user,
                     after={"account": account.uid, "name": name})
    return token, key


def do_revoke_api_token(token: ApiToken, *, acting_user: Account | None) -> None:
    """Delete ``token``: the next request that presents its key gets 401."""
    with transaction.atomic():
        audit.record("api_token.revoke", token, acting_user=acting_user,
                     before={"account": token.account.uid, "name": token.name})
        token.delete()


def note_api_token_use(token: ApiToken) -> None:
    """Record that ``token`` was just used, at most once per LAST_USED_PRECISION.

    Bookkeeping, not a change of state: no audit row, one UPDATE at most.
    """
    now = clock.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_PRECISION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
