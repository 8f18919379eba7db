"""Members: memberships, dues, the electorate and the counts the activity report needs."""

import datetime as dt
from decimal import Decimal

import pytest

from chaton.core import clock
from chaton.core.errors import Conflict, InvalidInput
from chaton.core.models import AuditLog
from chaton.directory.actions import do_create_account
from chaton.governance.actions import do_end_membership_ordinarily
from chaton.members import actions, queries
from chaton.members.models import Membership, MembershipKind
from chaton.testing.voters import recorded_at_start

pytestmark = pytest.mark.django_db
D = dt.date


def person(name: str, email: str, joined: dt.date, kind: str = MembershipKind.REGULAR):
    """A member since ``joined``, recorded that day (as if Chaton had been used since)."""
    member = actions.do_create_person(name, email, acting_user=None)
    recorded_at_start(actions.do_start_membership(member, acting_user=None, starts_on=joined,
                                                  kind=kind))
    return member


def ended(membership: Membership, day: dt.date) -> None:
    """Test set-up: a membership whose end a decision recorded (see the governance tests)."""
    Membership.objects.filter(pk=membership.pk).update(ends_on=day)


def test_voting_starts_after_the_delay(settings, monkeypatch) -> None:
    monkeypatch.setattr(settings.CHATON.directory, "voting_delay_days", 10)
    early = person("Noa Testelin", "noa@example.org", D(2026, 1, 1))
    late = person("Ilan Exemple", "ilan@example.org", D(2026, 3, 25))
    person("Sam Soutien", "sam@example.org", D(2026, 1, 1), MembershipKind.SUPPORT)
    voters = set(queries.voting_members(D(2026, 4, 1)))
    assert voters == {early}
    assert set(queries.voting_members(D(2026, 4, 4))) == {early, late}
    assert queries.is_voting_member(late, D(2026, 4, 4))


def test_ended_membership_does_not_vote() -> None:
    member = person("Lou Fictif", "lou@example.org", D(2025, 1, 1))
    membership = member.memberships.get()
    admin = do_create_account("gerance", acting_user=None, display_name="Gérance",
                              email="gerance@example.org", is_admin=True)
    do_end_membership_ordinarily(membership, D(2025, 12, 31), acting_user=admin)
    assert not queries.is_voting_member(member, D(2026, 1, 2))
    assert AuditLog.objects.filter(action="membership.end").count() == 1


def test_a_membership_ends_only_through_a_decision() -> None:
    """The action itself refuses to end a membership that no decision's operation ends."""
    member = person("Lou Direct", "lou.direct@example.org", D(2025, 1, 1))
    membership = member.memberships.get()
    with pytest.raises(actions.OrdinaryActionRequired):
        actions.do_end_membership(membership, D(2025, 12, 31), acting_user=None)
    with pytest.raises(actions.OrdinaryActionRequired):
        actions.do_end_membership(membership, None, acting_user=None)
    membership.refresh_from_db()
    assert membership.ends_on is None
    assert not AuditLog.objects.filter(action="membership.end").exists()


def test_a_back_dated_start_counts_in_reports_but_waits_to_vote(settings, monkeypatch) -> None:
    """Recorded today with a start months ago: counted as a member since then, but votes only
    once the delay has run from today."""
    monkeypatch.setattr(settings.CHATON.directory, "voting_delay_days", 10)
    today = clock.today()
    member = actions.do_create_person("Rémi Rétro", "remi@example.org", acting_user=None)
    membership = actions.do_start_membership(member, acting_user=None,
                                             starts_on=today - dt.timedelta(days=200))
    assert membership.recorded_on == today
    assert queries.member_counts(today - dt.timedelta(days=100))["natural"]["total"] == 1
    assert member not in queries.voting_members(today)
    assert member not in queries.voting_members(today + dt.timedelta(days=9))
    assert member in queries.voting_members(today + dt.timedelta(days=10))


def test_counts_on_a_day_and_over_a_period() -> None:
    for index in range(3):
        person(f"Membre {index}", f"m{index}@example.org", D(2026, 1, 10))
    person("Soutien Un", "s1@example.org", D(2026, 2, 1), MembershipKind.SUPPORT)
    gone = person("Parti Tôt", "gone@example.org", D(2025, 9, 1))
    ended(gone.memberships.get(), D(2026, 1, 15))
    partner = actions.do_create_organization("Les Amis du Vélo Imaginaire",
                                             "contact@velo.example.org", acting_user=None)
    actions.do_start_membership(partner, acting_user=None, starts_on=D(2026, 1, 1))

    on_day = queries.member_counts(D(2026, 3, 1))
    assert on_day["natural"] == {"regular": 3, "support": 1, "total": 4}
    assert on_day["legal"] == {"regular": 1, "support": 0, "total": 1}
    assert on_day["total"] == 5
    semester = queries.member_counts(D(2026, 1, 1), D(2026, 6, 30))
    assert semester["natural"]["total"] == 5  # the one who left in January counts for the period


def test_overlapping_memberships_are_refused() -> None:
    member = person("Eva Doublon", "eva@example.org", D(2026, 1, 1))
    with pytest.raises(Conflict):
        actions.do_start_membership(member, acting_user=None, starts_on=D(2026, 6, 1))
    with pytest.raises(InvalidInput):
        actions.do_end_membership(member.memberships.get(), D(2025, 1, 1), acting_user=None)


def test_dues() -> None:
    member = person("Paul Payeur", "paul@example.org", D(2026, 1, 1))
    membership = member.memberships.get()
    payment = actions.do_record_dues(membership, "12.5", D(2026, 1, 2), acting_user=None)
    assert payment.amount == Decimal("12.50")
    for bad in ["-1", "abc", "1e9"]:
        with pytest.raises(InvalidInput):
            actions.do_record_dues(membership, bad, D(2026, 1, 2), acting_user=None)
    assert membership.dues.count() == 1


def test_person_validation_and_duplicates() -> None:
    actions.do_create_person("Zoé Unique", "zoe@example.org", acting_user=None)
    with pytest.raises(Conflict):
        actions.do_create_person("Zoé Bis", "ZOE@example.org", acting_user=None)
    with pytest.raises(InvalidInput):
        actions.do_create_person("Nul\x00Byte", "nul@example.org", acting_user=None)
    with pytest.raises(InvalidInput):
        actions.do_create_person("Sans Mail", "pas-un-mail", acting_user=None)


def test_audit_rows_hold_before_and_after() -> None:
    member = actions.do_create_person("Ada Avant", "ada@example.org", acting_user=None)
    actions.do_update_person(member, acting_user=None, full_name="Ada Après")
    row = AuditLog.objects.filter(action="person.update").get()
    assert row.before == {"full_name": "Ada Avant"}
    assert row.after == {"full_name": "Ada Après"}


def test_member_history_month_by_month() -> None:
    person("Hugo Histoire", "hugo@example.org", D(2026, 2, 10))
    left = person("Iris Passée", "iris@example.org", D(2025, 12, 1))
    ended(left.memberships.get(), D(2026, 3, 15))
    days = queries.month_starts(D(2026, 5, 20), 6)
    assert days[0] == D(2025, 12, 1) and days[-1] == D(2026, 5, 1)
    history = queries.member_history(days)
    assert [point["natural"] for point in history] == [1, 1, 1, 2, 1, 1]


def test_chart_escapes_labels() -> None:
    from chaton.core.charts import Series, stacked_bars

    svg = stacked_bars(["<b>"], [Series("<script>", [3], "#000")], title="t&t")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and svg.startswith("<svg")
