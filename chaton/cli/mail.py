"""``chaton mail``: mail domains, their DNS records, DKIM keys.

Thin over :mod:`chaton.mail.actions`. ``publish_retired_keys`` cannot be set here: it is
the members' decision (``chaton decision propose --op mail.publish_retired_keys …``); a
``--publish-retired-keys`` is refused with the link to the proposal, as everywhere.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from chaton.cli.runtime import acting_user, console, setup_django

app = typer.Typer(no_args_is_help=True, add_completion=False)
domain_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Mail domains and their records.")
zone_app = typer.Typer(no_args_is_help=True, add_completion=False, help="DNS zones.")
dkim_app = typer.Typer(no_args_is_help=True, add_completion=False, help="DKIM keys.")
dns_app = typer.Typer(no_args_is_help=True, add_completion=False,
                      help="The DNS plan of a domain, and applying it.")
app.add_typer(domain_app, name="domain")
app.add_typer(zone_app, name="zone")
app.add_typer(dkim_app, name="dkim")
app.add_typer(dns_app, name="dns")


def _say(text: str) -> None:
    console().print(text, markup=False, highlight=False)


@zone_app.command("add")
def zone_add(
    name: str,
    mode: Annotated[str, typer.Option(help="rfc2136 (Chaton updates it) or manual.")] = "manual",
    server: Annotated[str, typer.Option(help="The primary server, host:port.")] = "",
    tsig_name: Annotated[str, typer.Option(help="The TSIG key's name.")] = "",
    tsig_algorithm: Annotated[str, typer.Option(help="The TSIG algorithm.")] = "hmac-sha256",
    tsig_secret_file: Annotated[str, typer.Option(
        help="A file holding the TSIG secret (base64).")] = "",
) -> None:
    """Record a DNS zone."""
    setup_django()
    from pathlib import Path

    from chaton.core.errors import InvalidInput
    from chaton.mail import actions

    host, _, port_text = server.rpartition(":") if ":" in server else (server, "", "53")
    if not port_text.isdigit():
        raise InvalidInput("--server: expected host:port", field="server")
    secret = Path(tsig_secret_file).read_text().strip() if tsig_secret_file else ""
    zone = actions.do_create_zone(name, acting_user=acting_user(), mode=mode, server_host=host,
                                  server_port=int(port_text), tsig_name=tsig_name,
                                  tsig_algorithm=tsig_algorithm, tsig_secret=secret)
    _say(f"zone {zone.name} ({zone.mode})")


@domain_app.command("add")
def domain_add(
    name: str,
    zone: Annotated[str, typer.Option(help="The zone the domain is in.")],
    mx: Annotated[list[str] | None, typer.Option(help="A mail exchanger (repeat).")] = None,
    sending_address: Annotated[list[str] | None, typer.Option(
        help="An address mail leaves from (repeat).")] = None,
    dkim_zone: Annotated[str, typer.Option(help="Where the DKIM records live.")] = "",
    dmarc_policy: Annotated[str, typer.Option(help="none, quarantine or reject.")] = "none",
    dmarc_reports: Annotated[str, typer.Option(help="DMARC reports go to this address.")] = "",
    tls_reports: Annotated[str, typer.Option(help="TLS reports go to this address.")] = "",
    organization: Annotated[str, typer.Option(help="A partner's short name.")] = "",
    publish_retired_keys: Annotated[bool | None, typer.Option(
        "--publish-retired-keys", help="Refused: the members decide it.")] = None,
) -> None:
    """Add a mail domain; its first DKIM key comes with the worker's next pass."""
    setup_django()
    from chaton.mail import actions, queries
    from chaton.members.queries import organization_by_slug

    values: dict[str, object] = {}
    if publish_retired_keys is not None:
        values["publish_retired_keys"] = publish_retired_keys
    domain = actions.do_add_domain(
        name, acting_user=acting_user(), zone=queries.zone_by_name(zone),
        dkim_zone=queries.zone_by_name(dkim_zone, field="dkim_zone") if dkim_zone else None,
        organization=organization_by_slug(organization, field="organization")
        if organization else None,
        mx_hosts=list(mx or []), sending_addresses=list(sending_address or []),
        dmarc_policy=dmarc_policy, dmarc_report_address=dmarc_reports,
        tls_rpt_address=tls_reports, **values)
    _say(f"mail domain {domain.name} added (zone {domain.zone.name})")


