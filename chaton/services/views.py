"""The services pages (administrators): hosts and instances with their live state, the
catalogue, an instance's page (settings, upgrade, history, plan, removal), the reconcile
plan, and the diagram.

Writes go through :mod:`chaton.services.actions`: an error is shown next to the
field it names — a setting's error next to that setting — and the form keeps
what was typed. An extraordinary change (closing an instance, opening one for a
partner organization) is refused with a link to a proposal carrying it.
The live state comes from one snapshot per host
(:func:`chaton.services.queries.instances_with_state`): the list pages make
the same number of queries whatever the number of instances.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from chaton.core import gate
from chaton.core.errors import ChatonError
from chaton.core.views import admin_required, posted, show_error, signed_in
from chaton.services import actions, catalog, diagram, proxy, queries, reconcile
from chaton.services.catalog import Manifest
from chaton.services.forms import (
    ApplicationChoiceForm,
    HostForm,
    ImageImportForm,
    InstanceForm,
    LoginGroupForm,
    ReconcileForm,
    RemoveForm,
    SettingsForm,
    UpgradeForm,
    shown_value,
)
from chaton.services.gated import CloseServiceParams
from chaton.services.models import DesiredState, HostRole, Instance

# -- reading -------------------------------------------------------------------------------------


def _manifest_of(instance: Instance) -> Manifest | None:
    """The instance's manifest, or None when its application left the catalogue."""
    try:
        return instance.manifest
    except KeyError:
        return None


def _rows(items: list[queries.InstanceWithState]) -> list[dict[str, Any]]:
    """Given instances with their live state, return what a table row shows of each."""
    rows = []
    for item in items:
        manifest = _manifest_of(item.instance)
        rows.append({"instance": item.instance, "live": item.live,
                     "label": diagram.state_label(item.live.state),
                     "tone": diagram.state_tone(item.live.state),
                     "application": manifest.label if manifest else item.instance.application,
                     "image": item.instance.image_override or (manifest.image if manifest
                                                               else "")})
    return rows


#: The CSS class of a plan line, by its first character (see plan.Plan.lines).
_LINE_KINDS = {"+": "add", "~": "modify", "^": "modify", "*": "modify", "-": "delete",
               "!": "drift", "?": "foreign", "x": "error"}


def plan_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Given a plan's lines, return each with its CSS class."""
    return [(_LINE_KINDS.get(line[:1], ""), line) for line in lines]


@admin_required
def overview(request: HttpRequest) -> HttpResponse:
    """The hosts (does each engine answer?), the instances with their live state, the diagram."""
    hosts = diagram.host_statuses()
    items = queries.instances_with_state()
    return render(request, "services/overview.html", {
        "hosts": hosts, "rows": _rows(items),
        "diagram": diagram.draw(diagram.landscape(hosts, items)),
        "roles": dict(HostRole.choices), "internal_ca": proxy.uses_internal_ca(),
    })


@admin_required
def root_certificate(request: HttpRequest) -> HttpResponse:
    """The root certificate of the proxy's own authority (``proxy.tls = "internal"``), as a
    file to install in browsers and systems; 404 when certificates come by ACME."""
    if not proxy.uses_internal_ca():
        raise Http404(_("The proxy's certificates come from an ACME authority: there is no "
                        "root to install."))
    try:
        pem = proxy.root_certificate()
    except ChatonError as error:
        messages.error(request, str(error))
        return redirect("service-overview")
    response = HttpResponse(pem, content_type="application/x-x509-ca-cert")
    response["Content-Disposition"] = 'attachment; filename="chaton-root.crt"'
    return response


@admin_required
def diagram_svg(request: HttpRequest) -> HttpResponse:
    """The diagram as an SVG file; ``?download=1`` saves it as ``services.svg``."""
    return diagram.svg_response(diagram.draw(diagram.landscape(), standalone=True),
                                download=bool(request.GET.get("download")))


def _setting_rows(manifest: Manifest) -> list[dict[str, Any]]:
    rows = []
    for setting in manifest.settings:
        if setting.choices:
            bounds = ", ".join(setting.choices)
        elif setting.minimum is not None or setting.maximum is not None:
            bounds = "{} … {}".format("" if setting.minimum is None else setting.minimum,
                                      "" if setting.maximum is None else setting.maximum)
        else:
            bounds = ""
        rows.append({"setting": setting, "default": shown_value(setting.default),
                     "bounds": bounds})
    return rows


@admin_required
def catalog_list(request: HttpRequest) -> HttpResponse:
    """Every application: what it is, its image pin, LDAP (or why not), its database, what
    is backed up, its settings with their defaults and bounds."""
    manifests = list(catalog.all_manifests().values())
    availability = queries.image_availability(
        [image for manifest in manifests for image in _images_of(manifest)])
    applications = []
    for manifest in manifests:
        volumes = {volume.name: volume.path for volume in manifest.volumes}
        applications.append({
            "manifest": manifest, "settings": _setting_rows(manifest),
            "backed_up": [(name, volumes.get(name, "")) for name in manifest.user_data],
            "availability": [item for image in _images_of(manifest)
                             for item in availability[image]],
        })
    return render(request, "services/catalog.html", {"applications": applications})


