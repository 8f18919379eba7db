"""``chaton service``: hosts, the catalogue, instances, the reconcile plan and the diagram.

Thin over :mod:`chaton.services.actions` and :mod:`chaton.services.queries`:
a refusal (a domain taken, a bad setting, an engine that does not answer, an
extraordinary change asked for directly …) is one line on stderr and exit
status 2 (:mod:`chaton.cli.app`). Settings are typed ``name=value`` and turned
into the types the application's manifest asks for.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from django.utils.translation import gettext as _
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chaton.cli.runtime import acting_user, cell, console, setup_django

if TYPE_CHECKING:
    from chaton.services.apply import Result
    from chaton.services.catalog import Manifest
    from chaton.services.models import Instance
    from chaton.services.plan import Plan

app = typer.Typer(no_args_is_help=True, add_completion=False)
host_app = typer.Typer(no_args_is_help=True, add_completion=False)
instance_app = typer.Typer(no_args_is_help=True, add_completion=False)
app.add_typer(host_app, name="host", help="The machines that run the services.")
app.add_typer(instance_app, name="instance", help="Instances of the catalogue's applications.")
image_app = typer.Typer(no_args_is_help=True, add_completion=False)
app.add_typer(image_app, name="image", help="Images loaded onto hosts from archives, without "
              "a registry.")

#: The colour of a plan line, by its first character (see chaton.services.plan.Plan.lines).
STYLES = {"+": "green", "~": "yellow", "^": "cyan", "*": "blue", "-": "red", "!": "magenta",
          "?": "dim", "x": "bold red"}
#: The colour of a live state.
STATE_STYLES = {"ok": "green", "busy": "yellow", "idle": "dim", "bad": "red"}


# -- lookups -------------------------------------------------------------------------------------


def parse_settings(words: list[str], manifest: Manifest) -> dict[str, Any]:
    """Given ``name=value`` words, return the settings, typed as the manifest says.

    Raise InvalidInput for a word without ``=``, a name given twice, or a
    value that is not of its setting's type.
    """
    from chaton.core.errors import InvalidInput
    from chaton.services.forms import typed_settings

    values: dict[str, str] = {}
    for word in words:
        name, equals, value = word.partition("=")
        name = name.strip()
        if not equals or not name:
            raise InvalidInput(_("“%(word)s”: write each setting as name=value.")
                               % {"word": word}, field="settings")
        if name in values:
            raise InvalidInput(_("The setting %(name)s is given twice.") % {"name": name},
                               field="settings")
        values[name] = value
    return typed_settings(manifest, values)


def print_plan(plan: Plan) -> None:
    """Print the plan's lines, coloured by kind."""
    for line in plan.lines():
        console().print(cell(line, STYLES.get(line[:1], "")), soft_wrap=True)


# -- hosts ---------------------------------------------------------------------------------------


@host_app.command("list")
def host_list() -> None:
    """List the hosts, and whether each engine answers."""
    setup_django()
    from chaton.services import diagram

    table = Table(title=_("Hosts"))
    for header in (_("Name"), _("Docker endpoint"), _("Roles"), _("Swarm"), _("Engine")):
        table.add_column(header)
    for status in diagram.host_statuses():
        host = status.host
        engine = (cell(_("answers, Docker %(version)s") % {"version": status.version}, "green")
                  if status.reachable else cell(f"{status.error}\n{status.advice}", "red"))
        table.add_row(cell(host.name + (" *" if host.is_default else "")),
                      cell(host.docker_url), cell(", ".join(host.roles)),
                      cell(_("manager") if host.swarm else _("no")), engine)
    console().print(table)


