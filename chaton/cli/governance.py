"""``chaton decision …``: proposals, ordinary actions, votes, counter-votes, the inventory.

Operations are written after the title, each as ``--op TYPE key=value …``::

    chaton decision propose "Kim reads the passwords" --as alix \\
        --op group.grant group=passwords account=kim expires_on=2027-06-30

or read from a JSON file (``--operations-file``) holding
``[{"type": "group.grant", "params": {…}}, …]``. A command that acts in
someone's name (propose, act, withdraw, contest) takes that account with its
own ``--as UID``, or the global one (``chaton --as UID decision …``).

A vote is the member's own, so ``vote`` needs their own credentials, not just
``--as``: their API token in ``$CHATON_TOKEN`` (one they made, with the
``vote`` scope), or ``--as UID`` and their password, typed at a hidden prompt
or given on standard input (``printf '%s\n' "$PASSWORD" | chaton decision vote 12 for --as alix``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from django.utils.translation import gettext as _
from rich.table import Table
from typer.core import TyperCommand

from chaton.cli.runtime import cell, console, invocation, parse_date, setup_django

if TYPE_CHECKING:
    import datetime as dt

    from chaton.directory.models import Account
    from chaton.governance.credentials import Credential
    from chaton.governance.models import Ballot, Decision
    from chaton.governance.queries import DecisionRow
    from chaton.governance.tally import Tally

app = typer.Typer(no_args_is_help=True, add_completion=False)

#: What lets ``--op TYPE key=value …`` through to the command, in the order typed: click
#: would otherwise refuse ``--op`` and take the parameters as stray arguments.
_OPERATION_WORDS = {"allow_extra_args": True, "ignore_unknown_options": True}

class OperationWordsCommand(TyperCommand):
    """A command whose ``--op TYPE key=value …`` words are read in order from its extra
    arguments, yet listed with the options in ``--help``.

    Its ``--op`` option is documentation only: it is kept out of the parser, so
    that each ``--op`` stays with the parameters that follow it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name == "operation_words":
                param.add_to_parser = _not_parsed  # type: ignore[method-assign]


def _not_parsed(parser: Any, ctx: Any) -> None:
    """Register nothing: the words stay in the command's extra arguments."""


#: The ``--op`` of ``propose`` and ``act``, as ``--help`` lists it (see OperationWordsCommand).
OperationWords = Annotated[list[str] | None, typer.Option(
    "--op", metavar="TYPE key=value …",
    help="An operation and its parameters, e.g. --op group.grant group=passwords account=kim; "
         "repeat --op for several. `chaton decision operations` lists the types.")]

AsOption = Annotated[str | None, typer.Option(
    "--as", metavar="UID", help="The account acting (default: the global --as).")]


# -- reading the command line ----------------------------------------------------------


def _value(text: str) -> Any:
    """Given the text after ``key=``, return the value to validate.

    JSON for an object or a list (``classes={"group.revoke": "extraordinary"}``),
    None for nothing, the text otherwise: the operation's params convert dates,
    numbers and booleans themselves. Raise InvalidInput for broken JSON.
    """
    from chaton.core.errors import InvalidInput

    stripped = text.strip()
    if not stripped:
        return None
    if stripped[0] in "{[":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as error:
            raise InvalidInput(_("“%(value)s” is not valid JSON: %(error)s")
                               % {"value": stripped, "error": error}, field="op") from None
    return text


