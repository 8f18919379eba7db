"""Decisions of the members, the ballots that make them, and the operations they authorise.

::

    Policy            the collective's rules (one row; changed by a decision)
    Decision          one ordinary or extraordinary action: a title, who proposed it,
    ├── Operation     the typed operations it executes, in order
    └── Ballot        the vote on an extraordinary proposal, or the counter-vote
        ├── Elector   on an ordinary action, with its electorate taken at opening
        └── Vote

An ordinary decision is adopted (and its operations executed) when it is made;
a counter-vote may cancel it. An extraordinary one is open until its ballot
adopts or rejects it; the worker then executes its operations.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from chaton.directory.models import Account
from chaton.members.models import Person


class Kind(models.TextChoices):
    ORDINARY = "ordinary", _("ordinary")
    EXTRAORDINARY = "extraordinary", _("extraordinary")


class Policy(models.Model):
    """The rules of the collective: one row, created with the defaults on first use."""

    voting_delay_days = models.PositiveIntegerField(
        _("days of membership before voting"), default=10)
    proposal_days = models.PositiveIntegerField(_("days a proposal stays open"), default=7)
    counter_vote_window_days = models.PositiveIntegerField(
        _("days to open a counter-vote after an ordinary action"), default=7)
    counter_vote_days = models.PositiveIntegerField(_("days a counter-vote stays open"),
                                                    default=7)
    reminder_hours = models.PositiveIntegerField(
        _("hours before the deadline when voters are reminded"), default=48)
    votes_public = models.BooleanField(_("members see who voted what"), default=True)
    #: Governance class per operation type, over the operation's own default:
    #: ``{"group.revoke": "extraordinary"}``.
    classes = models.JSONField(_("class of each operation"), default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("policy")

    def __str__(self) -> str:
        return str(_("Governance policy"))


class Status(models.TextChoices):
    OPEN = "open", _("open")  # an extraordinary proposal being voted on
    ADOPTED = "adopted", _("adopted")
    CONTESTED = "contested", _("counter-vote open")  # an ordinary action under a counter-vote
    REJECTED = "rejected", _("rejected")
    WITHDRAWN = "withdrawn", _("withdrawn")
    CANCELLED = "cancelled", _("cancelled by a counter-vote")


class Decision(models.Model):
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("object"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    proposed_by = models.ForeignKey(Account, null=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("proposed by"))
    #: Kept in case the account is deleted: the report still names who proposed.
    proposed_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(_("date"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    #: For an ordinary action: until when a voter may open a counter-vote.
    counter_vote_until = models.DateTimeField(null=True, blank=True)
    #: When every operation has run (or been reverted, for a cancelled action).
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class OperationStatus(models.TextChoices):
    PENDING = "pending", _("waiting")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")
    REVERTED = "reverted", _("reverted")
    NOT_REVERTED = "not_reverted", _("could not be reverted")
    SKIPPED = "skipped", _("not run")


class Operation(models.Model):
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="operations")
    position = models.PositiveSmallIntegerField()
    type = models.CharField(_("operation"), max_length=64)
    params = models.JSONField(default=dict)
    #: A sentence for people, written when the operation was validated.
    summary = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=OperationStatus.choices,
                              default=OperationStatus.PENDING)
    #: What ``apply`` returned: what ``revert`` needs to undo it.
    result = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["decision", "position"]
        constraints = [models.UniqueConstraint(fields=["decision", "position"],
                                               name="operation_position_unique")]

    def __str__(self) -> str:
        return f"#{self.decision_id}.{self.position} {self.type}"


class BallotKind(models.TextChoices):
    PROPOSAL = "proposal", _("vote on the proposal")
    COUNTER = "counter", _("counter-vote")


class Outcome(models.TextChoices):
    PENDING = "", _("open")
    ADOPTED = "adopted", _("adopted")
    REJECTED = "rejected", _("rejected")
    UPHELD = "upheld", _("action upheld")
    CANCELLED = "cancelled", _("action cancelled")
    WITHDRAWN = "withdrawn", _("withdrawn")


class Ballot(models.Model):
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="ballots")
    kind = models.CharField(max_length=20, choices=BallotKind.choices)
    opened_by = models.ForeignKey(Account, null=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField(_("deadline"))
    #: The electorate counted at opening: the denominator of "15/15".
    electorate_size = models.PositiveIntegerField()
    electors: models.ManyToManyField[Person, Elector] = models.ManyToManyField(
        Person, through="Elector", related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING,
                               blank=True)
    #: The final counts, written at the close (the open ones are counted live).
    votes_for = models.PositiveIntegerField(default=0)
    votes_against = models.PositiveIntegerField(default=0)
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at"]
        indexes = [models.Index(fields=["closed_at", "closes_at"])]
        constraints = [models.UniqueConstraint(fields=["decision", "kind"],
                                               name="ballot_kind_unique")]

    def __str__(self) -> str:
        return f"#{self.decision_id} {self.get_kind_display()}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class Elector(models.Model):
    ballot = models.ForeignKey(Ballot, on_delete=models.CASCADE)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ballot", "person"],
                                               name="elector_unique")]

    def __str__(self) -> str:
        return f"{self.ballot_id}: {self.person_id}"


class Choice(models.TextChoices):
    FOR = "for", _("for")
    AGAINST = "against", _("against")


class Vote(models.Model):
    ballot = models.ForeignKey(Ballot, on_delete=models.CASCADE, related_name="votes")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")
    #: The account the person voted with (a person may have several).
    account = models.ForeignKey(Account, null=True, on_delete=models.SET_NULL, related_name="+")
    choice = models.CharField(max_length=10, choices=Choice.choices)
    cast_at = models.DateTimeField()
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ballot", "person"], name="vote_unique")]

    def __str__(self) -> str:
        return f"{self.ballot} — {self.person}"

    def as_dict(self) -> dict[str, Any]:
        return {"person": self.person_id, "choice": self.choice}