@host_app.command("add")
def host_add(
    name: Annotated[str, typer.Argument(help="A short name, such as box1.")],
    docker_url: Annotated[str, typer.Argument(
        metavar="URL", help="unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host.")],
    address: Annotated[str, typer.Option(
        "--address", help="Where the proxy reaches the ports it publishes.")] = "127.0.0.1",
    roles: Annotated[list[str] | None, typer.Option(
        "--role", help="apps, proxy or backups (repeat it); default: apps.")] = None,
    swarm: Annotated[bool | None, typer.Option(
        "--swarm/--no-swarm", help="A Swarm manager or not (default: as the engine says).")
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default host.")
                       ] = False,
    tls_ca: Annotated[str, typer.Option("--tls-ca", help="CA file of a tcp:// endpoint.")] = "",
    tls_certificate: Annotated[str, typer.Option("--tls-cert", help="Client certificate file.")
                               ] = "",
    tls_key: Annotated[str, typer.Option("--tls-key", help="Client key file.")] = "",
    no_check: Annotated[bool, typer.Option(
        "--no-check", help="Do not ask the engine (it may be offline now).")] = False,
) -> None:
    """Register a host; its engine must answer (unless --no-check)."""
    setup_django()
    from chaton.services import actions

    host = actions.do_create_host(
        name, docker_url, acting_user=acting_user(), address=address,
        roles=roles or ["apps"], swarm=swarm, is_default=default, tls_ca=tls_ca,
        tls_certificate=tls_certificate, tls_key=tls_key, check=not no_check)
    console().print(_("Host %(name)s added%(swarm)s.") % {
        "name": host.name, "swarm": _(" (a Swarm manager)") if host.swarm else ""},
        style="green", markup=False)


# -- the catalogue -------------------------------------------------------------------------------


@app.command("catalog")
def catalog_command(
    application: Annotated[str | None, typer.Argument(
        metavar="[APP]", help="Show this application in full.")] = None,
) -> None:
    """List the applications of the catalogue, or show one in full.

    In full: its image pin, LDAP login (or why not), database, what is backed
    up, and its settings with their defaults and bounds.
    """
    setup_django()
    from chaton.services import catalog, queries

    if application is None:
        table = Table(title=_("Catalogue"))
        for header in (_("Name"), _("Application"), _("LDAP login"), _("Database"),
                       _("Settings")):
            table.add_column(header)
        for manifest in catalog.all_manifests().values():
            table.add_row(cell(manifest.name), cell(f"{manifest.label} — {manifest.description}"),
                          cell(_("yes") if manifest.ldap.supported else _("no")),
                          cell(manifest.database.kind if manifest.database else "—"),
                          cell(str(len(manifest.settings))))
        console().print(table)
        return
    from chaton.services.forms import shown_value

    manifest = queries.manifest_by_name(application)
    out = console()
    out.print(cell(f"{manifest.label} ({manifest.name}): {manifest.description}", "bold"))
    out.print(cell(_("Image: %(image)s") % {"image": manifest.image}))
    if manifest.ldap.supported:
        out.print(cell(_("Login with the directory: yes")))
    else:
        out.print(cell(_("Login with the directory: no — %(reason)s")
                       % {"reason": manifest.ldap.reason}))
    out.print(cell(_("Database: %(database)s") % {
        "database": f"{manifest.database.kind} {manifest.database.image}"
        if manifest.database else _("none")}))
    backed_up = list(manifest.user_data) + ([_("a dump of its database")]
                                             if manifest.database else [])
    out.print(cell(_("Backed up: %(what)s") % {"what": ", ".join(backed_up) or _("nothing")}))
    table = Table(title=_("Settings"))
    for header in (_("Name"), _("Label"), _("Type"), _("Default"), _("Allowed")):
        table.add_column(header)
    for setting in manifest.settings:
        allowed = (", ".join(setting.choices) if setting.choices else
                   f"{'' if setting.minimum is None else setting.minimum} … "
                   f"{'' if setting.maximum is None else setting.maximum}"
                   if setting.minimum is not None or setting.maximum is not None else "—")
        table.add_row(cell(setting.name), cell(setting.label), cell(setting.type),
                      cell(shown_value(setting.default)), cell(allowed))
    out.print(table)


# -- images loaded from archives ----------------------------------------------------------------


