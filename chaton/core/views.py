"""Pages every part of the web UI shares: the home redirect, the audit log, and web helpers.

The helpers here are what the other apps' views use to stay small:
:func:`admin_required` (403 for a non-admin), :func:`show_error` (an action's
error next to the right form field, its link clickable: :func:`error_html`) and
:func:`paginate`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from chaton.core import queries
from chaton.core.errors import ChatonError

if TYPE_CHECKING:
    from chaton.directory.models import Account

#: Rows on one page of a list.
PAGE_SIZE = 50

ViewFunction = TypeVar("ViewFunction", bound=Callable[..., HttpResponse])


def admin_required(view: ViewFunction) -> ViewFunction:
    """Wrap a view so that it sends anonymous visitors to the login page and others to 403.

    Only an account with ``is_admin`` whose session passed a second factor gets
    through: an administrator without one is sent to set it up (a password
    alone does not open administration).
    """

    @login_required
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not queries.is_administrator(request.user):
            raise PermissionDenied(_("This page is for administrators."))
        if not queries.passed_second_factor(request.user):
            target = reverse("two-factor")
            return HttpResponseRedirect(
                f"{target}?{urllib.parse.urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return guarded  # type: ignore[return-value]


def signed_in(request: HttpRequest) -> Account:
    """Return the account behind a request that a login_required view already let through."""
    return cast("Account", request.user)


def posted(request: HttpRequest) -> QueryDict | None:
    """Return the POST data of a POST request (even when empty), else None: a form's data."""
    return request.POST if request.method == "POST" else None


def error_html(error: ChatonError) -> str:
    """Given an action's error, return its message for a page.

    When the error carries a link (``error.params["link"]``: the prefilled
    proposal of a refused extraordinary action), return escaped HTML in which
    that link is clickable; otherwise the plain message, escaped when shown.
    """
    message = str(error.message)
    link = error.params.get("link")
    if not isinstance(link, str) or not link:
        return message
    before, found, after = message.partition(link)
    if found:
        return format_html('{}<a href="{}">{}</a>{}', before, link, link, after)
    return format_html('{} <a href="{}">{}</a>', message, link, link)


def show_error(form: forms.Form, error: ChatonError,
               field_names: Mapping[str, str] | None = None) -> None:
    """Given a bound form and an action's error, put the message next to the field it names.

    ``field_names`` maps an action's field name to the form's when they differ
    (``password`` → ``new_password1``). An error naming no field of the form is
    shown above the form. A link the error carries is shown clickable
    (:func:`error_html`).
    """
    name = (field_names or {}).get(error.field or "", error.field)
    form.add_error(name if name in form.fields else None, error_html(error))


def paginate(request: HttpRequest, rows: QuerySet[Any], size: int = PAGE_SIZE) -> Page[Any]:
    """Return the page of ``rows`` that ``?page=`` asks for (the last one when out of range)."""
    return Paginator(rows, size).get_page(request.GET.get("page"))


def landing_url(user: Any) -> str:
    """Return where ``user`` lands after login: an administrator whose session passed a
    second factor, on the overview (when the monitoring app provides one); anyone else, on
    their account."""
    if queries.is_administrator(user) and queries.passed_second_factor(user):
        try:
            return reverse("overview")
        except NoReverseMatch:
            pass
    return reverse("profile")


def home(request: HttpRequest) -> HttpResponseRedirect:
    """Send a logged-in person to their landing page (:func:`landing_url`), anyone else to
    the login page."""
    if not request.user.is_authenticated:
        return redirect("login")
    return HttpResponseRedirect(landing_url(request.user))


class LoginView(auth_views.LoginView):
    """Django's login page, landing on :func:`landing_url` when no ``next`` is given.

    An administrator is sent home, which picks the landing once the second step
    (if any) is passed: at this point the session has not passed it yet.
    """

    def get_default_redirect_url(self) -> str:
        if queries.is_administrator(self.request.user):
            return reverse("home")
        return landing_url(self.request.user)


def audit_changes(before: dict[str, Any] | None, after: dict[str, Any] | None
                  ) -> list[tuple[str, str, str]]:
    """Given an audit row's before and after values, return (name, before, after) per key.

    A key missing on one side gives an empty string there.
    """
    before, after = before or {}, after or {}
    names = list(before) + [name for name in after if name not in before]

    def text(values: dict[str, Any], name: str) -> str:
        return "" if name not in values or values[name] is None else str(values[name])

    return [(name, text(before, name), text(after, name)) for name in names]


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), required=False)

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["action"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("all actions")), *((name, name) for name in actions)]


@login_required
def my_tokens(request: HttpRequest) -> HttpResponse:
    """List one's API tokens and create one; the new key is shown on this answer only.

    The signed-in session is the owner's own credential: a token made here is
    minted by its owner, so it may carry the ``vote`` scope.
    """
    from django.contrib import messages

    from chaton.core.actions import do_create_api_token
    from chaton.core.forms import MyTokenForm
    from chaton.core.models import ApiToken, Scope

    account = signed_in(request)
    form = MyTokenForm(posted(request), is_admin=account.is_admin)
    key = None
    if request.method == "POST" and form.is_valid():
        if Scope.ADMIN in form.cleaned_data["scopes"] and not queries.passed_second_factor(
                request.user):
            # Administrative rights need the second factor, here as on the API.
            form.add_error("scopes", _("Set up a second factor (My account → Two-step login) "
                                       "before creating API tokens."))
            return render(request, "core/my_tokens.html",
                          {"form": form, "tokens": ApiToken.objects.filter(account=account),
                           "key": None})
        try:
            _token, key = do_create_api_token(account, form.cleaned_data["name"],
                                              acting_user=account, owner_proved=True,
                                              scopes=form.cleaned_data["scopes"])
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The token is created. Copy its key now: it is shown "
                                        "only this once."))
            form = MyTokenForm(is_admin=account.is_admin)
    tokens = ApiToken.objects.filter(account=account).order_by("created_at", "id")
    return render(request, "core/my_tokens.html", {"form": form, "tokens": tokens, "key": key})


@login_required
def my_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of one's own tokens (POST only); another account's token is not found."""
    from django.contrib import messages
    from django.http import HttpResponseNotAllowed
    from django.shortcuts import get_object_or_404

    from chaton.core.actions import do_revoke_api_token
    from chaton.core.models import ApiToken

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    account = signed_in(request)
    token = get_object_or_404(ApiToken, pk=token_id, account=account)
    do_revoke_api_token(token, acting_user=account)
    messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("my-tokens")


@admin_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """List the audit log, newest first, optionally only one action."""
    form = AuditFilterForm(request.GET or None, actions=queries.audit_actions())
    action = form.cleaned_data["action"] if form.is_valid() else ""
    page = paginate(request, queries.audit_entries(action))
    for entry in page:
        entry.changes = audit_changes(entry.before, entry.after)
    return render(request, "core/audit_log.html", {"form": form, "page": page})
