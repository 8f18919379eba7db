"""The transparency pages.

Public (no login, no JavaScript): the ChatonsInfos files at
``/.well-known/chatonsinfos/``, the page ``/transparency/``, the software list
(page and text). Administrators: the profile's settings page and the register
of authority requests. The public pages show only the published text of a
request, never what was asked or answered.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_GET

from chaton.core import clock
from chaton.core.errors import ChatonError
from chaton.core.views import admin_required, posted, show_error, signed_in
from chaton.reports import queries as report_queries
from chaton.services.models import Host
from chaton.transparency import actions, chatonsinfos, queries, software
from chaton.transparency.forms import (
    AnswerForm,
    HostFactsForm,
    ProfileForm,
    PublishForm,
    RequestForm,
)
from chaton.transparency.models import AuthorityRequest, HostFacts

LANGUAGES = ("fr", "en")
TEXT = "text/plain; charset=UTF-8"


def _language(request: HttpRequest) -> str:
    """``?lang=fr|en`` when given (a plain link switches language), else the negotiated one."""
    asked = request.GET.get("lang", "")
    return asked if asked in LANGUAGES else (translation.get_language() or "en")[:2]


@require_GET
def chatonsinfos_file(request: HttpRequest, name: str) -> HttpResponse:
    """``organization.properties`` or ``<slug>.properties`` of a public instance, as UTF-8 text."""
    if name == "organization":
        return HttpResponse(chatonsinfos.organization_file(), content_type=TEXT)
    instance = chatonsinfos.public_instances().filter(slug=name).first()
    if instance is None:
        return HttpResponse("not found\n", status=404, content_type=TEXT)
    return HttpResponse(chatonsinfos.service_file(instance), content_type=TEXT)


@require_GET
def chatonsinfos_index(request: HttpRequest) -> HttpResponse:
    """The directory's listing: the files it holds, one address a line."""
    names = ["organization", *chatonsinfos.public_instances().values_list("slug", flat=True)]
    return HttpResponse("".join(chatonsinfos.file_url(name) + "\n" for name in names),
                        content_type=TEXT)


@require_GET
def public_page(request: HttpRequest) -> HttpResponse:
    """/transparency/: the published reports, statistics, software list and register."""
    language = _language(request)
    latest = queries.latest_software_list()
    instances = list(chatonsinfos.public_instances())
    with translation.override(language):
        response = render(request, "transparency/public.html", {
            "language": language, "collective_name": settings.CHATON.collective_name,
            "profile": chatonsinfos.profile(), "reports_url": reverse("report-public-list"),
            "reports": report_queries.published().prefetch_related("files"),
            "figures": queries.latest_figures([instance.slug for instance in instances]),
            "instances": instances,
            "organization_url": chatonsinfos.file_url("organization"),
            "software": latest,
            "images": [entry for entry in (latest.entries if latest else [])
                       if entry["kind"] == "image"],
            "package_count": sum(1 for entry in (latest.entries if latest else [])
                                 if entry["kind"] == "package"),
            "requests": queries.published_requests(),
        })
    response["Content-Language"] = language
    return response


@require_GET
def software_page(request: HttpRequest) -> HttpResponse:
    """/transparency/software/: the newest software list, in full."""
    language = _language(request)
    latest = queries.latest_software_list()
    with translation.override(language):
        response = render(request, "transparency/software.html", {
            "language": language, "collective_name": settings.CHATON.collective_name,
            "software": latest})
    response["Content-Language"] = language
    return response


@require_GET
def software_text(request: HttpRequest) -> HttpResponse:
    """/transparency/software.txt: the newest software list as text (404 before the first)."""
    latest = queries.latest_software_list()
    if latest is None:
        return HttpResponse("no software list yet\n", status=404, content_type=TEXT)
    return HttpResponse(software.as_text(latest.entries, latest.notes,
                                         generated=latest.generated_at.isoformat()),
                        content_type=TEXT)


