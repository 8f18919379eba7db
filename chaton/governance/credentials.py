"""How a voter proved who they are: the only ways a vote can be cast.

A vote is the member's own. Each interface turns the credential it checked
into a :class:`Credential`, and :func:`chaton.governance.actions.do_vote`
accepts nothing else::

    web   the account's own signed-in session          Credential.session(account)
    API   a token with the ``vote`` scope, which only   Credential.api_token(token)
          a token its owner minted carries
    CLI   the account's password, typed or on stdin     Credential.password(account, text,
          (then its second factor's code, if enrolled)      code)
          or its own token in ``$CHATON_TOKEN``         Credential.api_token(token, "cli")

Nothing an administrator holds (a token minted for someone else, ``--as`` on
the command line, a password they set for the member, whenever they set it)
makes one: a password someone else set votes only once its owner set their own
from a reset link mailed to their own address (:class:`PasswordNotOwn`). The
vote's audit row records :meth:`Credential.as_record`: the method, the interface and the token's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.core.errors import Forbidden, Unauthorized
from chaton.core.models import ApiToken, Scope

if TYPE_CHECKING:
    from chaton.directory.models import Account


#: The credentials that rest on the account's password (a session was opened with it).
PASSWORD_METHODS = frozenset({"session", "password"})


class NotOwnCredential(Forbidden):
    """The credential is not the voter's own, or may not vote."""

    code = "not_own_credential"


class PasswordNotOwn(NotOwnCredential):
    """The credential rests on a password someone else set: it is not the member's alone."""

    code = "password_not_own"


#: Why a password someone else set does not vote, and what the member does about it.
PASSWORD_NOT_OWN_HELP = gettext_lazy(
    "Your password was set by someone else (an administrator, when your account was made, or "
    "through a reset mailed to an address someone else gave your account), so it cannot "
    "vote, nor can a token made since. Set your own password from the link we mail you: "
    "ask for it on the “Forgot your password?” page; it goes to your own address.")


@dataclass(frozen=True)
class Credential:
    """What authenticated a voter: ``method`` is session, token or password."""

    method: str
    interface: str
    account: Account
    token: ApiToken | None = None

    @classmethod
    def session(cls, account: Account) -> Credential:
        """The web session ``account`` signed in with (a login_required view's user)."""
        return cls("session", "web", account)

    @classmethod
    def api_token(cls, token: ApiToken, interface: str = "api") -> Credential:
        """The API token the request came with; :meth:`check` refuses one that may not vote."""
        return cls("token", interface, token.account, token)

    @classmethod
    def password(cls, account: Account, password: str, code: str = "") -> Credential:
        """The account's own password and, when it has enrolled one, a code of its second
        factor (an authenticator code or an unused recovery code), both checked here.

        Raise Unauthorized (field ``password``) when the password is wrong, and
        (field ``code``) when the account has a second factor and ``code`` is
        missing or not accepted by
        :func:`chaton.security.actions.verify_second_factor`.
        """
        from chaton.security import actions as security
        from chaton.security.queries import has_second_factor

        if not password or not account.has_usable_password() or not account.check_password(
                password):
            raise Unauthorized(_("The password of %(uid)s is not correct.")
                               % {"uid": account.get_username()}, field="password")
        if has_second_factor(account):
            # The password alone is what a second factor is there to be more than.
            if not code.strip():
                raise Unauthorized(_("%(uid)s has a second factor: give a code of it after "
                                     "the password.") % {"uid": account.get_username()},
                                   field="code")
            if security.verify_second_factor(account, code) is None:
                raise Unauthorized(_("The second-factor code of %(uid)s is not correct.")
                                   % {"uid": account.get_username()}, field="code")
        return cls("password", "cli", account)

    @classmethod
    def demo(cls, account: Account) -> Credential:
        """The invented votes of the demo collective (``chaton demo``), recorded as such."""
        return cls("demo", "demo", account)

    def check(self, voter: Account) -> None:
        """Raise NotOwnCredential unless this credential is ``voter``'s own and may vote."""
        if self.account.pk != voter.pk:
            raise NotOwnCredential(_("A vote is cast only with the voter's own credentials."))
        token = self.token
        if token is not None and (token.account_id != voter.pk
                                  or not token.allows(Scope.VOTE)):
            raise NotOwnCredential(_("This token may not vote: only a token with the “vote” "
                                     "scope, created by its owner, may."))

    def as_record(self) -> dict[str, Any]:
        """What the audit row of a vote keeps of it."""
        record: dict[str, Any] = {"method": self.method, "interface": self.interface}
        if self.token is not None:
            record["token"] = self.token.pk
        return record
