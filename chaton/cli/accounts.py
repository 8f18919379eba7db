"""``chaton account …``, ``chaton group …``, ``chaton ssh-key …`` and ``chaton token …``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rich.table import Table

from chaton.cli.runtime import (
    acting_user,
    cell,
    console,
    parse_until,
    setup_django,
)

if TYPE_CHECKING:
    import datetime as dt


account_app = typer.Typer(no_args_is_help=True, add_completion=False)
group_app = typer.Typer(no_args_is_help=True, add_completion=False)
ssh_key_app = typer.Typer(no_args_is_help=True, add_completion=False)
token_app = typer.Typer(no_args_is_help=True, add_completion=False)


def read_password(password_file: Path | None, prompt: str) -> str:
    """Return the first line of ``password_file``, or a password typed twice at a hidden prompt.

    Raise InvalidInput when the file cannot be read.
    """
    from chaton.core.errors import InvalidInput

    if password_file is None:
        password: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
        return password
    try:
        text = password_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(_("Cannot read the password file: %(error)s") % {"error": error},
                           field="password") from None
    # Up to the first newline only: str.splitlines() would also cut at \x85 or U+2028 and
    # keep a shorter password than the one written; those are refused as control characters.
    return text.split("\n", 1)[0].removesuffix("\r")


def _format_moment(moment: dt.datetime | None) -> str:
    from django.utils import timezone

    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


# -- accounts --------------------------------------------------------------------


@account_app.command("list")
def list_accounts(
    search: Annotated[str, typer.Option(
        "--search", help="Only uids, names or e-mails containing this.")] = "",
    state: Annotated[str, typer.Option("--state", help="active or disabled.")] = "",
) -> None:
    """List the accounts."""
    setup_django()
    from chaton.directory.queries import search_accounts

    table = Table(title=_("Accounts"))
    table.add_column(_("User name"), no_wrap=True)
    table.add_column(_("Name"))
    table.add_column(_("E-mail"), overflow="fold")
    for header in (_("State"), _("Expires"), _("Groups")):
        table.add_column(header)
    rows = list(search_accounts(search, state))
    for account in rows:
        state_text = account.get_state_display() + (" " + _("(admin)") if account.is_admin
                                                    else "")
        name = cell(account.display_name)
        owner = account.owner
        if owner is not None and str(owner) != account.display_name:
            # Who the account belongs to, when its name does not already say it.
            name.append("\n" + str(owner), style="dim")
        table.add_row(cell(account.uid), name, cell(account.email),
                      cell(state_text, "" if account.is_in_directory() else "red"),
                      cell(_format_moment(account.expires_at)),
                      cell(account.group_count))  # type: ignore[attr-defined]
    console().print(table)
    console().print(_("%(count)d account(s).") % {"count": len(rows)}, markup=False)


@account_app.command("add")
def add_account(
    uid: Annotated[str, typer.Argument(metavar="UID", help="The user name.")],
    display_name: Annotated[str | None, typer.Option(
        "--name", help="Display name (default: the owner's name).")] = None,
    email: Annotated[str | None, typer.Option(
        "--email", help="E-mail (default: the owner's).")] = None,
    person_email: Annotated[str | None, typer.Option(
        "--person", metavar="EMAIL", help="Owned by the person with this e-mail.")] = None,
    organization_slug: Annotated[str | None, typer.Option(
        "--org", metavar="SLUG", help="Owned by this organization.")] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", metavar="FILE", dir_okay=False,
        help="Read the password from the first line of FILE.")] = None,
    ask_password: Annotated[bool, typer.Option(
        "--ask-password", help="Type the password at a hidden prompt.")] = False,
    expires: Annotated[str | None, typer.Option(
        "--expires", metavar="DATE", help="Last day the account works.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An administrator.")] = False,
) -> None:
    """Create an account (without a password unless one is given: set it with `passwd`)."""
    setup_django()
    from chaton.core.errors import InvalidInput
    from chaton.directory import actions
    from chaton.members.queries import organization_by_slug, person_by_email

    if person_email and organization_slug:
        raise InvalidInput(_("An account has one owner: a person or an organization."),
                           field="organization")
    person = person_by_email(person_email) if person_email else None
    organization = organization_by_slug(organization_slug) if organization_slug else None
    owner = person or organization
    name = display_name or (str(owner) if owner is not None else "")
    address = email or (owner.email if owner is not None else "")
    if not name:
        raise InvalidInput(_("Give a display name with --name."), field="display_name")
    if not address:
        raise InvalidInput(_("Give an e-mail with --email."), field="email")
    expires_at = parse_until(expires, field="expires") if expires else None
    password = None
    if password_file is not None or ask_password:
        password = read_password(password_file, _("Password"))
    account = actions.do_create_account(uid, acting_user=acting_user(), display_name=name,
                                        email=address, password=password, person=person,
                                        organization=organization, expires_at=expires_at,
                                        is_admin=admin)
    console().print(_("Account %(uid)s created.") % {"uid": account.uid}, style="green",
                    markup=False)


def _set_state(uid: str, enabled: bool) -> None:
    setup_django()
    from chaton.directory import actions
    from chaton.directory.models import AccountState
    from chaton.directory.queries import account_by_uid

    account = account_by_uid(uid)
    state = AccountState.ACTIVE if enabled else AccountState.DISABLED
    actions.do_set_state(account, state, acting_user=acting_user())
    console().print(_("Account %(uid)s: %(state)s.")
                    % {"uid": account.uid, "state": account.get_state_display()}, markup=False)


@account_app.command("disable")
def disable_account(uid: Annotated[str, typer.Argument(metavar="UID")]) -> None:
    """Disable an account: it leaves the directory and cannot log in."""
    _set_state(uid, enabled=False)


@account_app.command("enable")
def enable_account(uid: Annotated[str, typer.Argument(metavar="UID")]) -> None:
    """Enable a disabled account again."""
    _set_state(uid, enabled=True)


@account_app.command("passwd")
def set_password(
    uid: Annotated[str, typer.Argument(metavar="UID")],
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", metavar="FILE", dir_okay=False,
        help="Read the password from the first line of FILE.")] = None,
) -> None:
    """Set an account's password (typed twice at a hidden prompt, or read from a file)."""
    setup_django()
    from chaton.directory import actions
    from chaton.directory.queries import account_by_uid

    account = account_by_uid(uid)
    password = read_password(password_file, _("New password for %(uid)s") % {"uid": account.uid})
    actions.do_set_password(account, password, acting_user=acting_user())
    console().print(_("Password of %(uid)s changed.") % {"uid": account.uid}, markup=False)