def _images_of(manifest: Manifest) -> list[str]:
    return [manifest.image] + ([manifest.database.image] if manifest.database else [])


@admin_required
def images(request: HttpRequest) -> HttpResponse:
    """The images loaded onto each host from archives (GET); load one (POST, a file in
    ``docker save`` format), without a registry."""
    form = ImageImportForm(posted(request), request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["archive"]
        try:
            records = actions.do_import_image(form.cleaned_data["host"], upload.file,
                                              acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error, {"image": "archive"})
        else:
            messages.success(request, ngettext(
                "%(count)d image was loaded: %(names)s.", "%(count)d images were loaded: "
                "%(names)s.", len(records)) % {
                "count": len(records),
                "names": ", ".join(record.reference or record.image_id for record in records)})
            return redirect("service-images")
    return render(request, "services/images.html", {
        "form": form, "images": queries.loaded_images()})


# -- instances -----------------------------------------------------------------------------------


def _show_instance_error(error: ChatonError, form: Any, settings_form: SettingsForm | None,
                         names: dict[str, str] | None = None) -> None:
    """Put an action's error next to the field it names: a setting's in the settings form."""
    field = error.field or ""
    if settings_form is not None and field.startswith("settings"):
        show_error(settings_form, error,
                   {f"settings.{name}": name for name in settings_form.fields})
    else:
        show_error(form, error, names)


@admin_required
def instance_create(request: HttpRequest) -> HttpResponse:
    """Choose an application (first step, GET), then its instance's form: domain, host,
    owner, who may log in, and the application's settings."""
    manifests = catalog.all_manifests()
    name = (request.POST.get("application") if request.method == "POST"
            else request.GET.get("application")) or ""
    if name not in manifests:
        return render(request, "services/instance_choose.html", {
            "form": ApplicationChoiceForm(manifests=manifests), "manifests": manifests})
    manifest = manifests[name]
    form = InstanceForm(manifest, posted(request))
    settings_form = SettingsForm(manifest, posted(request))
    if request.method == "POST" and form.is_valid() and settings_form.is_valid():
        data = form.cleaned_data
        try:
            instance = actions.do_create_instance(
                manifest.name, data["domain"], data["host"], acting_user=signed_in(request),
                owner=data["organization"], login_group=data.get("login_group"),
                settings=settings_form.values(), slug=data["slug"], image=data["image"])
        except ChatonError as error:
            _show_instance_error(error, form, settings_form, {"owner": "organization"})
        else:
            messages.success(request, _("The instance %(slug)s is deployed at %(domain)s.")
                             % {"slug": instance.slug, "domain": instance.domain})
            return redirect("service-instance", instance.slug)
    return render(request, "services/instance_form.html", {
        "manifest": manifest, "form": form, "settings_form": settings_form})


def _instance_page(request: HttpRequest, instance: Instance, *,
                   settings_form: SettingsForm | None = None,
                   login_form: LoginGroupForm | None = None,
                   upgrade_form: UpgradeForm | None = None) -> HttpResponse:
    manifest = _manifest_of(instance)
    item = queries.instance_with_state(instance)
    if manifest is not None and settings_form is None:
        settings_form = SettingsForm(manifest, initial=dict(instance.settings))
    if manifest is not None and manifest.ldap.supported and login_form is None:
        login_form = LoginGroupForm(initial={
            "login_group": instance.login_group.name if instance.login_group else None})
    plan, _engines, _planned = reconcile.plan(instances=[instance])
    certificate_failure = (proxy.certificate_failure(instance.domain)
                           if instance.state == DesiredState.RUNNING else None)
    return render(request, "services/instance_detail.html", {
        "certificate_failure": certificate_failure,
        "instance": instance, "manifest": manifest, "row": _rows([item])[0],
        "settings_form": settings_form, "login_form": login_form,
        "upgrade_form": upgrade_form or UpgradeForm(),
        "current_settings": [(name, shown_value(value))
                             for name, value in instance.settings.items()],
        "events": queries.events(instance), "upgrade": queries.upgrade_under_way(instance),
        "image_label": actions.image_label(instance),
        "plan_lines": plan_lines(plan.lines()), "plan_is_noop": plan.is_noop and not plan.errors,
        "running": instance.state == DesiredState.RUNNING,
        "removing": instance.state == DesiredState.REMOVED,
    })


@admin_required
def instance_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """An instance: live state, settings, upgrade, history, the plan for it."""
    return _instance_page(request, queries.instance_by_slug(slug))


@admin_required
@require_POST
def instance_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """Change an instance's settings (and who may log in); its containers are replaced."""
    instance = queries.instance_by_slug(slug)
    manifest = _manifest_of(instance)
    if manifest is None:
        messages.error(request, _("The application %(name)s is no longer in the catalogue.")
                       % {"name": instance.application})
        return redirect("service-instance", instance.slug)
    settings_form = SettingsForm(manifest, request.POST, initial=dict(instance.settings))
    login_form = LoginGroupForm(request.POST) if manifest.ldap.supported else None
    if settings_form.is_valid() and (login_form is None or login_form.is_valid()):
        group: Any = login_form.cleaned_data["login_group"] if login_form is not None else ...
        try:
            actions.do_update_instance_settings(instance, settings_form.values(),
                                                acting_user=signed_in(request),
                                                login_group=group)
        except ChatonError as error:
            _show_instance_error(error, login_form or settings_form, settings_form)
        else:
            messages.success(request, _("The settings were saved; the instance follows them."))
            return redirect("service-instance", instance.slug)
    return _instance_page(request, instance, settings_form=settings_form,
                          login_form=login_form)


@admin_required
@require_POST
def instance_upgrade(request: HttpRequest, slug: str) -> HttpResponse:
    """Move an instance to a new image pin; the worker checks its health, then switches or
    rolls back (the page's history says which)."""
    instance = queries.instance_by_slug(slug)
    form = UpgradeForm(request.POST)
    if form.is_valid():
        try:
            deployment = actions.do_upgrade_instance(instance, form.cleaned_data["image"],
                                                     acting_user=signed_in(request),
                                                     wait=False)
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The upgrade to %(image)s is under way: the new version "
                                        "takes the traffic once it is healthy, otherwise it is "
                                        "rolled back.") % {"image": deployment.to_image})
            return redirect("service-instance", instance.slug)
    return _instance_page(request, instance, upgrade_form=form)


