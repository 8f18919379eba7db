"""The monitoring pages, for administrators: probes, a probe's history, incidents,
maintenance windows, custom probes, the test alert."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chaton.core import charts
from chaton.core.errors import ChatonError, NotFound
from chaton.core.views import admin_required, posted, show_error, signed_in
from chaton.monitoring import actions, queries
from chaton.monitoring.forms import MaintenanceForm, NoteForm, ProbeForm
from chaton.monitoring.models import Incident, Kind, Maintenance, Period, Probe, Source, State


def _probe(key: str) -> Probe:
    try:
        return queries.probe_by_key(key)
    except NotFound as error:
        raise Http404(str(error)) from None


def _incident(incident_id: int) -> Incident:
    try:
        return queries.incident_by_id(incident_id)
    except ChatonError as error:
        raise Http404(str(error)) from None


def _window(window_id: int) -> Maintenance:
    try:
        return queries.maintenance_by_id(window_id)
    except ChatonError as error:
        raise Http404(str(error)) from None


def _response_chart(probe: Probe) -> str:
    """Response times of the last day, one bar per hourly roll-up's median (ms)."""
    hours = list(queries.rollups(probe, Period.HOUR, days=1))
    return charts.stacked_bars(
        [f"{rollup.start:%H}" for rollup in hours],
        [charts.Series(_("median response time (ms)"),
                       [round(rollup.p50_ms or 0) for rollup in hours], "#3b7dd8")],
        title=_("Response time, last 24 hours (ms)"))


def _history_chart(probe: Probe) -> str:
    """90 days: minutes up, down and without data each day."""
    days = list(queries.rollups(probe, Period.DAY, days=90))
    return charts.stacked_bars(
        [f"{rollup.start:%m-%d}" for rollup in days],
        [charts.Series(_("up (min)"), [round(rollup.up_seconds / 60) for rollup in days],
                       "#2e8b57"),
         charts.Series(_("down (min)"), [round(rollup.down_seconds / 60) for rollup in days],
                       "#c0392b"),
         charts.Series(_("no data (min)"),
                       [round(rollup.unknown_seconds / 60) for rollup in days], "#b0b7bf")],
        title=_("The last 90 days"))


@admin_required
def probe_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    service = request.GET.get("service", "")
    kind = request.GET.get("kind", "")
    probes = list(queries.probes(state=state if state in State.values else "",
                                 service=service, kind=kind if kind in Kind.values else ""))
    chosen = next((probe for probe in probes if probe.kind == Kind.HTTP), None)
    return render(request, "monitoring/probe_list.html", {
        "probes": probes, "states": State.choices, "kinds": Kind.choices,
        "services": queries.services(), "state": state, "service": service, "kind": kind,
        "open_incidents": list(queries.incidents(open_only=True)),
        "chart": _response_chart(chosen) if chosen is not None else "", "chart_probe": chosen})


@admin_required
def probe_detail(request: HttpRequest, key: str) -> HttpResponse:
    probe = _probe(key)
    return render(request, "monitoring/probe_detail.html", {
        "probe": probe, "incidents": list(queries.incidents(probe=probe, limit=50)),
        "history": _history_chart(probe), "chart": _response_chart(probe),
        "results": list(queries.recent_results(probe, hours=1).reverse()[:20]),
        "custom": probe.source == Source.CUSTOM})


@admin_required
def probe_add(request: HttpRequest) -> HttpResponse:
    form = ProbeForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            probe = actions.do_add_probe(
                name=data["name"], kind=data["kind"], target=data["target"],
                conditions=form.condition_list(), service=data["service"],
                public=data["public"], interval_seconds=data["interval_seconds"],
                timeout_seconds=data["timeout_seconds"], acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("Probe %(key)s added.") % {"key": probe.key})
            return redirect("monitoring-probe", probe.key)
    return render(request, "monitoring/probe_form.html", {"form": form})


@admin_required
@require_POST
def probe_delete(request: HttpRequest, key: str) -> HttpResponse:
    probe = _probe(key)
    try:
        actions.do_delete_probe(probe, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, str(error))
        return redirect("monitoring-probe", key)
    messages.success(request, _("Probe %(key)s deleted.") % {"key": key})
    return redirect("monitoring-probes")


@admin_required
def incident_list(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/incident_list.html", {
        "incidents": list(queries.incidents())})


@admin_required
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident(incident_id)
    form = NoteForm(posted(request), initial={"note": incident.note})
    if request.method == "POST" and form.is_valid():
        try:
            if "acknowledge" in request.POST:
                actions.do_acknowledge_incident(incident, note=form.cleaned_data["note"],
                                                acting_user=signed_in(request))
                messages.success(request, _("Incident acknowledged: its reminders stop."))
            else:
                actions.do_annotate_incident(incident, form.cleaned_data["note"],
                                             acting_user=signed_in(request))
                messages.success(request, _("The note was saved."))
        except ChatonError as error:
            show_error(form, error)
        else:
            return redirect("monitoring-incident", incident.pk)
    return render(request, "monitoring/incident_detail.html",
                  {"incident": incident, "form": form})


@admin_required
def maintenance_list(request: HttpRequest) -> HttpResponse:
    form = MaintenanceForm(posted(request), services=queries.services())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_add_maintenance(
                title=data["title"], description=data["description"],
                starts_at=data["starts_at"], ends_at=data["ends_at"],
                services=list(data["services"]), acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("Maintenance window added."))
            return redirect("monitoring-maintenance")
    return render(request, "monitoring/maintenance.html", {
        "form": form, "windows": list(queries.maintenance_windows())})


@admin_required
@require_POST
def maintenance_delete(request: HttpRequest, window_id: int) -> HttpResponse:
    actions.do_delete_maintenance(_window(window_id),
                                  acting_user=signed_in(request))
    messages.success(request, _("Maintenance window deleted."))
    return redirect("monitoring-maintenance")


@admin_required
@require_POST
def test_alert(request: HttpRequest) -> HttpResponse:
    queued = actions.do_send_test_alert(acting_user=signed_in(request))
    if queued:
        messages.success(request, _("A test alert was queued (%(count)d notification(s)).")
                         % {"count": queued})
    else:
        messages.warning(request, _("No alert could be sent: the alert group has no member "
                                    "with a mail address and no team channel is set."))
    return redirect("monitoring-probes")