@account_app.command("reset-second-factor")
def reset_second_factor(uid: Annotated[str, typer.Argument(metavar="UID")]) -> None:
    """Remove an account's authenticator and recovery codes (a lost phone and a lost sheet).

    Run on the server by whoever holds it: the person then logs in with their
    password and, an administrator, must enrol again before administering. The
    account's tokens with the ``admin`` scope are revoked with it.
    """
    setup_django()
    from chaton.directory.queries import account_by_uid
    from chaton.security import actions

    account = account_by_uid(uid)
    revoked = actions.do_remove_second_factor(account, acting_user=acting_user())
    console().print(_("Second factor of %(uid)s removed: they enrol again at their next "
                      "login.") % {"uid": account.uid}, markup=False)
    if revoked:
        console().print(ngettext("%(count)d token with the “admin” scope revoked.",
                                 "%(count)d tokens with the “admin” scope revoked.", revoked)
                        % {"count": revoked}, markup=False)


@account_app.command("expire")
def expire_account(
    uid: Annotated[str, typer.Argument(metavar="UID")],
    until: Annotated[str, typer.Argument(
        metavar="DATE", help="Last day the account works (YYYY-MM-DD), or 'never'.")],
) -> None:
    """Set the last day an account works, or remove its end with 'never'."""
    setup_django()
    from chaton.directory import actions
    from chaton.directory.queries import account_by_uid

    account = account_by_uid(uid)
    expires_at = None if until.strip().lower() == "never" else parse_until(until, field="expires")
    actions.do_update_account(account, acting_user=acting_user(), expires_at=expires_at)
    if expires_at is None:
        console().print(_("Account %(uid)s no longer expires.") % {"uid": account.uid},
                        markup=False)
    else:
        console().print(_("Account %(uid)s expires at %(moment)s.")
                        % {"uid": account.uid, "moment": _format_moment(expires_at)},
                        markup=False)


# -- groups ----------------------------------------------------------------------


@group_app.command("list")
def list_groups() -> None:
    """List the groups with their number of members."""
    setup_django()
    from chaton.core import clock
    from chaton.directory.queries import groups_with_counts

    table = Table(title=_("Groups"))
    for header in (_("Name"), _("Kind"), _("Members"), _("Description")):
        table.add_column(header)
    rows = list(groups_with_counts(clock.now()))
    for group in rows:
        valid, total = group.valid_count, group.member_count  # type: ignore[attr-defined]
        table.add_row(cell(group.name), cell(group.get_kind_display()),
                      cell(str(valid) if valid == total else
                           _("%(valid)d (of %(total)d)") % {"valid": valid, "total": total}),
                      cell(group.description))
    console().print(table)


