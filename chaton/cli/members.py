"""``chaton member …`` and ``chaton org …``: persons, partner organizations, memberships, dues."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from django.utils.translation import gettext as _
from rich.table import Table

from chaton.cli.runtime import acting_user, cell, console, parse_date, setup_django

if TYPE_CHECKING:
    from chaton.members.models import Organization, Person

member_app = typer.Typer(no_args_is_help=True, add_completion=False)
organization_app = typer.Typer(no_args_is_help=True, add_completion=False)


# -- members -------------------------------------------------------------------


@member_app.command("list")
def list_members(
    all_memberships: Annotated[bool, typer.Option(
        "--all", help="Every membership, past and future too.")] = False,
    on: Annotated[str | None, typer.Option(
        "--on", metavar="DATE", help="Memberships running on this day (default: today).")] = None,
) -> None:
    """List memberships, with the dues paid towards each."""
    setup_django()
    from chaton.core import clock
    from chaton.members.queries import memberships_with_dues

    day = None if all_memberships else (parse_date(on, field="on") if on else clock.today())
    table = Table(title=_("Memberships") if day is None else
                  _("Memberships on %(date)s") % {"date": day.isoformat()})
    for header in (_("Member"), _("Type"), _("Kind"), _("From"), _("Until"), _("Dues")):
        table.add_column(header)
    rows = memberships_with_dues(day)
    for membership in rows:
        member_type = _("person") if membership.person_id else _("organization")
        dues = membership.dues_total  # type: ignore[attr-defined]
        table.add_row(cell(membership.member), cell(member_type),
                      cell(membership.get_kind_display()), cell(membership.starts_on),
                      cell(membership.ends_on or "…"),
                      cell(f"{dues:.2f} €" if dues is not None else "-"))
    console().print(table)
    console().print(_("%(count)d membership(s).") % {"count": len(rows)}, markup=False)


@member_app.command("add")
def add_member(
    full_name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="Full name of the person (when they are not known yet).")] = None,
    email: Annotated[str | None, typer.Option(
        "--email", help="The person's e-mail: a known person gets a new membership.")] = None,
    phone: Annotated[str, typer.Option("--phone", help="The new person's phone.")] = "",
    organization_slug: Annotated[str | None, typer.Option(
        "--org", metavar="SLUG", help="A membership for this organization instead.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="regular or support.")] = "regular",
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE", help="First day (default: today).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="DATE", help="Last day (default: open-ended).")] = None,
    dues: Annotated[str | None, typer.Option(
        "--dues", metavar="AMOUNT", help="Dues paid on the first day, in euros.")] = None,
) -> None:
    """Add a member: a person (created if new) or an organization, with a membership."""
    setup_django()
    from django.db import transaction

    from chaton.core import clock
    from chaton.core.errors import InvalidInput
    from chaton.members import actions
    from chaton.members.models import Person
    from chaton.members.queries import organization_by_slug

    starts_on = parse_date(since, field="since") if since else clock.today()
    ends_on = parse_date(until, field="until") if until else None
    user = acting_user()
    member: Person | Organization
    # One transaction: a refused membership does not leave a new person behind.
    with transaction.atomic():
        if organization_slug:
            if full_name or email:
                raise InvalidInput(_("Give either --org or a person's name and e-mail, not "
                                     "both."), field="organization")
            member = organization_by_slug(organization_slug)
        elif not email:
            raise InvalidInput(_("Give the person's e-mail with --email."), field="email")
        else:
            known = Person.objects.filter(email=email.strip().lower()).first()
            if known is not None:
                member = known
            elif not full_name:
                raise InvalidInput(_("No person has the e-mail address %(email)s: give their "
                                     "full name to add them.") % {"email": email.strip()},
                                   field="full_name")
            else:
                member = actions.do_create_person(full_name, email, phone=phone,
                                                  acting_user=user)
        membership = actions.do_start_membership(member, acting_user=user, kind=kind,
                                                 starts_on=starts_on, ends_on=ends_on)
        if dues is not None:
            actions.do_record_dues(membership, dues, starts_on, acting_user=user)
    console().print(_("%(member)s: %(kind)s membership from %(date)s.") % {
        "member": member, "kind": membership.get_kind_display(),
        "date": membership.starts_on.isoformat()}, style="green", markup=False)


@member_app.command("end")
def end_member(
    member_name: Annotated[str, typer.Argument(
        metavar="MEMBER", help="A person's e-mail or an organization's short name.")],
    on: Annotated[str | None, typer.Option(
        "--on", metavar="DATE", help="The membership's last day (default: today).")] = None,
) -> None:
    """End a member's running membership: an ordinary action of the administrator named
    by --as, announced and open to a counter-vote."""
    setup_django()
    from chaton.core import clock
    from chaton.core.errors import InvalidInput, NotFound
    from chaton.governance.actions import do_end_membership_ordinarily
    from chaton.members.queries import member_by_name, open_membership_of

    last_day = parse_date(on, field="on") if on else clock.today()
    member = member_by_name(member_name)
    membership = open_membership_of(member, last_day)
    if membership is None:
        raise NotFound(_("%(member)s has no membership running on %(date)s.")
                       % {"member": member, "date": last_day.isoformat()}, field="member")
    user = acting_user()
    if user is None:
        raise InvalidInput(_("Say which administrator acts: chaton --as UID member end …"),
                           field="as")
    decision = do_end_membership_ordinarily(membership, last_day, acting_user=user)
    console().print(_("%(member)s: membership ends on %(date)s (ordinary action #%(number)d, "
                      "open to a counter-vote).")
                    % {"member": member, "date": last_day.isoformat(), "number": decision.pk},
                    markup=False)


# -- organizations ---------------------------------------------------------------


@organization_app.command("add")
def add_organization(
    name: Annotated[str, typer.Argument(help="The organization's name.")],
    email: Annotated[str, typer.Option("--email", help="Its contact e-mail.")],
    slug: Annotated[str, typer.Option(
        "--slug", help="Short name in the directory (default: derived from the name).")] = "",
) -> None:
    """Add a partner organization (give it a membership with `member add --org`)."""
    setup_django()
    from chaton.members import actions

    organization = actions.do_create_organization(name, email, slug=slug,
                                                  acting_user=acting_user())
    console().print(_("Organization %(name)s added (short name %(slug)s).")
                    % {"name": organization.name, "slug": organization.slug},
                    style="green", markup=False)


@organization_app.command("list")
def list_organizations(
    search: Annotated[str, typer.Option("--search", help="Only names containing this.")] = "",
) -> None:
    """List the partner organizations."""
    setup_django()
    from chaton.members.queries import search_organizations

    table = Table(title=_("Organizations"))
    for header in (_("Name"), _("Short name"), _("E-mail")):
        table.add_column(header)
    rows = list(search_organizations(search))
    for organization in rows:
        table.add_row(cell(organization.name), cell(organization.slug), cell(organization.email))
    console().print(table)
    console().print(_("%(count)d organization(s).") % {"count": len(rows)}, markup=False)