def parse_operation_words(words: list[str]) -> list[dict[str, Any]]:
    """Given the words after the title, ``--op TYPE key=value … [--op TYPE …]``, return the
    operations as ``[{"type": …, "params": {…}}, …]``.

    Raise InvalidInput for a word out of place: an unknown option, a parameter
    before any ``--op``, a word without ``=``, a key given twice.
    """
    from chaton.core.errors import InvalidInput

    specs: list[dict[str, Any]] = []
    awaiting_type = False
    for word in words:
        if word == "--op" or word.startswith("--op="):
            if awaiting_type:
                raise InvalidInput(_("--op needs an operation type, such as group.grant."),
                                   field="op")
            type_name = word.partition("=")[2].strip()
            if type_name:
                specs.append({"type": type_name, "params": {}})
            else:
                awaiting_type = True
        elif awaiting_type:
            if word.startswith("-"):
                raise InvalidInput(_("--op needs an operation type, such as group.grant."),
                                   field="op")
            specs.append({"type": word.strip(), "params": {}})
            awaiting_type = False
        elif word.startswith("-"):
            raise InvalidInput(_("Unknown option “%(option)s”.") % {"option": word}, field="op")
        elif not specs:
            raise InvalidInput(_("“%(word)s”: write parameters after --op TYPE.")
                               % {"word": word}, field="op")
        else:
            key, equals, value = word.partition("=")
            key = key.strip()
            if not equals or not key:
                raise InvalidInput(_("“%(word)s”: write each parameter as key=value.")
                                   % {"word": word}, field="op")
            params = specs[-1]["params"]
            if key in params:
                raise InvalidInput(_("The parameter %(key)s is given twice.") % {"key": key},
                                   field="op")
            params[key] = _value(value)
    if awaiting_type:
        raise InvalidInput(_("--op needs an operation type, such as group.grant."), field="op")
    return specs


def read_operations_file(path: Path) -> list[Any]:
    """Given a JSON file holding ``[{"type": …, "params": {…}}, …]``, return that list.

    Raise InvalidInput when it cannot be read or is not a list (each item is
    checked by the action).
    """
    from chaton.core.errors import InvalidInput

    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(_("Cannot read the operations file %(path)s: %(error)s")
                           % {"path": path, "error": error}, field="operations") from None
    if not isinstance(content, list):
        raise InvalidInput(_("The operations file must hold a JSON list: "
                             "[{\"type\": …, \"params\": {…}}, …]."), field="operations")
    return content


def _operations(title: str, words: list[str], operations_file: Path | None) -> list[Any]:
    """Return the operations given by ``--op`` words or by the file. Raise InvalidInput."""
    from chaton.core.errors import InvalidInput

    if title.startswith("-"):
        # click took an option for the title: the title was left out or comes later.
        raise InvalidInput(_("Give the title first: TITLE --op TYPE key=value …"), field="title")
    typed = parse_operation_words(words)
    if operations_file is not None:
        if typed:
            raise InvalidInput(_("Give the operations with --op or with --operations-file, "
                                 "not both."), field="operations")
        return read_operations_file(operations_file)
    return typed


def _actor(uid: str | None, message: str) -> Account:
    """Return the account named by the command's ``--as``, else by the global one.

    Raise InvalidInput with ``message`` when neither names one, NotFound for an
    unknown uid.
    """
    from chaton.core.errors import InvalidInput
    from chaton.directory.queries import account_by_uid

    chosen = uid or invocation.acting_uid
    if not chosen or not chosen.strip():
        raise InvalidInput(message, field="as")
    return account_by_uid(chosen)


# -- printing ------------------------------------------------------------------------------


def _moment(moment: dt.datetime | None) -> str:
    from django.utils import timezone

    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def _day(moment: dt.datetime) -> str:
    from chaton.core import clock

    return clock.local_day(moment).isoformat()


def _tally_text(tally: Tally | None) -> tuple[str, str]:
    if tally is None:
        return "—", "—"
    return (f"{tally.votes_for}/{tally.electorate}", f"{tally.votes_against}/{tally.electorate}")


def _say(message: str, style: str | None = None) -> None:
    console().print(message, style=style, markup=False)


def _ballot_line(ballot: Ballot, tally: Tally) -> str:
    """Given a ballot and its tally, return one sentence: the counts, and the deadline or
    the outcome."""
    from django.utils.text import capfirst

    counts = {"for": tally.votes_for, "against": tally.votes_against,
              "electorate": tally.electorate}
    if ballot.closed_at is None:
        return _("%(ballot)s: %(for)d for, %(against)d against, of %(electorate)d voters; "
                 "closes on %(closes)s.") % {"ballot": capfirst(ballot.get_kind_display()),
                                             "closes": _moment(ballot.closes_at), **counts}
    return _("%(ballot)s: %(outcome)s with %(for)d for, %(against)d against, of "
             "%(electorate)d voters, on %(closed)s.") % {
        "ballot": capfirst(ballot.get_kind_display()), "outcome": ballot.get_outcome_display(),
        "closed": _moment(ballot.closed_at), **counts}