@admin_required
def instance_remove(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask for the short name (GET), then remove the instance (POST)."""
    instance = queries.instance_by_slug(slug)
    form = RemoveForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_remove_instance(instance, confirm=form.cleaned_data["confirm"],
                                       delete_data=form.cleaned_data["delete_data"],
                                       acting_user=signed_in(request))
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The instance %(slug)s is being removed.")
                             % {"slug": instance.slug})
            return redirect("service-overview")
    return render(request, "services/instance_remove.html", {
        "instance": instance, "form": form,
        "proposal_url": gate.proposal_link(CloseServiceParams(instance=instance.slug,
                                                              delete_data=False)),
    })


# -- hosts and the reconcile plan -----------------------------------------------------------------


@admin_required
def host_create(request: HttpRequest) -> HttpResponse:
    """Register a host; its engine must answer."""
    form = HostForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            host = actions.do_create_host(
                data["name"], data["docker_url"], acting_user=signed_in(request),
                address=data["address"], roles=data["roles"], swarm=data["swarm"],
                is_default=data["is_default"], tls_ca=data["tls_ca"],
                tls_certificate=data["tls_certificate"], tls_key=data["tls_key"])
        except ChatonError as error:
            show_error(form, error)
        else:
            messages.success(request, _("The host %(name)s was added.") % {"name": host.name})
            return redirect("service-overview")
    return render(request, "services/host_form.html", {"form": form})


@admin_required
def plan(request: HttpRequest) -> HttpResponse:
    """Show what a reconcile would do on every host (GET); do it (POST)."""
    form = ReconcileForm(posted(request))
    if request.method == "POST" and form.is_valid():
        the_plan, result = reconcile.reconcile(
            delete_orphan_volumes=form.cleaned_data["delete_orphan_volumes"])
        if result.ok and not the_plan.errors and not result.directory_error:
            messages.success(request, ngettext(
                "%(count)d change was applied.", "%(count)d changes were applied.",
                result.applied) % {"count": result.applied})
        else:
            problems = [str(failure) for failure in result.failures]
            problems += [f"{name}: {error}" for name, error in sorted(the_plan.errors.items())]
            if result.proxy_error:
                problems.append(_("proxy: %(error)s") % {"error": result.proxy_error})
            if result.directory_error:
                problems.append(_("directory: %(error)s") % {"error": result.directory_error})
            messages.error(request, _("%(applied)d change(s) applied; not done: %(problems)s")
                           % {"applied": result.applied, "problems": "; ".join(problems)})
        return redirect("service-plan")
    the_plan = queries.preview()
    routes = queries.proxy_preview()
    lines = plan_lines(the_plan.lines()) + plan_lines(list(routes.lines))
    if routes.error:
        lines.append(("error", _("x proxy: %(error)s") % {"error": routes.error}))
    return render(request, "services/plan.html", {
        "form": form, "lines": lines, "is_noop": the_plan.is_noop and routes.is_noop,
        "errors": the_plan.errors})
