"""Pages of the second factor: enrol an authenticator, see and renew recovery codes, the
second login step."""

from __future__ import annotations

import segno
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django_otp import login as otp_login

from chaton.core import queries as core_queries
from chaton.core.errors import ChatonError
from chaton.core.views import posted, show_error, signed_in
from chaton.security import actions, queries
from chaton.security.forms import CodeForm, ConfirmForm
from chaton.security.models import TotpDevice


def _safe_next(request: HttpRequest) -> str:
    """Return the ``next`` the request carries when it stays on this site, else the home page."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse("home")


def _qr_svg(uri: str) -> str:
    """Given an ``otpauth://`` URI, return an inline SVG of its QR code."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, dark="#1d1d1f", light="#ffffff"))


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Show the account's second factor; enrol (or replace) an authenticator; renew codes."""
    account = signed_in(request)
    context: dict[str, object] = {
        "current": "two-factor", "next": _safe_next(request),
        "enrolled": queries.has_second_factor(account),
        "codes_left": queries.recovery_codes_left(account),
        "required": account.is_admin, "next_given": bool(request.GET.get("next")),
    }
    step = request.POST.get("step") if request.method == "POST" else None
    if step == "begin":
        device = actions.do_begin_totp_enrollment(account)
        return _enrollment(request, device, ConfirmForm(), context)
    if step == "confirm":
        device = TotpDevice.objects.filter(user=account, confirmed=False).first()
        if device is None:
            return render(request, "security/two_factor.html", context)
        form = ConfirmForm(posted(request))
        if form.is_valid():
            try:
                codes = actions.do_confirm_totp(device, form.cleaned_data["code"],
                                                acting_user=account)
            except ChatonError as error:
                show_error(form, error)
            else:
                device.refresh_from_db()
                otp_login(request, device)
                return render(request, "security/recovery_codes.html",
                              {**context, "codes": codes, "enrolled": True})
        return _enrollment(request, device, form, context)
    if step == "codes" and context["enrolled"]:
        codes = actions.do_regenerate_recovery_codes(account, acting_user=account)
        return render(request, "security/recovery_codes.html", {**context, "codes": codes})
    return render(request, "security/two_factor.html", context)


def _enrollment(request: HttpRequest, device: TotpDevice, form: ConfirmForm,
                context: dict[str, object]) -> HttpResponse:
    uri = actions.provisioning_uri(device, settings.CHATON.collective_name)
    return render(request, "security/enroll.html", {
        **context, "form": form, "qr_svg": _qr_svg(uri),
        "secret": actions.readable_secret(device)})


@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """The second login step: a code from the app, or a recovery code, opens the session."""
    account = signed_in(request)
    if core_queries.passed_second_factor(account) or not queries.has_second_factor(account):
        return HttpResponseRedirect(_safe_next(request))
    form = CodeForm(posted(request))
    if form.is_valid():
        device = actions.verify_second_factor(account, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            return HttpResponseRedirect(_safe_next(request))
        form.add_error("code", _("This code is not valid, or it was already used. Wait for "
                                 "the next code, or use a recovery code."))
    return render(request, "security/verify.html",
                  {"form": form, "next": _safe_next(request), "current": "two-factor"})
