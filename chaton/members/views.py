"""Administration pages for persons, organizations, memberships, dues and member counts.

Every page here is for administrators only (:func:`chaton.core.views.admin_required`).
Writes go through :mod:`chaton.members.actions`; an action's error is shown
next to the field it names, and the form keeps what was typed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from chaton.core import clock
from chaton.core.charts import Series, stacked_bars
from chaton.core.errors import ChatonError
from chaton.core.views import admin_required, paginate, posted, show_error, signed_in
from chaton.members import actions, queries
from chaton.members.forms import (
    DuesForm,
    EndMembershipForm,
    MemberCountsForm,
    OrganizationEditForm,
    OrganizationForm,
    PersonForm,
    SearchForm,
    StartMembershipForm,
)
from chaton.members.models import Membership, Organization, Person

#: Bound forms that failed, keyed by (form name, membership id), to show again with their errors.
FailedForms = dict[tuple[str, int], forms.Form]


def _with_current_memberships(rows: QuerySet[Any]) -> QuerySet[Any]:
    """Given persons or organizations, fetch their current memberships and accounts in 2 queries."""
    current = Membership.objects.current(clock.today())
    return rows.prefetch_related(
        Prefetch("memberships", queryset=current, to_attr="current_memberships"), "accounts")


# -- persons -----------------------------------------------------------------


@admin_required
def person_list(request: HttpRequest) -> HttpResponse:
    """List persons, searched by name or email, one page at a time."""
    search = SearchForm(request.GET or None)
    text = search.cleaned_data["q"] if search.is_valid() else ""
    page = paginate(request, _with_current_memberships(queries.search_people(text)))
    return render(request, "members/person_list.html", {"search": search, "page": page})


@admin_required
def person_create(request: HttpRequest) -> HttpResponse:
    form = PersonForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            person = actions.do_create_person(
                form.cleaned_data["full_name"], form.cleaned_data["email"],
                phone=form.cleaned_data["phone"], acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("%(name)s was added.") % {"name": person})
            return redirect("person-detail", person.pk)
    return render(request, "members/person_form.html", {"form": form, "person": None})


@admin_required
def person_edit(request: HttpRequest, person_id: int) -> HttpResponse:
    person = queries.person_by_id(person_id)
    initial = {"full_name": person.full_name, "email": person.email, "phone": person.phone}
    form = PersonForm(posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_person(person, acting_user=signed_in(request), **form.cleaned_data)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The changes were saved."))
            return redirect("person-detail", person.pk)
    return render(request, "members/person_form.html", {"form": form, "person": person})


def _member_page(request: HttpRequest, member: Person | Organization, *,
                 start_form: forms.Form | None = None, failed: FailedForms | None = None
                 ) -> HttpResponse:
    """Render a person's or an organization's page with its memberships, dues and accounts.

    ``start_form`` and ``failed`` are bound forms to show again with their errors.
    """
    failed = failed or {}
    today = clock.today()
    memberships = list(member.memberships.prefetch_related("dues"))
    for membership in memberships:
        # Attributes on the row, because templates cannot look up a dict by a variable.
        end_form = failed.get(("end", membership.pk)) or EndMembershipForm(
            prefix=f"end-{membership.pk}", initial={"ends_on": today})
        dues_form = failed.get(("dues", membership.pk)) or DuesForm(
            prefix=f"dues-{membership.pk}", initial={"paid_on": today})
        membership.end_form = end_form  # type: ignore[attr-defined]
        membership.dues_form = dues_form  # type: ignore[attr-defined]
        membership.current = membership.is_current(today)  # type: ignore[attr-defined]
    is_person = isinstance(member, Person)
    context = {
        "member": member,
        "memberships": memberships,
        "accounts": member.accounts.all(),
        "start_form": start_form or StartMembershipForm(initial={"starts_on": today}),
        "start_url_name": "person-start-membership" if is_person
        else "organization-start-membership",
    }
    template = "members/person_detail.html" if is_person else "members/organization_detail.html"
    return render(request, template, context)


@admin_required
def person_detail(request: HttpRequest, person_id: int) -> HttpResponse:
    return _member_page(request, queries.person_by_id(person_id))


def _start_membership(request: HttpRequest, member: Person | Organization) -> HttpResponse:
    form = StartMembershipForm(request.POST)
    if form.is_valid():
        try:
            actions.do_start_membership(member, acting_user=signed_in(request), **form.cleaned_data)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The membership was recorded."))
            return redirect(_member_url_name(member), member.pk)
    return _member_page(request, member, start_form=form)


def _member_url_name(member: Person | Organization) -> str:
    return "person-detail" if isinstance(member, Person) else "organization-detail"


@admin_required
@require_POST
def person_start_membership(request: HttpRequest, person_id: int) -> HttpResponse:
    return _start_membership(request, queries.person_by_id(person_id))


@admin_required
@require_POST
def membership_end(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Set the last day of a membership, then go back to its member's page."""
    membership = queries.membership_by_id(membership_id)
    form = EndMembershipForm(request.POST, prefix=f"end-{membership.pk}")
    if form.is_valid():
        try:
            decision = actions.do_end_membership_ordinarily(
                membership, form.cleaned_data["ends_on"], acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The membership ends on %(date)s: ordinary action "
                                        "#%(number)d, announced, open to a counter-vote.")
                             % {"date": form.cleaned_data["ends_on"], "number": decision.pk})
            return redirect(_member_url_name(membership.member), membership.member.pk)
    return _member_page(request, membership.member, failed={("end", membership.pk): form})


