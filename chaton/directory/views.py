"""Self-service pages (profile, password, SSH keys) and the directory administration pages.

Self-service is for any logged-in account and only ever touches that account.
Accounts, groups and the reconcile plan are for administrators
(:func:`chaton.core.views.admin_required`). Writes go through
:mod:`chaton.directory.actions`: an error is shown next to the field it names
and the form keeps what was typed (passwords excepted, on purpose).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from chaton.adapters.ldap import LdapError
from chaton.core import clock
from chaton.core.errors import ChatonError, InvalidInput
from chaton.core.views import (
    admin_required,
    error_html,
    paginate,
    posted,
    show_error,
    signed_in,
)
from chaton.directory import actions, queries, reconcile
from chaton.directory.backend import get_directory
from chaton.directory.forms import (
    FIELD_NAMES,
    AccountCreateForm,
    AccountDetailsForm,
    AccountSearchForm,
    GroupEditForm,
    GroupForm,
    GroupMemberForm,
    PasswordChangeForm,
    ReconcileForm,
    SetPasswordForm,
    SSHKeyForm,
    day_of,
    start_of_day,
)
from chaton.directory.models import Account, AccountState, Group, SyncState
from chaton.members.models import Organization, Person

# -- self-service ------------------------------------------------------------


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """Show the logged-in account: names, owner, expiry, groups with their expiry."""
    account = signed_in(request)
    return render(request, "directory/profile.html", {
        "account": account,
        "group_memberships": queries.group_memberships_of(account),
        "key_count": account.ssh_keys.count(),
    })


@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    """Change one's own password; the new one works in LDAP as soon as this returns."""
    account = signed_in(request)
    form = PasswordChangeForm(account, posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_set_password(account, form.cleaned_data["new_password1"],
                                    acting_user=account)
        except ChatonError as error:
            show_error(form, error, FIELD_NAMES)
        else:
            # The session hash derives from the password: refresh it, or this very
            # request would log the person out.
            update_session_auth_hash(request, account)
            messages.success(request, _("Your password was changed."))
            if SyncState.get().pending_since is not None:
                # Saved here, but the directory could not be written: say so plainly.
                messages.warning(request, _("The directory is catching up: your new password "
                                            "may take a few minutes to work on the other "
                                            "services."))
            return redirect("profile")
    return render(request, "directory/password_change.html", {"form": form})


@login_required
def ssh_keys(request: HttpRequest) -> HttpResponse:
    """List one's SSH keys with their fingerprints, and add one."""
    account = signed_in(request)
    form = SSHKeyForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            key = actions.do_add_ssh_key(account, form.cleaned_data["key"], acting_user=account)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The key %(fingerprint)s was added.")
                             % {"fingerprint": key.fingerprint})
            return redirect("ssh-keys")
    return render(request, "directory/ssh_keys.html",
                  {"form": form, "keys": account.ssh_keys.all()})


@login_required
@require_POST
def ssh_key_remove(request: HttpRequest, key_id: int) -> HttpResponse:
    account = signed_in(request)
    # Only one's own keys: another account's key is "not found", not "forbidden".
    key = queries.ssh_key_by_id(account, key_id)
    fingerprint = key.fingerprint
    actions.do_remove_ssh_key(key, acting_user=account)
    messages.success(request, _("The key %(fingerprint)s was removed.")
                     % {"fingerprint": fingerprint})
    return redirect("ssh-keys")


# -- accounts ----------------------------------------------------------------


@admin_required
def account_list(request: HttpRequest) -> HttpResponse:
    search = AccountSearchForm(request.GET or None)
    text, state = "", ""
    if search.is_valid():
        text, state = search.cleaned_data["q"], search.cleaned_data["state"]
    page = paginate(request, queries.search_accounts(text, state))
    return render(request, "directory/account_list.html",
                  {"search": search, "page": page, "now": clock.now()})


@admin_required
def account_create(request: HttpRequest) -> HttpResponse:
    form = AccountCreateForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = actions.do_create_account(
                data["uid"], acting_user=signed_in(request), display_name=data["display_name"],
                email=data["email"], password=data["new_password1"] or None,
                person=data["person"], organization=data["organization"],
                expires_at=start_of_day(data["expires_on"]), is_admin=data["is_admin"])
        except ChatonError as error:
            show_error(form, error, FIELD_NAMES)
        else:
            messages.success(request, _("The account %(uid)s was created.")
                             % {"uid": account.uid})
            return redirect("account-detail", account.uid)
    return render(request, "directory/account_form.html", {"form": form, "account": None})