@image_app.command("import")
def image_import(
    archive: Annotated[Path, typer.Argument(
        metavar="FILE", help="An archive made by docker save (a .tar, compressed or not).")],
    host: Annotated[str, typer.Option("--host", help="The host (default: the default host).")
                    ] = "",
) -> None:
    """Load the images of an archive onto a host, pinned by their ids; no registry needed.

    An instance then names one by repository:tag or by id (--image).
    """
    setup_django()
    from chaton.core.errors import InvalidInput
    from chaton.services import actions, queries

    chosen = queries.host_or_default(host)
    try:
        file = archive.open("rb")
    except OSError as error:
        raise InvalidInput(_("Cannot read %(path)s: %(error)s")
                           % {"path": archive, "error": error.strerror or error},
                           field="archive") from None
    with file:
        records = actions.do_import_image(chosen, file, acting_user=acting_user())
    for record in records:
        console().print(_("Loaded on %(host)s: %(name)s, pinned as %(id)s.") % {
            "host": chosen.name, "name": record.reference or _("(untagged)"),
            "id": record.image_id}, style="green", markup=False, soft_wrap=True)


@image_app.command("list")
def image_list(
    host: Annotated[str, typer.Option("--host", help="Only this host's.")] = "",
) -> None:
    """List the images loaded onto the hosts from archives."""
    setup_django()
    from django.utils import timezone

    from chaton.services import queries

    table = Table(title=_("Images loaded from archives"))
    for header in (_("Host"), _("Name"), _("Image id"), _("Loaded")):
        # An id is typed back whole (--image): folded, never cut.
        table.add_column(header, overflow="fold")
    for record in queries.loaded_images(host=queries.host_by_name(host) if host else None):
        table.add_row(cell(record.host.name), cell(record.reference or "—"),
                      cell(record.image_id),
                      cell(timezone.localtime(record.loaded_at).strftime("%Y-%m-%d %H:%M")))
    console().print(table)


# -- instances -----------------------------------------------------------------------------------


@instance_app.command("list")
def instance_list(
    host: Annotated[str, typer.Option("--host", help="Only this host's.")] = "",
) -> None:
    """List the instances with their live state on their engine."""
    setup_django()
    from chaton.services import diagram, queries

    chosen = queries.instances(host=queries.host_by_name(host) if host else None)
    table = Table(title=_("Instances"))
    for header in (_("Short name"), _("Domain"), _("Application"), _("Host"), _("Owner"),
                   _("State")):
        table.add_column(header)
    for item in queries.instances_with_state(chosen):
        instance, state = item.instance, item.live.state
        table.add_row(cell(instance.slug), cell(instance.domain), cell(instance.application),
                      cell(instance.host.name),
                      cell(str(instance.owner) if instance.owner else _("the collective")),
                      cell(diagram.state_label(state),
                           STATE_STYLES[diagram.state_tone(state)]))
    console().print(table)


@instance_app.command("add")
def instance_add(
    application: Annotated[str, typer.Argument(metavar="APP", help="An application of the "
                                               "catalogue (chaton service catalog).")],
    domain: Annotated[str, typer.Argument(help="Such as pad.example.org.")],
    settings: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME=VALUE]...", help="Settings (the others take their defaults).")] = None,
    host: Annotated[str, typer.Option("--host", help="The host (default: the default host).")
                    ] = "",
    slug: Annotated[str, typer.Option("--slug", help="Its short name (default: from the "
                                      "domain).")] = "",
    organization: Annotated[str, typer.Option(
        "--organization", help="Owned by this partner organization (needs a decision by "
        "default).")] = "",
    person: Annotated[str, typer.Option("--person", help="Owned by this person (email).")
                      ] = "",
    login_group: Annotated[str, typer.Option(
        "--login-group", help="Only this group's members may log in.")] = "",
    port: Annotated[int | None, typer.Option("--port", help="The port published on the host.")
                    ] = None,
    image: Annotated[str, typer.Option("--image", help="Another image pin than the "
                                       "catalogue's, or an image loaded onto the host "
                                       "(repository:tag or its sha256 id).")] = "",
) -> None:
    """Open an instance of an application and deploy it."""
    setup_django()
    from chaton.directory.queries import group_by_name
    from chaton.services import actions, queries

    manifest = queries.manifest_by_name(application)
    values = parse_settings(settings or [], manifest)
    chosen = queries.host_or_default(host)
    instance = actions.do_create_instance(
        manifest.name, domain, chosen, acting_user=acting_user(),
        owner=queries.owner_by_key(organization or None, person or None), settings=values,
        login_group=group_by_name(login_group, field="login_group") if login_group else None,
        slug=slug, port=port, image=image)
    report_certificate(instance)


