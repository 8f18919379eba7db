"""The mail pages, under /mail/ (administrators), and the public files: the MTA-STS policy
and the published retired DKIM keys under /.well-known/dkim/."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chaton.adapters import dns
from chaton.core.errors import ChatonError
from chaton.core.views import admin_required, error_html, posted, show_error, signed_in
from chaton.mail import actions, diagnosis, dnsplan, queries
from chaton.mail.forms import DomainForm, ZoneForm
from chaton.mail.models import DnsZone, KeyState, MailDomain
from chaton.mail.records import expected, mta_sts_policy, zone_snippet


@admin_required
def overview(request: HttpRequest) -> HttpResponse:
    """List the mail domains and the zones."""
    return render(request, "mail/overview.html", {
        "domains": MailDomain.objects.select_related("zone", "organization").all(),
        "zones": DnsZone.objects.all(),
    })


@admin_required
def zone_create(request: HttpRequest) -> HttpResponse:
    form = ZoneForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            zone = actions.do_create_zone(
                data["name"], mode=data["mode"], server_host=data["server_host"],
                server_port=data["server_port"], tsig_name=data["tsig_name"],
                tsig_algorithm=data["tsig_algorithm"], tsig_secret=data["tsig_secret"],
                acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The zone %(zone)s was recorded.") % {"zone": zone.name})
            return redirect("mail-overview")
    return render(request, "mail/form.html", {"form": form, "title": _("Add a DNS zone")})


@admin_required
def domain_create(request: HttpRequest) -> HttpResponse:
    form = DomainForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            zone = queries.zone_by_name(data["zone"])
            dkim_zone = queries.zone_by_name(data["dkim_zone"], field="dkim_zone") \
                if data["dkim_zone"] else None
            domain = actions.do_add_domain(
                data["name"], zone=zone, dkim_zone=dkim_zone, acting_user=signed_in(request),
                mx_hosts=data["mx_hosts"], sending_addresses=data["sending_addresses"],
                dmarc_policy=data["dmarc_policy"],
                dmarc_report_address=data["dmarc_report_address"],
                mta_sts_mode=data["mta_sts_mode"], tls_rpt_address=data["tls_rpt_address"])
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The mail domain %(name)s was added.")
                             % {"name": domain.name})
            return redirect("mail-domain", domain.name)
    return render(request, "mail/form.html", {"form": form, "title": _("Add a mail domain")})


@admin_required
def domain_detail(request: HttpRequest, name: str) -> HttpResponse:
    """A domain: its records as a checklist (what the zones hold, when they can be read)
    and as a zone-file snippet, its keys with their dates, its published keys."""
    domain = queries.domain_by_name(name)
    items = expected(queries.facts_of(domain))
    plan_error = ""
    steps: list[dnsplan.Step] = []
    try:
        steps = list(dnsplan.plan(domain).steps)
    except (dns.DnsError, OSError, ChatonError, ImportError) as error:
        plan_error = str(error) or type(error).__name__
    keys = queries.key_rows(domain)
    return render(request, "mail/domain.html", {
        "domain": domain,
        "steps": steps,
        "items": items,
        "plan_error": plan_error,
        "snippet": zone_snippet(items),
        "keys": keys,
        "published": [key for key in keys if key.state == KeyState.REVEALED
                      and domain.publish_retired_keys],
        # The diagnosis talks to the servers: run on request only.
        "diagnosis": diagnosis.diagnose_domain(domain) if request.GET.get("diagnose") else None,
    })


@admin_required
@require_POST
def domain_apply(request: HttpRequest, name: str) -> HttpResponse:
    domain = queries.domain_by_name(name)
    try:
        changed = actions.do_apply_dns(domain, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, error_html(error))
    else:
        messages.success(request, _("%(count)s record sets changed.") % {"count": changed})
    return redirect("mail-domain", domain.name)


@admin_required
@require_POST
def domain_rotate(request: HttpRequest, name: str) -> HttpResponse:
    domain = queries.domain_by_name(name)
    try:
        result = actions.do_rotate(domain, acting_user=signed_in(request),
                                   emergency=request.POST.get("emergency") == "1")
    except ChatonError as error:
        messages.error(request, error_html(error))
    else:
        messages.success(request, _("New key %(selector)s: it signs once its record is seen "
                                    "on every server.")
                         % {"selector": result.new_keys[0].selector})
        for line in result.skipped:
            messages.warning(request, _("Skipped: %(what)s") % {"what": line})
    return redirect("mail-domain", domain.name)


# -- public ------------------------------------------------------------------------------

def mta_sts(request: HttpRequest, name: str) -> HttpResponse:
    """The MTA-STS policy of a domain, at /mail/mta-sts/<domain>.txt: the proxy serves it
    as https://mta-sts.<domain>/.well-known/mta-sts.txt (docs/architecture.md)."""
    domain = MailDomain.objects.filter(name=name.lower()).first()
    if domain is None:
        raise Http404
    return HttpResponse(mta_sts_policy(queries.facts_of(domain)),
                        content_type="text/plain; charset=utf-8")


def dkim_readme(request: HttpRequest) -> HttpResponse:
    """Why retired DKIM private keys are published here, and how to find one."""
    return render(request, "mail/dkim_readme.txt", {}, content_type="text/plain; charset=utf-8")


def dkim_published(request: HttpRequest, name: str) -> HttpResponse:
    """A revealed private key, by the sha256 of its ``p=`` value; nothing else answers."""
    key = queries.key_by_published_name(name)
    if key is None:
        raise Http404
    return HttpResponse(key.private_key_pem(), content_type="application/x-pem-file")