@group_app.command("members")
def list_group_members(name: Annotated[str, typer.Argument(metavar="GROUP")]) -> None:
    """List the members of a group, with the end of each one's access."""
    setup_django()
    from chaton.core import clock
    from chaton.directory.queries import group_by_name, group_members

    group = group_by_name(name)
    now = clock.now()
    table = Table(title=_("Members of %(group)s") % {"group": group.name})
    for header in (_("User name"), _("Name"), _("Until")):
        table.add_column(header)
    for membership in group_members(group):
        style = "red" if membership.is_expired(now) else ""
        table.add_row(cell(membership.account.uid, style),
                      cell(membership.account.display_name, style),
                      cell(_format_moment(membership.expires_at) or "…", style))
    console().print(table)


@group_app.command("add")
def add_group(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    description: Annotated[str, typer.Option("--description")] = "",
    kind: Annotated[str, typer.Option("--kind", help="team, members or service.")] = "team",
) -> None:
    """Create a group."""
    setup_django()
    from chaton.directory import actions

    group = actions.do_create_group(name, acting_user=acting_user(), description=description,
                                    kind=kind)
    console().print(_("Group %(name)s created.") % {"name": group.name}, style="green",
                    markup=False)


@group_app.command("rename")
def rename_group(
    name: Annotated[str, typer.Argument(metavar="GROUP")],
    new_name: Annotated[str, typer.Argument(metavar="NEW_NAME")],
) -> None:
    """Give a group another name (a group whose members are added by decision only: by
    decision)."""
    setup_django()
    from chaton.directory import actions
    from chaton.directory.queries import group_by_name

    group = actions.do_rename_group(group_by_name(name), new_name, acting_user=acting_user())
    console().print(_("Group %(name)s renamed to %(new)s.") % {"name": name.strip(),
                                                               "new": group.name},
                    style="green", markup=False)


@group_app.command("delete")
def delete_group(name: Annotated[str, typer.Argument(metavar="GROUP")]) -> None:
    """Delete a group and the accesses it gives (a group whose members are added by decision
    only: by decision)."""
    setup_django()
    from chaton.directory import actions
    from chaton.directory.queries import group_by_name

    group = group_by_name(name)
    actions.do_delete_group(group, acting_user=acting_user())
    console().print(_("Group %(name)s deleted.") % {"name": group.name}, markup=False)


@group_app.command("add-member")
def add_group_member(
    name: Annotated[str, typer.Argument(metavar="GROUP")],
    uid: Annotated[str, typer.Argument(metavar="USER")],
    until: Annotated[str | None, typer.Option(
        "--until", metavar="DATE", help="Last day of the access (YYYY-MM-DD, or "
        "YYYY-MM-DDTHH:MM); none by default.")] = None,
) -> None:
    """Put an account in a group, for good or until a date (adding again changes the date)."""
    setup_django()
    from chaton.directory import actions
    from chaton.directory.queries import account_by_uid, group_by_name

    group = group_by_name(name)
    account = account_by_uid(uid)
    expires_at = parse_until(until, field="until") if until else None
    actions.do_add_to_group(group, account, acting_user=acting_user(), expires_at=expires_at)
    if expires_at is None:
        console().print(_("%(uid)s is in %(group)s.") % {"uid": account.uid, "group": group.name},
                        style="green", markup=False)
    else:
        console().print(_("%(uid)s is in %(group)s until %(moment)s.")
                        % {"uid": account.uid, "group": group.name,
                           "moment": _format_moment(expires_at)}, style="green", markup=False)


@group_app.command("remove-member")
def remove_group_member(
    name: Annotated[str, typer.Argument(metavar="GROUP")],
    uid: Annotated[str, typer.Argument(metavar="USER")],
) -> None:
    """Take an account out of a group."""
    setup_django()
    from chaton.directory import actions
    from chaton.directory.queries import account_by_uid, group_by_name

    group = group_by_name(name)
    account = account_by_uid(uid)
    actions.do_remove_from_group(group, account, acting_user=acting_user())
    console().print(_("%(uid)s is not in %(group)s.") % {"uid": account.uid, "group": group.name},
                    markup=False)


# -- SSH keys and API tokens -------------------------------------------------------