def _account_page(request: HttpRequest, account: Account,
                  password_form: SetPasswordForm | None = None) -> HttpResponse:
    return render(request, "directory/account_detail.html", {
        "account": account,
        "group_memberships": queries.group_memberships_of(account),
        "keys": account.ssh_keys.all(),
        "password_form": password_form or SetPasswordForm(),
        "is_self": account.pk == request.user.pk,
    })


@admin_required
def account_detail(request: HttpRequest, uid: str) -> HttpResponse:
    return _account_page(request, queries.account_by_uid(uid))


def _one_owner(form: AccountDetailsForm) -> Person | Organization | None:
    """Return the form's owner; raise InvalidInput when both kinds of owner are set."""
    if form.cleaned_data.get("person") and form.cleaned_data.get("organization"):
        raise InvalidInput(_("An account has one owner: a person or an organization."),
                           field="organization")
    return form.owner()


@admin_required
def account_edit(request: HttpRequest, uid: str) -> HttpResponse:
    account = queries.account_by_uid(uid)
    form = AccountDetailsForm(posted(request), initial={
        "display_name": account.display_name, "email": account.email,
        "expires_on": day_of(account.expires_at), "is_admin": account.is_admin,
        "person": account.person_id, "organization": account.organization_id})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # An unchanged day keeps the expiry as it is (to the minute, and even when past).
        expiry = (... if data["expires_on"] == day_of(account.expires_at)
                  else start_of_day(data["expires_on"]))
        try:
            actions.do_update_account(
                account, acting_user=signed_in(request), display_name=data["display_name"],
                email=data["email"], expires_at=expiry,
                is_admin=data["is_admin"], owner=_one_owner(form))
        except ChatonError as error:
            show_error(form, error, FIELD_NAMES)
        else:
            messages.success(request, _("The changes were saved."))
            return redirect("account-detail", account.uid)
    return render(request, "directory/account_form.html", {"form": form, "account": account})


@admin_required
@require_POST
def account_state(request: HttpRequest, uid: str) -> HttpResponse:
    """Disable an active account or enable a disabled one (``state`` in the POST)."""
    account = queries.account_by_uid(uid)
    wanted = request.POST.get("state", "")
    if wanted not in AccountState.values:
        messages.error(request, _("Unknown account state."))
        return redirect("account-detail", account.uid)
    try:
        actions.do_set_state(account, AccountState(wanted), acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
    else:
        if wanted == AccountState.DISABLED:
            messages.success(request, _("%(uid)s is disabled: it left the directory.")
                             % {"uid": account.uid})
        else:
            messages.success(request, _("%(uid)s is enabled again.") % {"uid": account.uid})
    return redirect("account-detail", account.uid)


@admin_required
@require_POST
def account_password(request: HttpRequest, uid: str) -> HttpResponse:
    """Set another account's password (an administrator helping someone locked out)."""
    account = queries.account_by_uid(uid)
    form = SetPasswordForm(request.POST)
    if form.is_valid():
        try:
            actions.do_set_password(account, form.cleaned_data["new_password1"],
                                    acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error, FIELD_NAMES)
        else:
            if account.pk == request.user.pk:
                update_session_auth_hash(request, account)
            messages.success(request, _("The password of %(uid)s was set.")
                             % {"uid": account.uid})
            return redirect("account-detail", account.uid)
    return _account_page(request, account, password_form=form)


# -- groups ------------------------------------------------------------------


@admin_required
def group_list(request: HttpRequest) -> HttpResponse:
    return render(request, "directory/group_list.html",
                  {"groups": queries.groups_with_counts(clock.now())})


@admin_required
def group_create(request: HttpRequest) -> HttpResponse:
    form = GroupForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            group = actions.do_create_group(form.cleaned_data["name"],
                                            acting_user=signed_in(request),
                                            description=form.cleaned_data["description"],
                                            kind=form.cleaned_data["kind"],
                                            requires_decision=form.cleaned_data[
                                                "requires_decision"])
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The group %(name)s was created.")
                             % {"name": group.name})
            return redirect("group-detail", group.name)
    return render(request, "directory/group_form.html", {"form": form, "group": None})


def _group_page(request: HttpRequest, group: Group,
                member_form: GroupMemberForm | None = None) -> HttpResponse:
    return render(request, "directory/group_detail.html", {
        "group": group,
        "memberships": queries.group_members(group),
        "member_form": member_form or GroupMemberForm(),
        "candidates": queries.accounts_outside(group),
        "now": clock.now(),
        "grant_proposal_url": f"{reverse('decision-new')}?"
        f"{urlencode({'operation': 'group.grant', 'group': group.name})}",
    })


@admin_required
def group_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _group_page(request, queries.group_by_name(name))