def report_certificate(instance: Instance) -> None:
    """Say where a new instance answers: at https://domain once the proxy presents its
    certificate; otherwise that it runs without one and Caddy's reason (exit 1), or that
    the certificate is still being obtained."""
    from django.conf import settings

    from chaton.services import proxy

    values = {"slug": instance.slug, "domain": instance.domain, "host": instance.host.name,
              "port": instance.port}
    served, failure = proxy.wait_for_certificate(
        instance.domain, settings.CHATON.proxy.certificate_wait_seconds)
    if served:
        console().print(_("Instance %(slug)s deployed at https://%(domain)s (host %(host)s, "
                          "port %(port)d).") % values, style="green", markup=False)
        return
    if failure is None:
        console().print(_("Instance %(slug)s deployed on the host %(host)s, port %(port)d; the "
                          "certificate for %(domain)s is still being obtained: see chaton "
                          "service instance show %(slug)s.") % values, style="yellow",
                        markup=False)
        return
    console().print(_("Instance %(slug)s deployed on the host %(host)s, port %(port)d, but "
                      "https://%(domain)s does not work yet: the proxy has no certificate for "
                      "it. Its reason: %(reason)s") % {**values, "reason": failure},
                    style="red", markup=False, soft_wrap=True)
    raise typer.Exit(1)


@instance_app.command("show")
def instance_show(slug: Annotated[str, typer.Argument(help="The instance's short name.")]
                  ) -> None:
    """Show an instance: live state, settings, history, plan."""
    setup_django()
    from django.utils import timezone

    from chaton.services import diagram, proxy, queries, reconcile
    from chaton.services.forms import shown_value
    from chaton.services.models import DesiredState

    instance = queries.instance_by_slug(slug)
    item = queries.instance_with_state(instance)
    out = console()
    state = item.live.state
    out.print(cell(f"{instance.slug}: https://{instance.domain}", "bold"))
    out.print(cell(_("State: %(state)s%(detail)s") % {
        "state": diagram.state_label(state),
        "detail": f" ({item.live.detail})" if item.live.detail else ""},
        STATE_STYLES[diagram.state_tone(state)]))
    from chaton.services.actions import image_label

    image = image_label(instance)
    for label, value in (
            (_("Application"), instance.application), (_("Host"), instance.host.name),
            (_("Port"), str(instance.port)), (_("Image"), image),
            (_("Owner"), str(instance.owner) if instance.owner else _("the collective")),
            (_("Who may log in"), instance.login_group.name if instance.login_group
             else _("every account"))):
        out.print(cell(f"{label}: {value}"))
    for name, value in instance.settings.items():
        out.print(cell(f"  {name} = {shown_value(value)}"))
    failure = (proxy.certificate_failure(instance.domain)
               if instance.state == DesiredState.RUNNING else None)
    if failure is not None:
        out.print(cell(_("No certificate for %(domain)s; the proxy's reason: %(reason)s")
                       % {"domain": instance.domain, "reason": failure}, "red"),
                  soft_wrap=True)
    table = Table(title=_("History"))
    for header in (_("When"), _("What"), _("Outcome"), _("Message")):
        table.add_column(header)
    for event in queries.events(instance, limit=20):
        table.add_row(cell(timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M")),
                      cell(f"{event.get_kind_display()} {event.to_image}".strip()),
                      cell(event.get_outcome_display()), cell(event.message))
    out.print(table)
    plan, _engines, _planned = reconcile.plan(instances=[instance])
    if plan.is_noop and not plan.errors:
        out.print(_("Up to date: nothing to change."), markup=False)
    else:
        print_plan(plan)


@instance_app.command("set")
def instance_set(
    slug: Annotated[str, typer.Argument(help="The instance's short name.")],
    settings: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME=VALUE]...", help="The settings to change.")] = None,
    login_group: Annotated[str, typer.Option(
        "--login-group", help="Only this group's members may log in.")] = "",
    every_account: Annotated[bool, typer.Option(
        "--every-account", help="Every account may log in.")] = False,
) -> None:
    """Change some settings of an instance, or who may log in.

    The other settings keep their values; its containers are replaced.
    """
    setup_django()
    from chaton.core.errors import InvalidInput
    from chaton.directory.queries import group_by_name
    from chaton.services import actions, queries

    instance = queries.instance_by_slug(slug)
    if login_group and every_account:
        raise InvalidInput(_("Choose --login-group or --every-account, not both."),
                           field="login_group")
    if not settings and not login_group and not every_account:
        raise InvalidInput(_("Give settings as name=value, or --login-group."),
                           field="settings")
    group: Any = (group_by_name(login_group, field="login_group") if login_group
                  else None if every_account else ...)
    values = (parse_settings(settings, queries.manifest_by_name(instance.application))
              if settings else None)
    actions.do_update_instance_settings(instance, values, acting_user=acting_user(),
                                        login_group=group)
    console().print(_("Saved; %(slug)s follows its new settings.") % {"slug": instance.slug},
                    style="green", markup=False)