@ssh_key_app.command("add")
def add_ssh_key(
    uid: Annotated[str, typer.Argument(metavar="USER")],
    key_file: Annotated[str, typer.Argument(
        metavar="FILE", help="A public key file (one key per line), or - for standard "
        "input.")],
) -> None:
    """Add SSH public keys to an account (all of them or none)."""
    setup_django()
    from django.db import transaction

    from chaton.core.errors import InvalidInput
    from chaton.directory import actions
    from chaton.directory.queries import account_by_uid

    account = account_by_uid(uid)
    if key_file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput(_("Cannot read the key file: %(error)s") % {"error": error},
                               field="key") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise InvalidInput(_("No SSH public key found in %(file)s.")
                           % {"file": "stdin" if key_file == "-" else key_file}, field="key")
    user = acting_user()
    with transaction.atomic():
        keys = [actions.do_add_ssh_key(account, line, acting_user=user) for line in lines]
    for key in keys:
        console().print(_("Key %(fingerprint)s added to %(uid)s.")
                        % {"fingerprint": key.fingerprint, "uid": account.uid}, style="green",
                        markup=False)


@ssh_key_app.command("list")
def list_ssh_keys(uid: Annotated[str, typer.Argument(metavar="USER")]) -> None:
    """List an account's SSH public keys, one per line: id, fingerprint, type, comment, added."""
    setup_django()
    from chaton.directory.queries import account_by_uid
    account = account_by_uid(uid)
    keys = list(account.ssh_keys.order_by("added_at", "id"))
    for key in keys:
        # One line each, never cut: the fingerprint is what `remove` takes.
        key_type, _blob, comment = [*key.key.split(None, 2), "", ""][:3]
        console().print(cell(f"{key.pk}  {key.fingerprint}  {key_type}  {comment}  "
                             f"({_format_moment(key.added_at)})"), soft_wrap=True)
    console().print(_("%(count)d key(s).") % {"count": len(keys)}, markup=False)


@ssh_key_app.command("remove")
def remove_ssh_key(
    uid: Annotated[str, typer.Argument(metavar="USER")],
    key: Annotated[str, typer.Argument(
        metavar="KEY", help="The key's id or its fingerprint (SHA256:…), as `list` shows.")],
) -> None:
    """Remove one SSH public key from an account; the directory drops it at once."""
    setup_django()
    from chaton.core.errors import NotFound
    from chaton.directory import actions
    from chaton.directory.queries import account_by_uid

    account = account_by_uid(uid)
    keys = account.ssh_keys.all()
    by_id = key.isascii() and key.isdigit() and int(key) < 2**63
    found = keys.filter(pk=int(key)).first() if by_id else keys.filter(fingerprint=key).first()
    if found is None:
        raise NotFound(_("%(uid)s has no SSH key %(key)s (see `chaton ssh-key list %(uid)s`).")
                       % {"uid": account.uid, "key": key}, field="key")
    found.account = account
    fingerprint = found.fingerprint
    actions.do_remove_ssh_key(found, acting_user=acting_user())
    console().print(_("Key %(fingerprint)s removed from %(uid)s.")
                    % {"fingerprint": fingerprint, "uid": account.uid}, markup=False)


@token_app.command("create")
def create_token(
    uid: Annotated[str, typer.Argument(metavar="USER")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the token is for.")],
    scopes: Annotated[list[str] | None, typer.Option(
        "--scope", metavar="SCOPE",
        help="read, write, admin or vote; repeat for several (default: read and write, admin "
             "for an administrator). vote asks for the account's own password (and "
             "second-factor code).")] = None,
) -> None:
    """Create an API token for an account; its key is printed once.

    A token that votes (--scope vote) is the member's own: the account's
    password is asked (a hidden prompt, or the first line of standard input),
    then a code of its second factor if it has one (the next prompt or line).
    """
    setup_django()
    from chaton.cli.governance import own_credential
    from chaton.core.actions import do_create_api_token
    from chaton.directory.queries import account_by_uid

    account = account_by_uid(uid)
    wanted = [scope.strip().lower() for scope in scopes] if scopes else None
    creator, proved = acting_user(), False
    if wanted and "vote" in wanted:
        # The owner proves it is them: then the token is theirs, minted by them.
        creator, proved = own_credential(account).account, True
    token, key = do_create_api_token(account, name, acting_user=creator, scopes=wanted,
                                     owner_proved=proved)
    console().print(_("Token %(name)s for %(uid)s, shown once:")
                    % {"name": token.name, "uid": account.uid}, markup=False)
    # Alone on its line, so that a script can take it with `tail -n 1`.
    console().print(key, markup=False, soft_wrap=True)