@admin_required
def group_edit(request: HttpRequest, name: str) -> HttpResponse:
    group = queries.group_by_name(name)
    form = GroupEditForm(posted(request), initial={"name": group.name,
                                                   "description": group.description,
                                                   "requires_decision": group.requires_decision})
    if request.method == "POST" and form.is_valid():
        try:
            # Renaming a protected group or clearing "by decision only" raises
            # DecisionRequired: the form shows its link, and nothing is saved.
            with transaction.atomic():
                new_name = form.cleaned_data["name"].strip() or group.name
                if new_name != group.name:
                    actions.do_rename_group(group, new_name, acting_user=signed_in(request))
                actions.do_update_group(
                    group, acting_user=signed_in(request),
                    description=form.cleaned_data["description"],
                    requires_decision=form.cleaned_data["requires_decision"])
        except ChatonError as error:
            group.refresh_from_db()
            show_error(form, error)
        else:
            messages.success(request, _("The changes were saved."))
            return redirect("group-detail", group.name)
    return render(request, "directory/group_form.html", {"form": form, "group": group})


@admin_required
def group_delete(request: HttpRequest, name: str) -> HttpResponse:
    """Ask for confirmation (GET), then delete the group (POST)."""
    group = queries.group_by_name(name)
    status = 200
    if request.method == "POST":
        try:
            actions.do_delete_group(group, acting_user=signed_in(request))
        except ChatonError as error:
            # A protected group: the message links to a proposal to delete it.
            messages.error(request, error_html(error))
            status = 403
        else:
            messages.success(request, _("The group %(name)s was deleted.") % {"name": name})
            return redirect("group-list")
    return render(request, "directory/group_confirm_delete.html",
                  {"group": group, "member_count": group.memberships.count()}, status=status)


@admin_required
@require_POST
def group_member_add(request: HttpRequest, name: str) -> HttpResponse:
    """Add an account to the group, or change the expiry of its membership."""
    group = queries.group_by_name(name)
    form = GroupMemberForm(request.POST)
    if form.is_valid():
        try:
            account = queries.account_by_uid(form.cleaned_data["uid"].strip())
            actions.do_add_to_group(group, account, acting_user=signed_in(request),
                                    expires_at=start_of_day(form.cleaned_data["expires_on"]))
        except ChatonError as error:
            show_error(form, error, FIELD_NAMES)
        else:
            messages.success(request, _("%(uid)s is in %(group)s.")
                             % {"uid": account.uid, "group": group.name})
            return redirect("group-detail", group.name)
    return _group_page(request, group, member_form=form)


@admin_required
@require_POST
def group_member_remove(request: HttpRequest, name: str, uid: str) -> HttpResponse:
    group = queries.group_by_name(name)
    account = queries.account_by_uid(uid)
    try:
        actions.do_remove_from_group(group, account, acting_user=signed_in(request))
    except ChatonError as error:
        # An extraordinary removal: the message links to a proposal for it.
        messages.error(request, error_html(error))
    else:
        messages.success(request, _("%(uid)s left %(group)s.")
                         % {"uid": account.uid, "group": group.name})
    return redirect("group-detail", group.name)


# -- the reconcile plan ------------------------------------------------------


@admin_required
def directory_plan(request: HttpRequest) -> HttpResponse:
    """Show what a sync would change in LDAP (GET); apply it (POST)."""
    form = ReconcileForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            _plan, outcome = reconcile.sync_all(
                delete_foreign=form.cleaned_data["delete_foreign"])
        except LdapError as failure:
            messages.error(request, _("The directory could not be reached: %(error)s")
                           % {"error": failure})
        else:
            assert outcome is not None  # not a dry run
            if outcome.ok:
                messages.success(request, ngettext(
                    "%(count)d change was applied.", "%(count)d changes were applied.",
                    outcome.applied) % {"count": outcome.applied})
            else:
                messages.error(request, _("%(applied)d changes were applied, %(failed)d failed: "
                                          "%(error)s") % {
                    "applied": outcome.applied, "failed": len(outcome.failures),
                    "error": outcome.failures[0][1]})
        return redirect("directory-plan")
    plan: reconcile.Plan | None = None
    error: str | None = None
    try:
        plan = reconcile.plan_all(get_directory())
    except LdapError as failure:
        error = str(failure)
    return render(request, "directory/plan.html", {
        "plan": plan, "error": error, "form": form, "sync": SyncState.get(),
        "lines": _plan_lines(plan) if plan else [],
    })


def _plan_lines(plan: reconcile.Plan) -> list[tuple[str, str]]:
    """Return the plan's lines (as ``chaton directory diff`` prints them) with a CSS class each."""
    kinds = {"+": "add", "~": "modify", "-": "delete", "?": "foreign"}
    return [(kinds.get(line[:1], ""), line) for line in plan.lines()]
