"""A forgotten password, by mail: ask for a link, open it, choose a new password.

::

    /password-reset/                     user name or email → mail (if an account can log in)
    /password-reset/sent/                the same answer whatever was typed
    /password-reset/<uid64>/<token>/     the link: checks the token, keeps it in the session,
                                         redirects to …/set-password/ so the token leaves the URL
    /password-reset/<uid64>/set-password/  the new password, twice → actions.do_set_password
    /me/password/own-link/               (signed in, POST) the same mail, to one's own address

The token is Django's ``default_token_generator``: it derives from the
password hash and the last login, so it stops working once the password
changed (the link works once) and after ``PASSWORD_RESET_TIMEOUT``. The new
password is saved by :func:`chaton.directory.actions.do_set_password`, acting
as the account itself, so it is audited and binds in the directory at once;
when someone else last set the account's email address, the link reached them
too, and the password is marked as known to others (it does not vote).
Otherwise the link reached only the owner: the password it sets is theirs
alone, and it lifts the mark a password someone else set (an administrator,
the account's creation) leaves — the way a member makes their password vote.

Nothing tells whether an account exists: the request page gives the same
answer for any text, the per-account mail limit drops mails silently, and the
per-address limit counts every request. Only a mail server failure is shown,
since the person must know that no mail will come.
"""

from __future__ import annotations

import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import (
    url_has_allowed_host_and_scheme,
    urlsafe_base64_decode,
    urlsafe_base64_encode,
)
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from chaton.adapters.notifications import NotificationError
from chaton.core import audit, throttle
from chaton.core.errors import ChatonError
from chaton.core.views import posted, show_error
from chaton.directory import actions, queries
from chaton.directory.forms import FIELD_NAMES, SetPasswordForm
from chaton.directory.models import Account, SyncState
from chaton.notifications import outbox

logger = logging.getLogger("chaton.directory")

#: Stands for the token in the URL once it is kept in the session (Django does the same).
SET_PASSWORD_STEP = "set-password"  # noqa: S105 (a URL segment, not a secret)
#: The session key that holds the token between the link and the form.
SESSION_TOKEN_KEY = "_chaton_password_reset_token"  # noqa: S105 (a key name, not a secret)


class ResetMailFailed(RuntimeError):
    """The mail server refused the reset mail or could not be reached."""


class PasswordResetRequestForm(forms.Form):
    identifier = forms.CharField(
        label=gettext_lazy("User name or email"), max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))