@domain_app.command("set")
def domain_set(
    name: str,
    publish_retired_keys: Annotated[bool | None, typer.Option(
        "--publish-retired-keys/--no-publish-retired-keys",
        help="Refused: the members decide it.")] = None,
    dmarc_policy: Annotated[str | None, typer.Option(help="none, quarantine or reject.")] = None,
    mta_sts_mode: Annotated[str | None, typer.Option(help="testing, enforce or none.")] = None,
) -> None:
    """Change a domain's settings."""
    setup_django()
    from chaton.mail import actions, queries

    values: dict[str, object] = {}
    for key, value in (("publish_retired_keys", publish_retired_keys),
                       ("dmarc_policy", dmarc_policy), ("mta_sts_mode", mta_sts_mode)):
        if value is not None:
            values[key] = value
    domain = actions.do_update_domain(queries.domain_by_name(name), acting_user=acting_user(),
                                      **values)
    _say(f"mail domain {domain.name} changed")


@domain_app.command("show")
def domain_show(name: str) -> None:
    """Show a domain's settings and the records it needs, as a zone file."""
    setup_django()
    from chaton.mail import queries
    from chaton.mail.records import expected, zone_snippet

    domain = queries.domain_by_name(name)
    _say(f"{domain.name}  zone {domain.zone.name} ({domain.zone.mode})")
    _say(f"retired keys published: {'yes' if domain.publish_retired_keys else 'no'}")
    _say(zone_snippet(expected(queries.facts_of(domain))).rstrip("\n"))


@domain_app.command("diagnose")
def domain_diagnose(name: str) -> None:
    """Check the domain's records, keys and servers; one line per finding with its fix.
    Exit 1 when something is to fix."""
    setup_django()
    from chaton.mail import diagnosis, queries

    findings = diagnosis.diagnose_domain(queries.domain_by_name(name))
    for finding in findings:
        where = f" [{finding.server}]" if finding.server else ""
        _say(f"{finding.severity} {finding.code}{where}: {finding.subject}: expected "
             f"{finding.expected or '-'}, found {finding.found or '-'}. {finding.fix}")
    if findings:
        raise typer.Exit(1)
    _say("nothing to fix")


@dkim_app.command("status")
def dkim_status(name: str) -> None:
    """List the domain's DKIM keys, their states and dates."""
    setup_django()
    from chaton.mail import queries

    for key in queries.key_rows(queries.domain_by_name(name)):
        dates = "  ".join(f"{label} {moment:%Y-%m-%d %H:%M}" for label, moment in (
            ("created", key.created_at), ("seen", key.advertised_at),
            ("active", key.activated_at), ("retiring", key.retiring_at),
            ("retired", key.retired_at), ("revealed", key.revealed_at)) if moment)
        _say(f"{key.selector}  {key.algorithm}-{key.bits}  {key.state}"
             f"{'  emergency' if key.emergency else ''}  {dates}")


@dkim_app.command("rotate")
def dkim_rotate(
    name: str,
    emergency: Annotated[bool, typer.Option(
        "--emergency", help="The active key is compromised: it stops signing at once.")] = False,
) -> None:
    """Start a rotation: a new key signs once its record is seen on every server."""
    setup_django()
    from chaton.mail import actions, queries

    result = actions.do_rotate(queries.domain_by_name(name), acting_user=acting_user(),
                               emergency=emergency)
    for key in result.new_keys:
        _say(f"new key {key.selector} (pending until its record is seen)")
    for key in result.retired:
        _say(f"retired at once: {key.selector}")
    for line in result.skipped:
        _say(f"skipped: {line}")


@dkim_app.command("published")
def dkim_published(domain: Annotated[str, typer.Argument(help="Only this domain.")] = "") -> None:
    """List the published retired keys and fetch each at its public URL; exit 1 when one is
    not reachable."""
    setup_django()
    from chaton.mail import published, queries

    if domain:
        domain = queries.domain_by_name(domain).name
    rows = published.check(published.published_keys(domain or None))
    for row in rows:
        state = "reachable" if row.reachable else f"NOT reachable ({row.detail})"
        _say(f"{row.domain} {row.selector} {row.url} {state}")
    if not rows:
        _say("no key is published")
    if any(not row.reachable for row in rows):
        raise typer.Exit(1)


@dns_app.command("plan")
def dns_plan(name: str,
             as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False) -> None:
    """Compare the zones with what the domain needs."""
    setup_django()
    from chaton.mail import dnsplan, queries

    domain = queries.domain_by_name(name)
    with dnsplan.coded_errors():
        the_plan = dnsplan.plan(domain)
    if as_json:
        _say(json.dumps([step.as_dict() for step in the_plan.steps], indent=2))
        return
    for step in the_plan.steps:
        record = step.item.record
        wanted = " | ".join(record.values) if not step.item.absent else "(none)"
        _say(f"{step.action:7} {record.name} {record.type} {wanted}")
    if the_plan.manual_zones:
        _say(f"set by hand: {', '.join(the_plan.manual_zones)}")


@dns_app.command("apply")
def dns_apply(name: str) -> None:
    """Apply the plan to the zones Chaton updates."""
    setup_django()
    from chaton.mail import actions, queries

    changed = actions.do_apply_dns(queries.domain_by_name(name), acting_user=acting_user())
    _say(f"{changed} record sets changed")
