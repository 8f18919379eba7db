"""The login form: Django's, with the brute-force throttle of :mod:`chaton.core.throttle`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import ngettext

from chaton.core import throttle


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing a user name or an address after too many failures.

    Before the password is even checked (so the refusal holds with the right
    password, and a flood costs no argon2 work), it refuses a user name with
    ``LOGIN_PER_USER_NAME`` recent failures and an address with
    ``LOGIN_PER_ADDRESS``. A failure counts for both; a success clears the user
    name's count (not the address's: one right password must not reopen an
    address that tried many names).
    """

    def clean(self) -> dict[str, Any]:
        user_name = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if user_name is None or not password:
            # A field is missing: Django's form reports it, nothing was tried.
            return super().clean()
        address = throttle.client_address(self.request) if self.request is not None else None
        self._refuse_if_throttled(user_name, address)
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.hit(throttle.LOGIN_PER_USER_NAME, user_name)
            if address is not None:
                throttle.hit(throttle.LOGIN_PER_ADDRESS, address)
            raise
        throttle.clear(throttle.LOGIN_PER_USER_NAME, user_name)
        return cleaned

    def _refuse_if_throttled(self, user_name: str, address: str | None) -> None:
        """Raise ValidationError (code ``throttled``) if the user name or address is refused."""
        wait = throttle.retry_after(throttle.LOGIN_PER_USER_NAME, user_name)
        if wait is not None:
            count = throttle.minutes(wait)
            raise forms.ValidationError(
                ngettext("Too many failed logins for this user name. Try again in %(minutes)d "
                         "minute, or reset your password.",
                         "Too many failed logins for this user name. Try again in %(minutes)d "
                         "minutes, or reset your password.", count) % {"minutes": count},
                code="throttled")
        wait = throttle.retry_after(throttle.LOGIN_PER_ADDRESS, address) if address else None
        if wait is not None:
            count = throttle.minutes(wait)
            raise forms.ValidationError(
                ngettext("Too many failed logins from your network address. Try again in "
                         "%(minutes)d minute.",
                         "Too many failed logins from your network address. Try again in "
                         "%(minutes)d minutes.", count) % {"minutes": count},
                code="throttled")