@admin_required
@require_POST
def membership_dues(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Record a dues payment on a membership, then go back to its member's page."""
    membership = queries.membership_by_id(membership_id)
    form = DuesForm(request.POST, prefix=f"dues-{membership.pk}")
    if form.is_valid():
        try:
            payment = actions.do_record_dues(membership, form.cleaned_data["amount"],
                                             form.cleaned_data["paid_on"],
                                             acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("A payment of %(amount)s € was recorded.")
                             % {"amount": payment.amount})
            return redirect(_member_url_name(membership.member), membership.member.pk)
    return _member_page(request, membership.member, failed={("dues", membership.pk): form})


# -- organizations -----------------------------------------------------------


@admin_required
def organization_list(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET or None)
    text = search.cleaned_data["q"] if search.is_valid() else ""
    page = paginate(request, _with_current_memberships(queries.search_organizations(text)))
    return render(request, "members/organization_list.html", {"search": search, "page": page})


@admin_required
def organization_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            organization = actions.do_create_organization(
                form.cleaned_data["name"], form.cleaned_data["email"],
                slug=form.cleaned_data["slug"], acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("%(name)s was added.") % {"name": organization})
            return redirect("organization-detail", organization.pk)
    return render(request, "members/organization_form.html",
                  {"form": form, "organization": None})


@admin_required
def organization_edit(request: HttpRequest, organization_id: int) -> HttpResponse:
    organization = queries.organization_by_id(organization_id)
    form = OrganizationEditForm(posted(request),
                                initial={"name": organization.name, "email": organization.email})
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_organization(organization, acting_user=signed_in(request),
                                           **form.cleaned_data)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The changes were saved."))
            return redirect("organization-detail", organization.pk)
    return render(request, "members/organization_form.html",
                  {"form": form, "organization": organization})


@admin_required
def organization_detail(request: HttpRequest, organization_id: int) -> HttpResponse:
    return _member_page(request, queries.organization_by_id(organization_id))


@admin_required
@require_POST
def organization_start_membership(request: HttpRequest, organization_id: int) -> HttpResponse:
    return _start_membership(request, queries.organization_by_id(organization_id))


# -- counts ------------------------------------------------------------------


def counts_sentence(natural: int, legal: int) -> str:
    """Return e.g. "28 natural persons and 2 legal persons", plurals right in each language."""
    natural_text = ngettext("%(count)d natural person", "%(count)d natural persons",
                            natural) % {"count": natural}
    legal_text = ngettext("%(count)d legal person", "%(count)d legal persons",
                          legal) % {"count": legal}
    return _("%(natural)s and %(legal)s") % {"natural": natural_text, "legal": legal_text}


@admin_required
def member_counts(request: HttpRequest) -> HttpResponse:
    """Count members on a day (today by default) or over a period."""
    form = MemberCountsForm(request.GET or None, initial={"start": clock.today()})
    start, end = clock.today(), None
    if request.GET:
        if form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        else:
            return render(request, "members/member_counts.html", {"form": form})
    counts = queries.member_counts(start, end)
    history = queries.member_history(queries.month_starts(end or start))
    chart = stacked_bars(
        [formats.date_format(point["day"], "N y") for point in history],
        [Series(_("Natural persons"), [point["natural"] for point in history], "#2f6f5e"),
         Series(_("Legal persons"), [point["legal"] for point in history], "#e0a526")],
        title=_("Members on the first day of each month"))
    return render(request, "members/member_counts.html", {
        "form": form, "counts": counts, "start": start, "end": end, "chart": chart,
        "sentence": counts_sentence(counts["natural"]["total"], counts["legal"]["total"]),
    })