def _profile_initial() -> dict[str, Any]:
    row = chatonsinfos.profile()
    initial = {name: getattr(row, name) for name in actions.PROFILE_FIELDS}
    initial["funding"] = "\n".join(f"{name} = {url}" for name, url in (row.funding or {}).items())
    return initial


def _host_forms(posted_data: Any, posted_host: str) -> list[tuple[Host, HostFactsForm]]:
    forms = []
    for host in Host.objects.order_by("name"):
        facts = HostFacts.objects.filter(host=host).first() or HostFacts(host=host)
        initial = {name: getattr(facts, name) for name in actions.HOST_FIELDS}
        data = posted_data if posted_host == host.name else None
        forms.append((host, HostFactsForm(data, initial=initial, prefix=f"host-{host.pk}")))
    return forms


@admin_required
def settings_page(request: HttpRequest) -> HttpResponse:
    """The collective's profile (organization.*), the hosts' facts (host.*) and the files."""
    data = posted(request)
    which = request.POST.get("form", "profile") if data is not None else ""
    form = ProfileForm(data if which == "profile" else None, initial=_profile_initial())
    host_forms = _host_forms(data, request.POST.get("host", "") if which == "host" else "")
    if which == "profile" and form.is_valid():
        try:
            actions.do_update_profile(acting_user=signed_in(request), **form.cleaned_data)
        except ChatonError as error:
            show_error(form, error)
        else:
            return HttpResponseRedirect(reverse("transparency-settings") + "?saved=1")
    for host, host_form in host_forms:
        if which == "host" and host_form.is_bound and host_form.is_valid():
            fields = {name: host_form.cleaned_data[name] for name in actions.HOST_FIELDS}
            try:
                actions.do_update_host_facts(host, acting_user=signed_in(request), **fields)
            except ChatonError as error:
                show_error(host_form, error)
            else:
                return HttpResponseRedirect(reverse("transparency-settings") + "?saved=1")
    return render(request, "transparency/settings.html", {
        "form": form, "host_forms": host_forms, "saved": request.GET.get("saved") == "1",
        "organization_url": reverse("chatonsinfos-file", args=["organization"]),
        "instances": chatonsinfos.public_instances()})


@admin_required
def request_list(request: HttpRequest) -> HttpResponse:
    """The register of authority requests (every field), and the form to record one."""
    form = RequestForm(posted(request), initial={"received_on": clock.today()})
    if request.method == "POST" and form.is_valid():
        try:
            row = actions.do_add_authority_request(acting_user=signed_in(request),
                                                   **form.cleaned_data)
        except ChatonError as error:
            show_error(form, error)
        else:
            return HttpResponseRedirect(reverse("transparency-request", args=[row.pk]))
    return render(request, "transparency/request_list.html", {
        "form": form, "rows": AuthorityRequest.objects.order_by("-received_on", "-id")})


@admin_required
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    """One request in full, and the form that publishes it with personal data removed."""
    try:
        row = queries.request_by_id(request_id)
    except ChatonError:
        raise Http404 from None
    data = posted(request)
    answering = data is not None and request.POST.get("form") == "answer"
    form = PublishForm(data if data is not None and not answering else None)
    answer_form = AnswerForm(data if answering else None, initial={
        "answered": row.answered, "answered_on": row.answered_on or clock.today()})
    bound = answer_form if answering else form
    if data is not None and bound.is_valid():
        try:
            if answering:
                actions.do_answer_authority_request(row, acting_user=signed_in(request),
                                                    **answer_form.cleaned_data)
            else:
                actions.do_publish_authority_request(row, acting_user=signed_in(request),
                                                     **form.cleaned_data)
        except ChatonError as error:
            show_error(bound, error)
        else:
            return HttpResponseRedirect(reverse("transparency-request", args=[row.pk]))
    return render(request, "transparency/request_detail.html",
                  {"row": row, "form": form, "answer_form": answer_form})