def _row(decision: Decision) -> DecisionRow:
    from chaton.governance import queries

    return queries.row(decision)


def _print_ballots(row: DecisionRow) -> None:
    """Print one line per ballot of the decision: the proposal's vote, then the counter-vote."""
    for ballot, tally in ((row.proposal, row.proposal_tally), (row.counter, row.counter_tally)):
        if ballot is not None and tally is not None:
            _say(_ballot_line(ballot, tally))


# -- reading decisions ----------------------------------------------------------------------


@app.command("list")
def list_decisions(
    status: Annotated[str, typer.Option(
        "--status", help="open, adopted, contested, rejected, withdrawn or cancelled.")] = "",
    kind: Annotated[str, typer.Option("--kind", help="ordinary or extraordinary.")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
) -> None:
    """List decisions, newest first, with their tallies (votes over the electorate)."""
    setup_django()
    from chaton.core.errors import InvalidInput
    from chaton.governance import queries
    from chaton.governance.models import Kind, Status

    chosen = queries.decisions()
    if status:
        if status not in Status.values:
            raise InvalidInput(_("Unknown status: choose among %(choices)s.")
                               % {"choices": ", ".join(Status.values)}, field="status")
        chosen = chosen.filter(status=status)
    if kind:
        if kind not in Kind.values:
            raise InvalidInput(_("Unknown kind: ordinary or extraordinary."), field="kind")
        chosen = chosen.filter(kind=kind)
    table = Table(title=_("Decisions"))
    # Only the short columns never wrap; the others wrap rather than vanish on a narrow
    # terminal.
    table.add_column(_("ID"), no_wrap=True)
    table.add_column(_("Object"), min_width=14, ratio=3)
    table.add_column(_("Kind"), min_width=5, ratio=1)
    table.add_column(_("Proposed by"), min_width=5, ratio=1)
    table.add_column(_("Date"), min_width=10)
    table.add_column(_("Status"), min_width=7, ratio=1)
    table.add_column(_("For"), no_wrap=True)
    table.add_column(_("Against"), no_wrap=True)
    table.add_column(_("Closes"), min_width=10)
    rows = queries.rows(chosen[:limit])
    for row in rows:
        decision = row.decision
        votes_for, votes_against = _tally_text(row.tally)
        open_ballot = row.open_ballot
        table.add_row(cell(f"#{decision.pk}"), cell(decision.title),
                      cell(decision.get_kind_display()), cell(decision.proposed_by_label),
                      cell(_day(decision.created_at)), cell(decision.get_status_display()),
                      cell(votes_for), cell(votes_against),
                      cell(_day(open_ballot.closes_at) if open_ballot else ""))
    console().print(table)
    _say(_("%(count)d decision(s).") % {"count": len(rows)})


@app.command("show")
def show_decision(number: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Show a decision: its operations, its ballots, and the votes when they are public."""
    setup_django()
    from django.utils.text import capfirst

    from chaton.governance import queries
    from chaton.governance.models import Status
    from chaton.governance.policy import current
    from chaton.governance.queries import decision_by_id

    decision = decision_by_id(number)
    row = _row(decision)
    _say(f"#{decision.pk} {decision.title}", style="bold")
    _say(_("%(kind)s, %(status)s. Proposed by %(who)s on %(date)s.") % {
        "kind": capfirst(decision.get_kind_display()), "status": decision.get_status_display(),
        "who": decision.proposed_by_label, "date": _moment(decision.created_at)})
    if decision.description:
        _say(decision.description)
    if row.execution == queries.Execution.PARTLY:
        _say(_("Execution: partly executed (an operation failed)."), style="red")
    elif row.execution == queries.Execution.FAILED:
        _say(_("Execution: failed."), style="red")
    if (decision.counter_vote_until and decision.status == Status.ADOPTED
            and row.counter is None):
        _say(_("A counter-vote may be opened until %(moment)s.")
             % {"moment": _moment(decision.counter_vote_until)})
    operations = Table(title=_("Operations"))
    for header in ("#", _("Operation"), _("Status"), _("Message")):
        operations.add_column(header)
    for operation in row.operations:
        operations.add_row(cell(operation.position + 1), cell(operation.summary),
                           cell(operation.get_status_display()), cell(operation.message))
    console().print(operations)
    _print_ballots(row)
    if not current().votes_public:
        return
    for ballot in (row.proposal, row.counter):
        if ballot is None:
            continue
        votes = Table(title=capfirst(ballot.get_kind_display()))
        for header in (_("Voter"), _("Vote"), _("When")):
            votes.add_column(header)
        for vote in queries.votes_of(ballot):
            votes.add_row(cell(vote.person.full_name), cell(vote.get_choice_display()),
                          cell(_moment(vote.changed_at or vote.cast_at)))
        console().print(votes)


@app.command("operations")
def list_operations() -> None:
    """List the operations a decision can carry, their class and their parameters."""
    setup_django()
    from chaton.governance import operations
    from chaton.governance.api import operation_classes
    from chaton.governance.policy import current

    policy = current()
    # One block per operation rather than a table: the parameters stay on one line, whole.
    for operation in operations.all_types():
        default, now = operation_classes(operation, policy)
        shown = now or _("depends on the parameters")
        if default != now:
            shown += " " + _("(by the policy; default: %(default)s)") % {
                "default": default or _("depends on the parameters")}
        _say(f"{operation.type}: {operation.label}", style="bold")
        _say("  " + _("class: %(class)s") % {"class": shown})
        _say("  " + _("parameters: %(params)s")
             % {"params": _params_text(operations.params_schema(operation))})


def _params_text(schema: dict[str, Any]) -> str:
    """Given a params JSON schema, return ``name: type`` for each, ``[…]`` around optional ones."""
    required = set(schema.get("required", []))
    parts = []
    for name, details in schema.get("properties", {}).items():
        choices = [option for option in details.get("anyOf", [details])
                   if option.get("type") != "null"] or [details]
        kind = choices[0].get("format") or choices[0].get("type") or "value"
        parts.append(f"{name}: {kind}" if name in required else f"[{name}: {kind}]")
    return " ".join(parts)


@app.command("policy")
def show_policy() -> None:
    """Show the governance rules in force (a decision changes them: policy.change)."""
    setup_django()
    from chaton.governance.policy import POLICY_FIELDS, current

    policy = current()
    table = Table(title=_("Governance policy"))
    table.add_column(_("Rule"), no_wrap=True)
    table.add_column(_("Value"))
    for name in POLICY_FIELDS:
        value = getattr(policy, name)
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
        table.add_row(cell(name), cell(text))
    console().print(table)


# -- writing ---------------------------------------------------------------------------------


OperationsFile = Annotated[Path | None, typer.Option(
    "--operations-file", metavar="FILE", dir_okay=False,
    help='A JSON list of operations: [{"type": …, "params": {…}}, …].')]
Description = Annotated[str, typer.Option("--description", help="Why, for the members.")]


@app.command("propose", cls=OperationWordsCommand, context_settings=_OPERATION_WORDS)
def propose(
    context: typer.Context,
    title: Annotated[str, typer.Argument(metavar="TITLE", help="The object of the decision.")],
    operation_words: OperationWords = None,
    description: Description = "",
    operations_file: OperationsFile = None,
    acting_uid: AsOption = None,
) -> None:
    """Put operations to the members' vote: TITLE --op TYPE key=value … [--op …].

    See `chaton decision operations` for the types and their parameters.
    """
    setup_django()
    from chaton.governance import actions

    specs = _operations(title, context.args, operations_file)
    account = _actor(acting_uid, _("Say which account proposes: --as UID."))
    decision = actions.do_propose(title, specs, acting_user=account, description=description)
    _say(_("Proposal #%(number)d opened: %(title)s") % {"number": decision.pk,
                                                        "title": decision.title},
         style="green")
    _print_ballots(_row(decision))


@app.command("act", cls=OperationWordsCommand, context_settings=_OPERATION_WORDS)
def act(
    context: typer.Context,
    title: Annotated[str, typer.Argument(metavar="TITLE", help="The object of the action.")],
    operation_words: OperationWords = None,
    description: Description = "",
    operations_file: OperationsFile = None,
    acting_uid: AsOption = None,
) -> None:
    """Take an ordinary action at once (administrators): TITLE --op TYPE key=value ….

    It is announced, and voters may contest it within the policy's window. An
    extraordinary operation is refused: open a proposal instead.
    """
    setup_django()
    from chaton.governance import actions

    specs = _operations(title, context.args, operations_file)
    account = _actor(acting_uid, _("Say which administrator acts: --as UID."))
    from chaton.core.worker import finish_long_jobs, long_lane

    # A deployment it starts runs in the long lane: its outcome is part of the answer.
    running_before = frozenset(long_lane().running())
    decision = actions.do_act(title, specs, acting_user=account, description=description)
    finish_long_jobs(besides=running_before)
    _say(_("Action #%(number)d taken: %(title)s") % {"number": decision.pk,
                                                     "title": decision.title}, style="green")
    for operation in _row(decision).operations:
        _say(f"  {operation.summary}: {operation.get_status_display()}")
    if decision.counter_vote_until:
        _say(_("A counter-vote may be opened until %(moment)s.")
             % {"moment": _moment(decision.counter_vote_until)})


#: The environment variable that may hold the voter's own API token (``vote`` scope).
TOKEN_VARIABLE = "CHATON_TOKEN"  # noqa: S105 (a variable name, not a secret)


def _read_password(uid: str) -> str:
    """Return the password typed at a hidden prompt (a terminal), else the first line of
    standard input. Raise InvalidInput when none is given."""
    import getpass

    from chaton.core.errors import InvalidInput

    if sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass(_("Password of %(uid)s: ") % {"uid": uid})
    else:
        password = (sys.stdin.readline() if sys.stdin is not None else "").rstrip("\r\n")
    if not password:
        raise InvalidInput(_("A vote needs the voter's own password (typed, or on standard "
                             "input) or their own token in $%(variable)s.")
                           % {"variable": TOKEN_VARIABLE}, field="password")
    return password


def _read_second_factor(uid: str) -> str:
    """Return a code of ``uid``'s second factor, typed at a hidden prompt (a terminal), else
    the next line of standard input (the one after the password); "" when none is given."""
    import getpass

    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(_("Second-factor code of %(uid)s (or a recovery code): ")
                               % {"uid": uid}).strip()
    return (sys.stdin.readline() if sys.stdin is not None else "").strip()


def own_credential(account: Account) -> Credential:
    """Return the credential of ``account`` proved by its own password and, when it has
    enrolled one, a code of its second factor, read one after the other (prompts, or the
    first two lines of standard input). Raise InvalidInput when no password is given,
    Unauthorized when the password or the code is wrong or the code is missing."""
    from chaton.governance.credentials import Credential
    from chaton.security.queries import has_second_factor

    password = _read_password(account.uid)
    code = _read_second_factor(account.uid) if has_second_factor(account) else ""
    return Credential.password(account, password, code)


def voter_credential(acting_uid: str | None) -> tuple[Account, Credential]:
    """Return the voter and the credential that proves it is them.

    With ``$CHATON_TOKEN``, the voter is that token's account (``--as``, if
    given, must name the same one). Otherwise ``--as UID`` names the voter and
    their password is read (:func:`_read_password`). Raise Unauthorized for an
    unknown token or a wrong password, NotOwnCredential when ``--as`` names
    someone else than the token's owner, InvalidInput when nothing names a voter.
    A voter with a second factor gives its code after the password (:func:`own_credential`).
    """
    from chaton.core.errors import Unauthorized
    from chaton.core.models import ApiToken
    from chaton.directory.queries import account_by_uid
    from chaton.governance.credentials import Credential, NotOwnCredential

    chosen = (acting_uid or invocation.acting_uid or "").strip()
    key = os.environ.get(TOKEN_VARIABLE, "").strip()
    if key:
        token = ApiToken.find(key)
        if token is None or not token.account.is_active:
            raise Unauthorized(_("The token in $%(variable)s is not valid.")
                               % {"variable": TOKEN_VARIABLE})
        if chosen and account_by_uid(chosen).pk != token.account_id:
            raise NotOwnCredential(_("The token in $%(variable)s belongs to %(owner)s, not to "
                                     "%(uid)s: a vote is cast only with the voter's own "
                                     "credentials.") % {"variable": TOKEN_VARIABLE,
                                                        "owner": token.account.uid,
                                                        "uid": chosen})
        return token.account, Credential.api_token(token, "cli")
    account = _actor(chosen or None, _("Say which account votes: --as UID (its password is "
                                       "asked), or put its own token in $%(variable)s.")
                     % {"variable": TOKEN_VARIABLE})
    return account, own_credential(account)


@app.command("vote")
def vote(
    number: Annotated[int, typer.Argument(metavar="ID")],
    choice: Annotated[str, typer.Argument(metavar="for|against")],
    acting_uid: AsOption = None,
) -> None:
    """Vote on a proposal or a counter-vote, or change one's vote, until the close.

    A vote is the member's own: give their own token in $CHATON_TOKEN (the
    ``vote`` scope), or name them with --as UID and type their password at the
    prompt (or on standard input), then, if they have one, a code of their second
    factor (the next prompt, or the next line). --as alone never votes.
    """
    setup_django()
    from chaton.governance import actions
    from chaton.governance.queries import decision_by_id

    decision = decision_by_id(number)
    account, credential = voter_credential(acting_uid)
    actions.do_vote(decision, choice.strip().lower(), acting_user=account,
                    credential=credential)
    _say(_("%(uid)s votes “%(choice)s” on #%(number)d.") % {
        "uid": account.uid, "choice": choice.strip().lower(), "number": decision.pk},
        style="green")
    decision.refresh_from_db()
    _print_ballots(_row(decision))


@app.command("withdraw")
def withdraw(
    number: Annotated[int, typer.Argument(metavar="ID")],
    acting_uid: AsOption = None,
) -> None:
    """Withdraw an open proposal (its author or an administrator)."""
    setup_django()
    from chaton.governance import actions
    from chaton.governance.queries import decision_by_id

    decision = decision_by_id(number)
    account = _actor(acting_uid, _("Say which account withdraws: --as UID."))
    actions.do_withdraw(decision, acting_user=account)
    _say(_("Proposal #%(number)d withdrawn.") % {"number": decision.pk})


@app.command("contest")
def contest(
    number: Annotated[int, typer.Argument(metavar="ID")],
    acting_uid: AsOption = None,
) -> None:
    """Open a counter-vote on an ordinary action, within its window (voting members)."""
    setup_django()
    from chaton.governance import actions
    from chaton.governance.queries import decision_by_id

    decision = decision_by_id(number)
    account = _actor(acting_uid, _("Say which account contests: --as UID."))
    actions.do_open_counter_vote(decision, acting_user=account)
    _say(_("Counter-vote opened on #%(number)d.") % {"number": decision.pk}, style="green")
    decision.refresh_from_db()
    _print_ballots(_row(decision))


@app.command("retry")
def retry(
    number: Annotated[int, typer.Argument(metavar="ID")],
    position: Annotated[int | None, typer.Option(
        "--operation", metavar="N", help="The operation's number, as `decision show` "
        "lists it; none: the first failed one.")] = None,
    acting_uid: AsOption = None,
) -> None:
    """Run a failed operation of an adopted decision again, then those not run because of
    it (administrators). Exit 1 when it fails again."""
    setup_django()
    from chaton.cli.runtime import directory_running
    from chaton.core.worker import finish_long_jobs, long_lane
    from chaton.governance import actions
    from chaton.governance.models import OperationStatus
    from chaton.governance.queries import decision_by_id

    decision = decision_by_id(number)
    account = _actor(acting_uid, _("Say which administrator retries: --as UID."))
    row = actions.failed_operation(decision, None if position is None else position - 1)
    # A deployment it starts runs in the long lane: its outcome is the answer.
    running_before = frozenset(long_lane().running())
    with directory_running():
        row = actions.do_retry_operation(row, acting_user=account)
        finish_long_jobs(besides=running_before)
    row.refresh_from_db()
    line = _("#%(number)d, operation %(position)d (%(summary)s): %(status)s.") % {
        "number": decision.pk, "position": row.position + 1, "summary": row.summary,
        "status": row.get_status_display()}
    if row.message:
        line += " " + row.message
    failed = row.status == OperationStatus.FAILED
    _say(line, style="red" if failed else "green")
    if failed:
        raise typer.Exit(1)


@app.command("settle")
def settle() -> None:
    """Close the ballots whose outcome is known, run the operations of adopted decisions,
    undo those of cancelled ones and send the reminders: once, printing what happened.

    The worker does the same at every tick. Exit 1 when an operation failed.
    """
    setup_django()
    from chaton.cli.runtime import directory_running
    from chaton.governance import actions
    from chaton.governance.models import OperationStatus

    with directory_running():
        closed = actions.settle_ballots()
        handled = actions.execute_decisions()
        reminded = actions.send_reminders()
    for ballot in closed:
        _say(f"#{ballot.decision_id} " + _ballot_line(ballot, _final_tally(ballot)))
    failed = False
    for operation in handled:
        broken = operation.status in (OperationStatus.FAILED, OperationStatus.NOT_REVERTED)
        failed = failed or broken
        line = _("#%(number)d, operation %(position)d (%(summary)s): %(status)s.") % {
            "number": operation.decision_id, "position": operation.position + 1,
            "summary": operation.summary, "status": operation.get_status_display()}
        if operation.message:
            line += " " + operation.message
        _say(line, style="red" if broken else None)
    for ballot in reminded:
        _say(_("#%(number)d: the voters who have not voted were reminded.")
             % {"number": ballot.decision_id})
    if not (closed or handled or reminded):
        _say(_("Nothing to settle."))
    if failed:
        raise typer.Exit(1)


def _final_tally(ballot: Ballot) -> Tally:
    from chaton.governance.tally import Tally

    return Tally(ballot.votes_for, ballot.votes_against, ballot.electorate_size)


@app.command("inventory")
def inventory(
    start: Annotated[str, typer.Option("--from", metavar="DATE", help="First day.")],
    end: Annotated[str | None, typer.Option(
        "--to", metavar="DATE", help="Last day (default: today).")] = None,
    format_name: Annotated[str, typer.Option("--format", help="md, csv or html.")] = "md",
    output: Annotated[Path | None, typer.Option(
        "--output", metavar="FILE", dir_okay=False,
        help="Write to FILE (default: standard output).")] = None,
) -> None:
    """Print the decisions of a period as the activity report lists them: ordinary and
    extraordinary actions apart, votes over the electorate."""
    setup_django()
    from chaton.core import clock
    from chaton.core.errors import InvalidInput
    from chaton.governance import export

    first = parse_date(start, field="from")
    last = parse_date(end, field="to") if end else clock.today()
    if last < first:
        raise InvalidInput(_("The period ends before it starts."), field="to")
    if format_name not in export.FORMATS:
        raise InvalidInput(_("Unknown format “%(format)s”: choose md, csv or html.")
                           % {"format": format_name}, field="format")
    content, _media_type = export.render(export.inventory(first, last), format_name)
    if output is None:
        typer.echo(content, nl=not content.endswith("\n"))
        return
    _write_whole(output, content)
    _say(_("Inventory written to %(path)s.") % {"path": output})


def _write_whole(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` all at once: through a temporary file beside it, renamed,
    so that a failure leaves no half-written file. Raise InvalidInput when it cannot."""
    from chaton.core.errors import InvalidInput

    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(content)
        # mkstemp makes the file private; an inventory is not: the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise InvalidInput(_("Cannot write %(path)s: %(error)s")
                           % {"path": path, "error": error.strerror or error},
                           field="output") from None
