"""The recovery kit's pages: ``/backups/recovery-kit/`` (password asked again) and its receipt.

The kit holds every repository's password and Chaton's secrets key: an
administrator's open session is not enough to see it. The page asks for the
password again (failures count against the login throttle of that user name),
then shows the kit once, in the response to that POST, marked ``no-store`` so
that no cache keeps it; each showing is audited
(:func:`chaton.backups.recovery.do_show_recovery_kit`). Nothing of the kit is
logged or stored.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from chaton.backups import recovery
from chaton.core import throttle
from chaton.core.errors import ChatonError
from chaton.core.views import admin_required, error_html, posted, signed_in


class ReauthenticationForm(forms.Form):
    """The signed-in administrator's own password, typed again."""

    password = forms.CharField(label=gettext_lazy("Your password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete":
                                                                 "current-password"}))

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        account = signed_in(self.request)
        user_name = account.get_username()
        wait = throttle.retry_after(throttle.LOGIN_PER_USER_NAME, user_name)
        if wait is not None:
            count = throttle.minutes(wait)
            raise forms.ValidationError(
                ngettext("Too many failed attempts. Try again in %(minutes)d minute.",
                         "Too many failed attempts. Try again in %(minutes)d minutes.", count)
                % {"minutes": count}, code="throttled")
        password: str = self.cleaned_data["password"]
        if not account.check_password(password):
            throttle.hit(throttle.LOGIN_PER_USER_NAME, user_name)
            raise forms.ValidationError(_("This is not your password."), code="wrong")
        throttle.clear(throttle.LOGIN_PER_USER_NAME, user_name)
        return password


@never_cache
@admin_required
def recovery_kit(request: HttpRequest) -> HttpResponse:
    """Ask for the password again; once typed, show the kit (audited), printable."""
    form = ReauthenticationForm(posted(request), request=request)
    if request.method == "POST" and form.is_valid():
        kit = recovery.do_show_recovery_kit(acting_user=signed_in(request), via="web")
        response = render(request, "backups/recovery_kit.html", {
            "kit": kit,
            "repositories": [{
                "repository": repository,
                "environment": recovery.environment_lines(repository),
                "commands": recovery.restic_commands(repository),
                "restore": recovery.restore_command(kit, repository)
                if recovery.holds_chaton(repository) else [],
            } for repository in kit.repositories],
        })
        response["Cache-Control"] = "no-store"
        return response
    return render(request, "backups/recovery_kit_reauth.html", {
        "form": form, "last_stored": recovery.last_stored(),
        "needs_confirmation": recovery.needs_confirmation()})


@require_POST
@admin_required
def recovery_kit_stored(request: HttpRequest) -> HttpResponse:
    """Record that the current kit is stored off the server (the warning goes away)."""
    try:
        recovery.do_confirm_recovery_kit_stored(acting_user=signed_in(request), via="web")
    except ChatonError as error:
        messages.error(request, error_html(error))
        return redirect("backup-recovery-kit")
    messages.success(request, _("Recorded: the recovery kit is stored off the server."))
    return redirect("backup-overview")