@instance_app.command("upgrade")
def instance_upgrade(
    slug: Annotated[str, typer.Argument(help="The instance's short name.")],
    image: Annotated[str, typer.Argument(help="The new pin: repository:tag@sha256:<digest>.")],
    no_wait: Annotated[bool, typer.Option(
        "--no-wait", help="Return at once; the worker checks the new version.")] = False,
) -> None:
    """Move an instance to another image pin, rolled back if unhealthy.

    The new version takes the traffic once healthy; otherwise it is removed
    and the old one keeps serving. Exit 1 when rolled back.
    """
    setup_django()
    from chaton.services import actions, queries
    from chaton.services.models import Outcome

    deployment = actions.do_upgrade_instance(queries.instance_by_slug(slug), image,
                                             acting_user=acting_user(), wait=not no_wait)
    if deployment.outcome == Outcome.PENDING:
        console().print(_("The upgrade to %(image)s is under way.")
                        % {"image": deployment.to_image}, markup=False)
        return
    healthy = deployment.outcome == Outcome.HEALTHY
    console().print(f"{deployment.get_outcome_display()}: {deployment.message}",
                    style="green" if healthy else "red", markup=False)
    if not healthy:
        raise typer.Exit(1)


@instance_app.command("remove")
def instance_remove(
    slug: Annotated[str, typer.Argument(help="The instance's short name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to type the short name.")
                   ] = False,
    delete_data: Annotated[bool, typer.Option(
        "--delete-data", help="Delete its volumes too (otherwise kept on the host).")] = False,
) -> None:
    """Remove an instance; you type its short name to confirm (or give --yes)."""
    setup_django()
    from chaton.services import actions, queries

    instance = queries.instance_by_slug(slug)
    confirm = instance.slug if yes else typer.prompt(
        _("Type %(slug)s to remove it%(data)s") % {
            "slug": instance.slug, "data": _(" with its data") if delete_data else ""},
        default="", show_default=False)
    actions.do_remove_instance(instance, confirm=confirm, acting_user=acting_user(),
                               delete_data=delete_data)
    console().print(_("%(slug)s is removed%(data)s.") % {
        "slug": instance.slug,
        "data": _(" with its data") if delete_data else _("; its data is kept on the host")},
        style="green", markup=False)


# -- reconcile and diagram -----------------------------------------------------------------------


@app.command("plan")
def plan_command() -> None:
    """Show what a reconcile would change on every host and in the proxy, changing nothing."""
    setup_django()
    from chaton.services import queries

    plan = queries.preview()
    print_plan(plan)
    routes = queries.proxy_preview()
    for line in routes.lines:
        console().print(cell(line, "yellow"), soft_wrap=True)
    if routes.error:
        console().print(cell(_("x proxy: %(error)s") % {"error": routes.error}, "red"),
                        soft_wrap=True)
    if plan.is_noop and not plan.errors and routes.is_noop:
        console().print(_("Every host is up to date."), style="bold", markup=False)