def _duration_text(seconds: int) -> str:
    """Given a number of seconds, return it in words: whole hours when it is, else minutes."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    count = max(1, seconds // 60)
    return ngettext("%(count)d minute", "%(count)d minutes", count) % {"count": count}


def reset_link(request: HttpRequest, account: Account) -> str:
    """Return the absolute one-time link for ``account``, on the host the request came to.

    The host is one of ALLOWED_HOSTS (Django refuses any other), so a forged
    Host header cannot send the link to someone else's site.
    """
    path = reverse("password-reset-confirm", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(account.pk)),
        "token": default_token_generator.make_token(account)})
    return request.build_absolute_uri(path)


def send_reset_mail(request: HttpRequest, account: Account) -> bool:
    """Mail ``account`` a one-time link to choose a new password, and audit the request.

    The mail is in the collective's language (``LANGUAGE_CODE``). Return False,
    sending nothing, when the account already got ``RESET_MAILS_PER_ACCOUNT``
    mails. Raise ResetMailFailed when the mail could not be handed to the
    mail server.
    """
    if throttle.retry_after(throttle.RESET_MAILS_PER_ACCOUNT, str(account.pk)) is not None:
        logger.warning("password reset mail to %s not sent: too many this hour", account.uid)
        return False
    throttle.hit(throttle.RESET_MAILS_PER_ACCOUNT, str(account.pk))
    collective = settings.CHATON.collective_name
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Choose a new password for %(collective)s") % {"collective": collective}
        body = _(
            "Hello %(name)s,\n\n"
            "Someone, probably you, asked to choose a new password for the account "
            "%(uid)s of %(collective)s. To choose it, open this link within %(duration)s:\n\n"
            "%(link)s\n\n"
            "The link works only once. If you did not ask for it, ignore this mail: "
            "your password stays as it is.\n"
        ) % {"name": account.display_name, "uid": account.uid, "collective": collective,
             "duration": _duration_text(settings.PASSWORD_RESET_TIMEOUT),
             "link": reset_link(request, account)}
    try:
        # Sent now, never queued: the link is a credential, kept in no table, and the
        # person waits on the page to know whether it left.
        outbox.send_mail_now([account.email], subject, body)
    except NotificationError as error:  # refused or unreachable: the same to the person
        logger.error("password reset mail to %s failed: %s", account.uid, error)
        raise ResetMailFailed(str(error)) from error
    acting_user = request.user if isinstance(request.user, Account) else None
    audit.record("account.password_reset_requested", account, acting_user=acting_user,
                 actor_label=None if acting_user else "anonymous",
                 after={"sent_to": account.email})
    return True


def password_reset_request(request: HttpRequest) -> HttpResponse:
    """Ask for a user name or an email; mail a link if it names an account that can log in.

    Whatever was typed, the next page says the same. Refused (with the wait)
    after ``RESET_REQUESTS_PER_ADDRESS`` requests from one address.
    """
    form = PasswordResetRequestForm(posted(request))
    if request.method == "POST" and form.is_valid():
        address = throttle.client_address(request)
        wait = throttle.retry_after(throttle.RESET_REQUESTS_PER_ADDRESS, address)
        if wait is not None:
            count = throttle.minutes(wait)
            form.add_error(None, ngettext(
                "Too many requests from your network address. Try again in %(minutes)d minute.",
                "Too many requests from your network address. Try again in %(minutes)d minutes.",
                count) % {"minutes": count})
        else:
            throttle.hit(throttle.RESET_REQUESTS_PER_ADDRESS, address)
            account = queries.account_for_recovery(form.cleaned_data["identifier"])
            try:
                # is_active: enabled and not expired, the accounts that may log in.
                if account is not None and account.is_active:
                    send_reset_mail(request, account)
            except ResetMailFailed:
                form.add_error(None, _("The mail could not be sent. Try again later, or ask "
                                       "the collective's administrators."))
            else:
                return redirect("password-reset-sent")
    return render(request, "directory/password_reset_request.html", {"form": form})


@login_required
@require_POST
def password_own_link(request: HttpRequest) -> HttpResponse:
    """Mail the signed-in account a reset link, to set a password of its own: the way a
    password someone else set (which does not vote) becomes the member's. Back to ``next``
    (a page of this site), else the account page."""
    account = request.user
    assert isinstance(account, Account)  # login_required
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("profile")
    if queries.email_set_by_other(account):
        messages.warning(request, _(
            "Your email address was set by someone else: a link mailed there would not make "
            "the password yours alone. Change your address to your own on your account page "
            "first, or ask the collective's administrators to check it."))
        return redirect(target)
    try:
        sent = send_reset_mail(request, account)
    except ResetMailFailed:
        messages.error(request, _("The mail could not be sent. Try again later, or ask the "
                                  "collective's administrators."))
    else:
        if sent:
            messages.success(request, _(
                "We mailed a link to %(email)s. Open it and choose your password: it is then "
                "yours alone, and it votes.") % {"email": account.email})
        else:
            messages.warning(request, _("Too many links were mailed to you this hour: use the "
                                        "last one, or try again later."))
    return redirect(target)


def password_reset_sent(request: HttpRequest) -> HttpResponse:
    """Say that a mail went out if an account matched, without saying whether one did."""
    return render(request, "directory/password_reset_sent.html", {
        "duration": _duration_text(settings.PASSWORD_RESET_TIMEOUT)})


def _account_from_link(uidb64: str) -> Account | None:
    """Given the account part of a link, return its account, or None if it names none."""
    try:
        account_id = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None
    return Account.objects.filter(pk=account_id).first()


def _link_works(account: Account | None, token: str) -> bool:
    """Return whether ``token`` lets ``account`` choose a new password now."""
    return (account is not None and account.is_active
            and default_token_generator.check_token(account, token))


def password_reset_confirm(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Open the link from the mail, then take the new password twice and save it.

    A link that does not work (wrong, used, expired, or its account disabled)
    gives a page saying so, with a way to ask for a new one.
    """
    account = _account_from_link(uidb64)
    if token != SET_PASSWORD_STEP:
        if not _link_works(account, token):
            return render(request, "directory/password_reset_confirm.html", {"link_works": False})
        # Keep the token out of the page's URL: it would leak through the Referer
        # header, the history, a screenshot.
        request.session[SESSION_TOKEN_KEY] = token
        return redirect("password-reset-confirm", uidb64=uidb64, token=SET_PASSWORD_STEP)
    if account is None or not _link_works(account, request.session.get(SESSION_TOKEN_KEY, "")):
        return render(request, "directory/password_reset_confirm.html", {"link_works": False})

    form = SetPasswordForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            # The link went to the account's address: if someone else set it, they
            # could have followed the link as well.
            known = queries.email_set_by_other(account)
            actions.do_set_password(account, form.cleaned_data["new_password1"],
                                    acting_user=account, known_to_others=known,
                                    from_own_mail_link=not known)
        except ChatonError as error:
            show_error(form, error, FIELD_NAMES)
        else:
            del request.session[SESSION_TOKEN_KEY]
            # Failed logins before the reset (often why it was needed) no longer lock them out.
            throttle.clear(throttle.LOGIN_PER_USER_NAME, account.uid)
            messages.success(request, _("Your password was changed. Log in with it."))
            if SyncState.get().pending_since is not None:
                messages.warning(request, _("The directory is catching up: your new password "
                                            "may take a few minutes to work on the other "
                                            "services."))
            return redirect("login")
    return render(request, "directory/password_reset_confirm.html",
                  {"link_works": True, "form": form, "account": account})
