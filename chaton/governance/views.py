"""The governance pages: decisions, proposals, votes, counter-votes, the rules, the inventory.

Every page is for signed-in accounts; what each may do is decided by the
actions of :mod:`chaton.governance.actions` (who may propose, vote, withdraw,
contest), whose errors are shown on the page, never as a server error. Writes
are POST only, with Django's CSRF check, and redirect back to the page
(post/redirect/get), except the proposal form, which shows its errors in place.

The proposal form works without JavaScript: the operation types travel in
``operation`` parameters (the query string on GET, hidden inputs on POST), and
each operation's fields are built from its params schema
(:func:`chaton.governance.forms.operation_fields`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import models
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chaton.core import clock
from chaton.core.errors import ChatonError
from chaton.core.views import error_html, paginate, show_error, signed_in
from chaton.directory.models import Account
from chaton.governance import actions, export, operations, queries
from chaton.governance.credentials import Credential
from chaton.governance.forms import (
    DecisionForm,
    ExportForm,
    OperationChoiceForm,
    OperationForm,
    initial_value,
)
from chaton.governance.gate import classify
from chaton.governance.models import (
    Ballot,
    BallotKind,
    Decision,
    Elector,
    Kind,
    OperationStatus,
    Policy,
    Status,
    Vote,
)
from chaton.governance.policy import POLICY_FIELDS, current
from chaton.governance.queries import DecisionRow
from chaton.governance.tally import Tally

#: Decisions still being voted on: listed first, above the history.
OPEN_STATUSES = (Status.OPEN, Status.CONTESTED)

#: Media types of the inventory downloads, by format: the file name's extension.
EXPORT_EXTENSIONS = {"md": "md", "csv": "csv", "html": "html"}


# -- small pieces shared by the pages -----------------------------------------------------


def tally_bar(tally: Tally) -> SafeString:
    """Given a tally, return a small inline SVG bar: "for" and "against" as shares of the
    electorate, and a mark at half of it (the majority to pass)."""
    electorate = max(tally.electorate, 1)
    width, height = 200, 14
    for_width = width * min(tally.votes_for, electorate) / electorate
    against_width = min(width - for_width, width * tally.votes_against / electorate)
    title = _("for %(for)d/%(electorate)d, against %(against)d/%(electorate)d") % {
        "for": tally.votes_for, "against": tally.votes_against,
        "electorate": tally.electorate}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tally-bar" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" rx="3" fill="#e5e9ed"/>',
        f'<rect x="0" y="0" width="{for_width:.1f}" height="{height}" fill="#2f6f5e"/>',
        f'<rect x="{width - against_width:.1f}" y="0" width="{against_width:.1f}" '
        f'height="{height}" fill="#b42318"/>',
        f'<line x1="{width / 2:.1f}" x2="{width / 2:.1f}" y1="0" y2="{height}" '
        f'stroke="#1f2933" stroke-width="1.5" stroke-dasharray="2 2"/>',
        "</svg>",
    ]
    return mark_safe("".join(parts))  # noqa: S308 -- numbers, and a title escaped above


def _may_export(account: Account) -> bool:
    return account.is_admin or actions.is_voter_today(account)


def _semester_start(day: dt.date) -> dt.date:
    """Given a day, return the first day of its half-year (the activity report's period)."""
    return dt.date(day.year, 1 if day.month <= 6 else 7, 1)


def _default_export_form() -> ExportForm:
    today = clock.today()
    return ExportForm(initial={"start": _semester_start(today), "end": today, "format": "md"})


@dataclass
class BallotView:
    """One ballot as the detail page shows it."""

    ballot: Ballot
    tally: Tally
    bar: SafeString
    votes: list[Vote] = field(default_factory=list)
    my_vote: Vote | None = None
    may_vote: bool = False
    #: The viewer is a voter, but signed in with a password someone else set: no vote.
    password_not_own: bool = False

    @property
    def majority(self) -> int:
        """The "for" votes that adopt a proposal at once: more than half of the electorate."""
        return self.tally.electorate // 2 + 1


def _open_row_details(rows: Sequence[DecisionRow], account: Account) -> None:
    """Given the rows of open decisions, put on each (``row.extra``) its open ballot, tally,
    bar, the viewer's vote and whether the viewer may vote: two queries for all rows."""
    ballots = [row.open_ballot for row in rows if row.open_ballot is not None]
    ballot_ids = [ballot.pk for ballot in ballots]
    my_votes: dict[int, str] = {}
    my_ballots: set[int] = set()
    if ballot_ids and account.person_id is not None:
        my_votes = dict(Vote.objects.filter(ballot_id__in=ballot_ids,
                                            person_id=account.person_id)
                        .values_list("ballot_id", "choice"))
        my_ballots = set(Elector.objects.filter(ballot_id__in=ballot_ids,
                                                person_id=account.person_id)
                         .values_list("ballot_id", flat=True))
    for row in rows:
        ballot = row.open_ballot
        if ballot is None:
            continue
        tally = row.proposal_tally if ballot.kind == BallotKind.PROPOSAL else row.counter_tally
        assert tally is not None  # rows() counts every ballot it lists
        row.extra.update({"ballot": ballot, "tally": tally, "bar": tally_bar(tally),
                          "my_vote": my_votes.get(ballot.pk, ""),
                          # A password someone else set does not vote (the page says why).
                          "may_vote": (ballot.pk in my_ballots
                                       and account.password_set_by_other_at is None)})


# -- the list and the inventory -----------------------------------------------------------


def _list_page(request: HttpRequest, export_form: ExportForm | None = None) -> HttpResponse:
    account = signed_in(request)
    open_rows = queries.rows(queries.decisions().filter(status__in=OPEN_STATUSES))
    _open_row_details(open_rows, account)
    page = paginate(request, queries.decisions().exclude(status__in=OPEN_STATUSES))
    return render(request, "governance/decision_list.html", {
        "open_rows": open_rows,
        "page": page,
        "history_rows": queries.rows(page.object_list),
        "may_export": _may_export(account),
        "export_form": export_form or _default_export_form(),
        "may_act": actions.may_act_ordinarily(account),
    })


@login_required
def decision_list(request: HttpRequest) -> HttpResponse:
    """List the open proposals and counter-votes with their live tallies, then the history."""
    return _list_page(request)


@login_required
def decision_export(request: HttpRequest) -> HttpResponse:
    """Download the inventory of a period (``start``, ``end``, ``format`` in the query) as
    Markdown, CSV or HTML: for administrators and voting members."""
    account = signed_in(request)
    if not _may_export(account):
        messages.error(request, _("Only voting members and administrators may export the "
                                  "decisions."))
        return redirect("decision-list")
    form = ExportForm(request.GET)
    if not form.is_valid():
        return _list_page(request, export_form=form)
    start, end, format_name = (form.cleaned_data["start"], form.cleaned_data["end"],
                               form.cleaned_data["format"])
    content, media_type = export.render(export.inventory(start, end), format_name)
    response = HttpResponse(content, content_type=media_type)
    file_name = f"decisions-{start.isoformat()}-{end.isoformat()}.{EXPORT_EXTENSIONS[format_name]}"
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    response["Content-Security-Policy"] = export.CONTENT_SECURITY_POLICY
    return response


# -- a new proposal or ordinary action ----------------------------------------------------


def _class_of(operation: operations.OperationType[Any], values: Mapping[str, Any],
              policy: Policy | None = None) -> Kind | None:
    """Given an operation and the values typed so far, return its class under the policy
    (default: the current one), or None while it depends on fields not yet valid (a group
    not named yet)."""
    chosen = ((policy or current()).classes or {}).get(operation.type)
    if chosen in Kind.values:
        return Kind(chosen)
    try:
        params: Any = operation.Params.model_validate(dict(values))
    except pydantic.ValidationError:
        # Partly typed: an operation whose class does not depend on its fields still says it.
        params = operation.Params.model_construct(**dict(values))
    try:
        return classify(operation, params)
    except (AttributeError, ChatonError):
        return None


@dataclass
class OperationEntry:
    """One operation of the form: its type, its fields, its class under the policy."""

    index: int
    operation: operations.OperationType[Any]
    form: OperationForm
    kind: Kind | None


def _entries(types: Sequence[operations.OperationType[Any]], data: QueryDict | None,
             initials: Sequence[Mapping[str, Any]]) -> list[OperationEntry]:
    entries = []
    for index, operation in enumerate(types):
        initial = initials[index] if index < len(initials) else {}
        form = OperationForm(operation, data, prefix=f"op{index}", initial=initial)
        values: Mapping[str, Any] = initial
        if data is not None:
            values = (form.params() if form.is_valid()
                      else _typed_values(form.fields, data, f"op{index}-"))
        if operation.type == "policy.change":
            _show_current_rules(form)
        entries.append(OperationEntry(index, operation, form, _class_of(operation, values)))
    return entries


def _show_current_rules(form: OperationForm) -> None:
    """Under each field of a policy change, say the rule's current value (empty: unchanged)."""
    policy = current()
    for name, form_field in form.fields.items():
        if name not in POLICY_FIELDS:
            continue
        value = getattr(policy, name)
        if isinstance(value, bool):
            value = _("yes") if value else _("no")
        elif isinstance(value, dict):
            value = ", ".join(f"{key}={item}" for key, item in value.items()) or "—"
        now = _("Now: %(value)s.") % {"value": value}
        form_field.help_text = f"{form_field.help_text} {now}" if form_field.help_text else now


def _types_of(names: Iterable[str]) -> list[operations.OperationType[Any]]:
    """Given operation type names, return their operations. Raise InvalidInput (unknown)."""
    return [operations.get(name) for name in names if name]


def _typed_values(fields: Mapping[str, forms.Field], source: Mapping[str, str],
                  prefix: str = "") -> dict[str, Any]:
    """Given an operation's form fields and a query or a POST, return the values it gives
    to those fields (``prefix`` before each name)."""
    values = {}
    for name, form_field in fields.items():
        key = f"{prefix}{name}"
        if key in source:
            values[name] = initial_value(form_field, source[key])
    return values


def _suggested_title(operation: operations.OperationType[Any], values: Mapping[str, Any]) -> str:
    """Given one prefilled operation, return its description as a title, or "" if incomplete."""
    try:
        _operation, params = operations.parse(operation.type, dict(values))
    except ChatonError:
        return ""
    summary = operation.describe(params)
    return summary[:1].upper() + summary[1:200]


def _show_action_error(error: ChatonError, decision_form: DecisionForm,
                       entries: Sequence[OperationEntry]) -> None:
    """Put an action's error on the field it names: ``operations.2.group`` is the field
    ``group`` of the third operation; anything else goes on the decision's form."""
    parts = (error.field or "").split(".")
    if (parts[0] == "operations" and len(parts) > 1 and parts[1].isdigit()
            and int(parts[1]) < len(entries)):
        name = parts[2] if len(parts) > 2 else ""
        show_error(entries[int(parts[1])].form, error, {error.field or "": name})
    else:
        show_error(decision_form, error)


def _new_page(request: HttpRequest, *, types: Sequence[operations.OperationType[Any]],
              decision_form: DecisionForm, entries: Sequence[OperationEntry]) -> HttpResponse:
    account = signed_in(request)
    return render(request, "governance/decision_new.html", {
        "decision_form": decision_form,
        "entries": entries,
        "types": types,
        "choice_form": OperationChoiceForm(),
        "may_act": actions.may_act_ordinarily(account),
        "may_propose": account.is_admin or actions.is_voter_today(account),
        # "act": the page was opened to take an ordinary action (an administrator's link).
        "intent": "act" if (request.POST.get("intent") or request.GET.get("intent")) == "act"
        else "",
    })


@login_required
def decision_new(request: HttpRequest) -> HttpResponse:
    """Open a proposal (any voting member) or take an ordinary action (administrators).

    GET: without ``operation``, choose one; with ``operation=<type>`` (repeatable) and
    that operation's fields (``group=passwords`` …), the form filled in: the link that a
    refused extraordinary action points to. POST: ``submit`` is ``propose``, ``act`` or
    ``add`` (one more operation, of type ``add_operation``); ``remove_index`` removes one.
    """
    source = request.POST if request.method == "POST" else request.GET
    try:
        types = _types_of(source.getlist("operation"))
    except ChatonError as error:
        messages.error(request, error_html(error))
        types = []
    if request.method == "GET":
        return _new_get(request, types)
    return _new_post(request, types)


def _new_get(request: HttpRequest, types: list[operations.OperationType[Any]]) -> HttpResponse:
    initials = [_typed_values(OperationForm(types[0]).fields, request.GET)] if types else []
    title = _suggested_title(types[0], initials[0]) if len(types) == 1 else ""
    return _new_page(request, types=types,
                     decision_form=DecisionForm(initial={"title": title} if title else None),
                     entries=_entries(types, None, initials))


def _new_post(request: HttpRequest, types: list[operations.OperationType[Any]]) -> HttpResponse:
    submit = request.POST.get("submit", "")
    if "remove_index" in request.POST:
        submit = "remove"
    if submit in ("add", "remove"):
        # Rebuilt from what was typed, unbound: an operation just added shows no error yet.
        initials = [_typed_values(OperationForm(operation).fields, request.POST, f"op{index}-")
                    for index, operation in enumerate(types)]
        if submit == "add":
            try:
                types.append(operations.get(request.POST.get("add_operation", "")))
                initials.append({})
            except ChatonError as error:
                messages.error(request, error_html(error))
        else:
            index = request.POST.get("remove_index", "")
            if index.isdigit() and int(index) < len(types):
                del types[int(index)], initials[int(index)]
        decision_form = DecisionForm(initial={"title": request.POST.get("title", ""),
                                              "description": request.POST.get("description", "")})
        return _new_page(request, types=types, decision_form=decision_form,
                         entries=_entries(types, None, initials))
    decision_form = DecisionForm(request.POST)
    entries = _entries(types, request.POST, [])
    forms_valid = decision_form.is_valid() & all([entry.form.is_valid() for entry in entries])
    if forms_valid and submit in ("propose", "act"):
        account = signed_in(request)
        specs = [{"type": entry.operation.type, "params": entry.form.params()}
                 for entry in entries]
        data = decision_form.cleaned_data
        try:
            if submit == "act":
                decision = actions.do_act(data["title"], specs, acting_user=account,
                                          description=data["description"])
            else:
                decision = actions.do_propose(data["title"], specs, acting_user=account,
                                              description=data["description"])
        except ChatonError as error:
            _show_action_error(error, decision_form, entries)
        else:
            if submit == "act":
                messages.success(request, _("Done: the action #%(number)d was taken and "
                                            "announced.") % {"number": decision.pk})
            else:
                messages.success(request, _("The proposal #%(number)d is open to the vote.")
                                 % {"number": decision.pk})
            return redirect("decision-detail", decision.pk)
    elif forms_valid:
        decision_form.add_error(None, _("Choose “Put to the vote” or “Do it now”."))
    return _new_page(request, types=types, decision_form=decision_form, entries=entries)


# -- one decision -------------------------------------------------------------------------


def _ballot_views(row: DecisionRow, account: Account, policy: Policy) -> list[BallotView]:
    now = clock.now()
    ballots = [(ballot, tally) for ballot, tally in ((row.proposal, row.proposal_tally),
                                                       (row.counter, row.counter_tally))
               if ballot is not None and tally is not None]
    views = []
    for ballot, tally in ballots:
        view = BallotView(ballot, tally, tally_bar(tally))
        if policy.votes_public:
            view.votes = list(queries.votes_of(ballot))
        if account.person_id is not None:
            view.my_vote = Vote.objects.filter(ballot=ballot,
                                               person_id=account.person_id).first()
            view.may_vote = (ballot.closed_at is None and ballot.closes_at > now
                             and Elector.objects.filter(ballot=ballot,
                                                        person_id=account.person_id).exists())
            if view.may_vote and account.password_set_by_other_at is not None:
                view.may_vote, view.password_not_own = False, True
        views.append(view)
    return views


def _may_contest(decision: Decision, row: DecisionRow, account: Account) -> bool:
    if decision.kind != Kind.ORDINARY or decision.status != Status.ADOPTED:
        return False
    if row.counter is not None:
        return False
    if decision.counter_vote_until is not None and decision.counter_vote_until < clock.now():
        return False
    return actions.is_voter_today(account)


@login_required
def decision_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a decision: its operations and their outcome, its ballots with tallies, the votes
    (when the policy makes them public), and what the viewer may do."""
    account = signed_in(request)
    row = queries.decision_row_by_id(pk)
    decision = row.decision
    policy = current()
    return render(request, "governance/decision_detail.html", {
        "decision": decision,
        "row": row,
        "ballots": _ballot_views(row, account, policy),
        "votes_public": policy.votes_public,
        "now": clock.now(),
        "may_withdraw": decision.status == Status.OPEN and (
            account.is_admin or decision.proposed_by_id == account.pk),
        "may_contest": _may_contest(decision, row, account),
        "may_retry": account.is_admin and decision.status == Status.ADOPTED,
        "counter_vote_open": (decision.kind == Kind.ORDINARY and decision.status == Status.ADOPTED
                              and row.counter is None and decision.counter_vote_until is not None
                              and decision.counter_vote_until >= clock.now()),
    })


@login_required
@require_POST
def decision_vote(request: HttpRequest, pk: int) -> HttpResponse:
    """Cast or change the viewer's vote (``choice``: for or against) on the open ballot."""
    decision = queries.decision_by_id(pk)
    choice = request.POST.get("choice", "")
    try:
        account = signed_in(request)
        # Only the signed-in account's own vote: nothing in the form names a voter.
        actions.do_vote(decision, choice, acting_user=account,
                        credential=Credential.session(account))
    except ChatonError as error:
        messages.error(request, error_html(error))
    else:
        decision.refresh_from_db(fields=["status"])
        if choice == "for":
            messages.success(request, _("Your vote “for” is recorded."))
        else:
            messages.success(request, _("Your vote “against” is recorded."))
        if decision.status not in OPEN_STATUSES:
            messages.info(request, _("The vote is over: %(status)s.")
                          % {"status": decision.get_status_display()})
    return redirect("decision-detail", decision.pk)


@login_required
@require_POST
def decision_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw an open proposal (its author or an administrator)."""
    decision = queries.decision_by_id(pk)
    try:
        actions.do_withdraw(decision, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, error_html(error))
    else:
        messages.success(request, _("The proposal #%(number)d is withdrawn.")
                         % {"number": decision.pk})
    return redirect("decision-detail", decision.pk)


@login_required
@require_POST
def decision_contest(request: HttpRequest, pk: int) -> HttpResponse:
    """Open a counter-vote on an ordinary action (voting members, within the window)."""
    decision = queries.decision_by_id(pk)
    try:
        ballot = actions.do_open_counter_vote(decision, acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, error_html(error))
    else:
        messages.success(request, _("A counter-vote is open until %(deadline)s.") % {
            "deadline": formats.date_format(timezone.localtime(ballot.closes_at),
                                            "Y-m-d H:i")})
    return redirect("decision-detail", decision.pk)


@login_required
@require_POST
def decision_retry(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    """Run a failed operation again (administrators), then those not run because of it."""
    decision = queries.decision_by_id(pk)
    try:
        row = actions.do_retry_operation(actions.failed_operation(decision, position),
                                         acting_user=signed_in(request))
    except ChatonError as error:
        messages.error(request, error_html(error))
    else:
        if row.status == OperationStatus.FAILED:
            messages.error(request, _("The operation failed again: %(message)s")
                           % {"message": row.message})
        else:
            messages.success(request, _("The operation ran again: %(status)s.")
                             % {"status": row.get_status_display()})
    return redirect("decision-detail", decision.pk)


# -- the rules ----------------------------------------------------------------------------


def _rule_label(name: str) -> str:
    """Given a policy field name, return its label (the model field's verbose name)."""
    model_field = Policy._meta.get_field(name)
    return str(model_field.verbose_name) if isinstance(model_field, models.Field) else name


@login_required
def decision_policy(request: HttpRequest) -> HttpResponse:
    """Show the current governance rules and the class of each operation type."""
    policy = current()
    rules = [(_rule_label(name), getattr(policy, name))
             for name in POLICY_FIELDS if name != "classes"]
    classes = []
    for operation in operations.all_types():
        chosen = (policy.classes or {}).get(operation.type)
        classes.append({"operation": operation, "by_policy": chosen in Kind.values,
                        "kind": _class_of(operation, {}, policy)})
    return render(request, "governance/decision_policy.html", {
        "policy": policy, "rules": rules, "classes": classes,
        "change_url": f"{reverse('decision-new')}?operation=policy.change",
    })
