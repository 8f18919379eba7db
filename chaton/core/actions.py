"""Every write to the API tokens.

A token's key is shown once, when it is created, and never stored: the
database keeps its SHA-256 only, and no audit row or log line ever holds it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.core import audit, clock, limits
from chaton.core.errors import Forbidden, InvalidInput
from chaton.core.models import ApiToken, Scope
from chaton.core.validation import clean_text

if TYPE_CHECKING:
    from chaton.directory.models import Account

#: last_used_at is written at most this often per token, so that a busy client
#: does not turn every read into a write.
LAST_USED_PRECISION = dt.timedelta(minutes=1)


class VoteScopeRefused(Forbidden):
    """A token that could vote was asked for by someone other than the account's owner."""

    code = "vote_scope_refused"


def default_scopes(account: Account, *, by_owner: bool) -> list[str]:
    """Return the scopes a new token of ``account`` gets when none are named: read and write,
    admin for an administrator, and vote only when its owner makes it."""
    scopes = [Scope.READ.value, Scope.WRITE.value]
    if account.is_admin:
        scopes.append(Scope.ADMIN.value)
    if by_owner:
        scopes.append(Scope.VOTE.value)
    return scopes


def do_create_api_token(account: Account, name: str, *,
                        acting_user: Account | None,
                        scopes: Collection[str] | None = None,
                        via_token: ApiToken | None = None,
                        owner_proved: bool = False) -> tuple[ApiToken, str]:
    """Given an account and a label for the token, create a token for it.

    ``acting_user`` is who creates it. The token is minted by its owner only
    when the owner proved it is them: ``owner_proved`` (the interface checked
    the account's own password, and ``acting_user`` is the account), or
    ``via_token`` (the token the request came with) is the account's own and
    was itself minted by its owner. ``scopes`` defaults to
    :func:`default_scopes`; a token made through another token never gets more
    scopes than that one.

    Return (token, key): the key is the bearer secret, to show once and forget.
    Raise InvalidInput for an empty, overlong or control-character name, an
    unknown scope, ``admin`` for a non-administrator, or an account that is
    disabled or expired (it could not use the token); VoteScopeRefused when
    anyone but the owner asks for the ``vote`` scope; Forbidden when
    ``via_token`` lacks a scope asked for.
    """
    from chaton.core import runner

    name = clean_text(name, field="name", max_length=limits.TOKEN_NAME_MAX_LENGTH)
    if not account.is_active:
        raise InvalidInput(_("A disabled or expired account cannot get an API token."),
                           field="account")
    is_owner = acting_user is not None and acting_user.pk == account.pk
    if via_token is not None:
        by_owner = (is_owner and via_token.account_id == account.pk
                    and via_token.minted_by_owner)
    else:
        by_owner = is_owner and owner_proved
    asked = default_scopes(account, by_owner=by_owner) if scopes is None else list(scopes)
    unknown = sorted(set(asked) - set(Scope.values))
    if unknown:
        raise InvalidInput(_("Unknown scope: %(names)s. Scopes are %(known)s.") % {
            "names": ", ".join(unknown), "known": ", ".join(Scope.values)}, field="scopes")
    wanted = [scope for scope in Scope.values if scope in asked]
    if not wanted:
        raise InvalidInput(_("A token needs at least one scope."), field="scopes")
    if Scope.ADMIN in wanted and not account.is_admin:
        raise InvalidInput(_("Only an administrator's token may have the “admin” scope."),
                           field="scopes")
    if Scope.VOTE in wanted and not by_owner:
        raise VoteScopeRefused(
            _("Only the member may create a token that votes, with their own credentials; "
              "a token made for someone else cannot have the “vote” scope."), field="scopes")
    if via_token is not None:
        missing = sorted(set(wanted) - set(via_token.scopes or []))
        if missing:
            raise Forbidden(_("A token cannot create a token with more rights than its own "
                              "(missing: %(names)s).") % {"names": ", ".join(missing)},
                            field="scopes")
    key, key_hash = ApiToken.new_key()
    # Should the key ever reach a log line (a traceback, a debug print), it is masked.
    runner.register_secret(key)
    with transaction.atomic():
        token = ApiToken.objects.create(account=account, name=name, key_hash=key_hash,
                                        scopes=list(wanted), created_by=acting_user,
                                        minted_by_owner=by_owner)
        audit.record("api_token.create", token, acting_user=acting_user,
                     after={"account": account.uid, "name": name, "scopes": list(wanted),
                            "minted_by_owner": by_owner,
                            "via_token": via_token.pk if via_token is not None else None})
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
