"""``chaton chatonsinfos check`` and ``chaton transparency software|request …``.

``check`` reads the ChatonsInfos files as they are served — this Chaton's own
(through its views) or a site's given by ``--url`` — runs the validator on each
and exits 1 when one has an error.
"""

from __future__ import annotations

from typing import Annotated

import typer

from chaton.cli.runtime import acting_user, cell, console, parse_date, setup_django

chatonsinfos_app = typer.Typer(no_args_is_help=True, add_completion=False)
app = typer.Typer(no_args_is_help=True, add_completion=False)
request_app = typer.Typer(no_args_is_help=True, add_completion=False)
app.add_typer(request_app, name="request",
              help="The register of authority requests: add, list, publish.")


@chatonsinfos_app.callback()
def _chatonsinfos() -> None:
    """ChatonsInfos files."""


@chatonsinfos_app.command("check")
def check(url: Annotated[str, typer.Option(
        help="A site's organization.properties (or its address); default: this Chaton's.")] = ""
          ) -> None:
    """Run the validator on the ChatonsInfos files served; exit 1 on an error."""
    setup_django()
    from chaton.transparency import chatonsinfos
    from chaton.transparency.check import check_served, http_fetcher, local_fetcher

    if url:
        target = url if url.endswith(".properties") else \
            url.rstrip("/") + chatonsinfos.WELL_KNOWN + "organization.properties"
        reports = check_served(target, http_fetcher())
    else:
        reports = check_served(chatonsinfos.file_url("organization"), local_fetcher())
    failed = False
    for report in reports:
        errors = sum(1 for finding in report.findings if finding.level == "error")
        warnings = len(report.findings) - errors
        console().print(cell(f"{'ok   ' if report.ok else 'FAIL '} {report.url} "
                             f"({errors} errors, {warnings} warnings)"))
        for finding in report.findings:
            console().print(cell(f"      {finding}"))
        failed = failed or not report.ok
    if failed:
        raise typer.Exit(1)


@app.command("software")
def software(refresh: Annotated[bool, typer.Option(
        "--refresh", help="Draw up a new list now (reads the hosts' packages).")] = False) -> None:
    """Show the newest software list (images and the hosts' Debian packages)."""
    setup_django()
    from chaton.transparency import actions, queries

    latest = (actions.do_refresh_software_list(acting_user=acting_user()) if refresh
              else queries.latest_software_list())
    if latest is None:
        console().print("No software list yet: run chaton transparency software --refresh.")
        return
    console().print(cell(f"Software list {latest.year}, generated {latest.generated_at:%Y-%m-%d}"))
    for note in latest.notes:
        console().print(cell(f"  {note}"))
    images = [entry for entry in latest.entries if entry["kind"] == "image"]
    for entry in images:
        console().print(cell(f"  {entry['instance']}: {entry['name']} {entry['version']}"))
    console().print(cell(f"  {len(latest.entries) - len(images)} packages"))


@request_app.command("add")
def request_add(
    received_on: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    authority: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="The kind of request (identification, seizure …).")],
    asked: Annotated[str, typer.Option(help="What was asked (kept private).")],
    answered: Annotated[str, typer.Option(help="What was answered (kept private).")] = "",
    answered_on: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "",
) -> None:
    """Record a request received from an authority (private until published)."""
    setup_django()
    from chaton.transparency import actions

    row = actions.do_add_authority_request(
        acting_user=acting_user(), received_on=parse_date(received_on, field="received_on"),
        authority=authority, kind=kind, asked=asked, answered=answered,
        answered_on=parse_date(answered_on, field="answered_on") if answered_on else None)
    console().print(cell(f"Recorded request #{row.pk}."))


@request_app.command("list")
def request_list() -> None:
    """List the register, every request (private fields included: administrators only)."""
    setup_django()
    from chaton.transparency.models import AuthorityRequest

    for row in AuthorityRequest.objects.order_by("-received_on", "-id"):
        state = "published" if row.published else "private"
        console().print(cell(f"#{row.pk} {row.received_on} {row.authority} — {row.kind} "
                             f"[{state}]"))


@request_app.command("publish")
def request_publish(
    request_id: Annotated[int, typer.Argument()],
    text: Annotated[str, typer.Option(help="The public text, with personal data removed.")],
) -> None:
    """Publish a request with a text free of personal data."""
    setup_django()
    from chaton.core.api import check_id
    from chaton.transparency import actions, queries

    row = queries.request_by_id(check_id(request_id))
    actions.do_publish_authority_request(row, acting_user=acting_user(), published_text=text)
    console().print(cell(f"Published request #{row.pk}."))