def apply_with_progress(plan: Plan, engines: Any, instances: list[Any],
                        progress: Progress) -> Result:
    """Apply a plan instance by instance (each instance's steps in their order), advancing
    a progress bar by the steps done; return what it all did."""
    from chaton.services.apply import Result, apply_plan
    from chaton.services.plan import Plan

    task = progress.add_task(_("Reconciling"), total=max(1, len(plan.steps)))
    groups: dict[tuple[str, str], list[Any]] = {}
    for step in plan.steps:
        groups.setdefault((step.host, step.instance), []).append(step)
    total = Result()
    # An empty plan still hands the routes to the proxy, as reconcile() does.
    for steps in groups.values() or [[]]:
        result = apply_plan(Plan(steps=steps), engines, instances)
        total.applied += result.applied
        total.failures += result.failures
        total.upgrades += result.upgrades
        total.proxy_changes += result.proxy_changes
        total.proxy_error = result.proxy_error
        progress.advance(task, len(steps))
    progress.update(task, completed=max(1, len(plan.steps)))
    return total


@app.command("reconcile")
def reconcile_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan, change nothing.")
                       ] = False,
    delete_orphan_volumes: Annotated[bool, typer.Option(
        "--delete-orphan-volumes", help="Also delete the data of instances that no longer "
        "exist.")] = False,
) -> None:
    """Bring every host and the proxy to the desired state. Exit 1 when something failed."""
    setup_django()
    from chaton.services import reconcile
    from chaton.services.apply import apply_plan

    # First the instances' directory accounts, as reconcile.reconcile does.
    account_changes, directory_error = reconcile.sync_accounts(dry_run=dry_run)
    plan, engines, planned = reconcile.plan(delete_orphan_volumes=delete_orphan_volumes)
    if dry_run:
        result = apply_plan(plan, engines, planned, dry_run=True)
        print_plan(plan)
        for line in result.proxy_changes:
            console().print(cell(f"~ proxy: {line}", "yellow"), soft_wrap=True)
        _print_accounts(account_changes, directory_error)
        console().print(_("Dry run: nothing was changed."), markup=False)
        return
    print_plan(plan)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console(), transient=True) as bar:
        result = apply_with_progress(plan, engines, planned, bar)
    for line in result.proxy_changes:
        console().print(cell(f"~ proxy: {line}", "yellow"), soft_wrap=True)
    for slug, outcome in result.upgrades:
        console().print(cell(f"^ {slug}: {outcome}", "cyan"), soft_wrap=True)
    for failure in result.failures:
        console().print(cell(f"! {failure}", "red"), soft_wrap=True)
    if result.proxy_error:
        console().print(cell(_("proxy: %(error)s") % {"error": result.proxy_error}, "red"),
                        soft_wrap=True)
    _print_accounts(account_changes, directory_error)
    console().print(_("%(applied)d change(s) applied, %(failed)d failed.")
                    % {"applied": result.applied, "failed": len(result.failures)},
                    style="bold", markup=False)
    if not result.ok or plan.errors or directory_error:
        raise typer.Exit(1)


def _print_accounts(changes: list[str], error: str) -> None:
    """Print the instances' directory account changes and the error that stopped them."""
    for line in changes:
        console().print(cell(f"~ directory: {line}", "yellow"), soft_wrap=True)
    if error:
        console().print(cell(_("directory: %(error)s") % {"error": error}, "red"),
                        soft_wrap=True)


@app.command("diagram")
def diagram_command(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Write the SVG to FILE (default: standard output).")] = None,
) -> None:
    """Draw the proxy, the hosts, the instances and their domains, as SVG."""
    setup_django()
    from chaton.core.errors import InvalidInput
    from chaton.services import diagram

    svg = str(diagram.draw(diagram.landscape(), standalone=True))
    if output is None:
        sys.stdout.write(svg + "\n")
        return
    try:
        output.write_text(svg + "\n", encoding="utf-8")
    except OSError as error:
        raise InvalidInput(_("Cannot write %(path)s: %(error)s")
                           % {"path": output, "error": error.strerror or error},
                           field="output") from None
    console().print(_("Diagram written to %(path)s.") % {"path": output}, markup=False)
