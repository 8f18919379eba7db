"""A made-up semester of a collective, written straight into the tables (history a
collective would have gathered over months): members and dues, a partner
association's instances, decisions with closed ballots ("15/15"), daily usage
samples, monitoring roll-ups and incidents, backups and restore drills.

Used by the reports' tests and benchmark (after Django is set up). Every name is invented.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from chaton.core import clock

if TYPE_CHECKING:
    from chaton.members.models import Organization

#: Figures sampled for each kind of instance (and the collective's own).
FIGURES_BY_APPLICATION = {
    "etherpad": ("etherpad.pads", "http.requests", "http.visitors"),
    "mattermost": ("mattermost.users", "mattermost.posts_day", "http.requests"),
    "nextcloud": ("nextcloud.users", "nextcloud.files", "http.requests"),
    "castopod": ("castopod.episodes", "castopod.hits", "http.requests"),
}
APPLICATIONS = tuple(FIGURES_BY_APPLICATION)


@dataclass
class Semester:
    start: dt.date
    end: dt.date
    natural: int = 0
    legal: int = 0
    decisions: list[int] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)


def _moment(day: dt.date, hour: int = 12) -> dt.datetime:
    return clock.start_of_day(day) + dt.timedelta(hours=hour)


def members(start: dt.date, end: dt.date, *, natural: int, legal: int,
            support_every: int = 5) -> list[Organization]:
    """Memberships running from before ``start`` (one in ten joins during the period), a
    regular or support kind, dues paid in the period. Return the organizations."""
    from chaton.members.models import DuesPayment, Membership, Organization, Person

    memberships = []
    for index in range(natural):
        person = Person.objects.create(full_name=f"Member {index:04d}",
                                       email=f"member{index:04d}@example.org")
        starts = start + dt.timedelta(days=30) if index % 10 == 9 else start - dt.timedelta(
            days=100)
        memberships.append(Membership(
            person=person, starts_on=starts, recorded_on=starts,
            kind="support" if index % support_every == support_every - 1 else "regular"))
    organizations = []
    for index in range(legal):
        organization = Organization.objects.create(
            name=f"Partner association {index + 1}", slug=f"partner-{index + 1}",
            email=f"contact@partner{index + 1}.example.org")
        organizations.append(organization)
        memberships.append(Membership(organization=organization, starts_on=start,
                                      recorded_on=start))
    created = Membership.objects.bulk_create(memberships)
    DuesPayment.objects.bulk_create(
        DuesPayment(membership=membership, amount=Decimal("10.00"),
                    paid_on=start + dt.timedelta(days=45)) for membership in created)
    return organizations


def decisions(start: dt.date, count: int, *, electorate: int = 15,
              extraordinary_every: int = 3) -> list[int]:
    """Decisions proposed over the period, their ballots closed with tallies such as 15/15
    and 10/13. Return their numbers."""
    from chaton.governance.models import Ballot, BallotKind, Decision, Kind, Outcome, Status

    numbers = []
    for index in range(count):
        created = _moment(start + dt.timedelta(days=2 + index * 3 % 170))
        extraordinary = index % extraordinary_every == extraordinary_every - 1
        decision = Decision.objects.create(
            kind=Kind.EXTRAORDINARY if extraordinary else Kind.ORDINARY,
            title=f"Decision {index + 1}: open a service for partner {index % 4 + 1}",
            proposed_by_label="Noa Brassac", created_at=created, status=Status.ADOPTED,
            decided_at=created + dt.timedelta(days=7))
        against = index % 4
        Ballot.objects.create(
            decision=decision, kind=BallotKind.PROPOSAL if extraordinary else BallotKind.COUNTER,
            opened_at=created, closes_at=created + dt.timedelta(days=7),
            closed_at=created + dt.timedelta(days=7), electorate_size=electorate,
            votes_for=electorate - against, votes_against=against,
            outcome=Outcome.ADOPTED if extraordinary else Outcome.UPHELD)
        numbers.append(decision.pk)
    return numbers


def instances(start: dt.date, count: int, *, partner: Organization | None) -> list[str]:
    """``count`` instances on one host, all older than the period but the partner's last
    two, opened mid-period. Return their short names."""
    from chaton.services.models import Host, Instance

    host, _created = Host.objects.get_or_create(
        name="venus", defaults={"docker_url": "tcp://192.0.2.10:2376", "roles": ["apps"]})
    slugs = []
    for index in range(count):
        application = APPLICATIONS[index % len(APPLICATIONS)]
        slug = f"{application[:4]}-{index + 1:02d}"
        for_partner = partner is not None and index >= count - 2
        instance = Instance.objects.create(
            slug=slug, application=application, domain=f"{slug}.example.org", host=host,
            port=20000 + index, organization=partner if for_partner else None)
        opened = start + dt.timedelta(days=60) if for_partner else start - dt.timedelta(days=200)
        Instance.objects.filter(pk=instance.pk).update(created_at=_moment(opened))
        slugs.append(slug)
    return slugs


def samples(slugs: list[str], start: dt.date, end: dt.date, *,
            gap_subject: str | None = None) -> int:
    """Daily samples of every figure of every instance (and the collective's members),
    from the instance's opening; ``gap_subject`` misses a week in the middle. Return how
    many."""
    from chaton.services.models import Instance
    from chaton.stats.models import Sample

    rows: list[Sample] = []
    collected = clock.now()
    opened = {instance.slug: clock.local_day(instance.created_at)
              for instance in Instance.objects.filter(slug__in=slugs)}
    plan: list[tuple[str, str]] = [("chaton", "chaton.members")]
    for slug in slugs:
        application = next(name for name in APPLICATIONS if slug.startswith(name[:4]))
        plan += [(slug, figure) for figure in FIGURES_BY_APPLICATION[application]]
    middle = start + (end - start) / 2
    generator = random.Random(13)  # noqa: S311 - made-up figures, repeatable
    for subject, figure in plan:
        day = max(start, opened.get(subject, start))
        level = 100.0
        while day <= end:
            if not (subject == gap_subject and middle <= day < middle + dt.timedelta(days=7)):
                level += generator.randint(0, 3)
                value = level if figure.split(".")[-1] in ("pads", "users", "files", "members",
                                                           "episodes") else float(
                    generator.randint(200, 900))
                rows.append(Sample(figure=figure, subject=subject, day=day, value=value,
                                   collected_at=collected))
            day += dt.timedelta(days=1)
    Sample.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def monitoring(slugs: list[str], start: dt.date, end: dt.date, *,
               incidents: int = 2) -> None:
    """A probe per instance with a day roll-up for each day (a few minutes down on some),
    and ``incidents`` resolved incidents on the first one."""
    from chaton.monitoring.models import Incident, Period, Probe, Rollup

    rollups = []
    probes = []
    for slug in slugs:
        probe = Probe.objects.create(key=f"instance:{slug}:http", name=slug, kind="http",
                                     target=f"https://{slug}.example.org/", service=slug)
        probes.append(probe)
        day = start
        while day <= end:
            down = 600.0 if day.day == 15 else 0.0
            rollups.append(Rollup(probe=probe, period=Period.DAY, start=clock.start_of_day(day),
                                  up_seconds=86400.0 - down, down_seconds=down, checks=1440,
                                  failures=int(down // 60)))
            day += dt.timedelta(days=1)
    Rollup.objects.bulk_create(rollups, batch_size=5000)
    if probes:
        for index in range(incidents):
            opened = _moment(start + dt.timedelta(days=20 + 30 * index), 3)
            Incident.objects.create(probe=probes[0], opened_at=opened,
                                    resolved_at=opened + dt.timedelta(minutes=25),
                                    first_error="connection refused")


def backups(start: dt.date, *, drills: int = 12, failed: int = 0) -> None:
    """A repository, a plan, weekly backups and ``drills`` restore drills (``failed`` of
    them failed)."""
    from chaton.backups.models import Drill, Plan, Repository, Run

    repository = Repository.objects.create(name="offsite", kind="local", location="/srv/backup",
                                           password_encrypted="x",  # noqa: S106 - never opened
                                           created_at=clock.now())
    plan = Plan.objects.create(name="nightly", repository=repository, created_at=clock.now())
    for index in range(drills):
        at = _moment(start + dt.timedelta(days=7 * index + 3), 4)
        Run.objects.create(repository=repository, plan=plan, kind="backup",
                           outcome="succeeded", started_at=at - dt.timedelta(hours=1),
                           finished_at=at)
        Drill.objects.create(plan=plan, source_name="directory", source_kind="ldap",
                             started_at=at, duration_seconds=12.0,
                             outcome="failed" if index < failed else "passed")


def semester(start: dt.date, end: dt.date, *, natural: int = 28, legal: int = 2,
             decision_count: int = 12, instance_count: int = 4, drills: int = 12,
             gap_subject: str | None = None, with_samples: bool = True) -> Semester:
    """The whole made-up semester. Return what was made."""
    made = Semester(start, end, natural=natural, legal=legal)
    partners = members(start, end, natural=natural, legal=legal)
    made.decisions = decisions(start, decision_count)
    made.instances = instances(start, instance_count, partner=partners[0] if partners else None)
    if with_samples:
        samples(made.instances, start, end, gap_subject=gap_subject)
    monitoring(made.instances, start, end)
    backups(start, drills=drills)
    return made
