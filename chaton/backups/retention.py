"""restic's retention policy, computed here from a snapshot list: what ``forget`` will keep.

``restic forget --dry-run`` takes the repository's exclusive lock, so a page
that shows what the policy keeps would wait behind every running backup.
:func:`apply_policy` is the same algorithm (restic 0.14, ``ApplyPolicy``) on
the list that ``restic snapshots --no-lock`` gives: the newest snapshot of
each of the last N days (weeks, months, years) that have one is kept, and
the last N snapshots. The real pass (:func:`chaton.backups.runs.apply_retention`)
is restic's own ``forget --prune``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from chaton.adapters.restic import KeepPolicy, Snapshot

#: The policy's rules in restic's order, with the bucket each puts a snapshot in.
_RULES: tuple[tuple[str, Callable[[Snapshot, int], object]], ...] = (
    ("last", lambda snapshot, position: position),
    ("hourly", lambda snapshot, position: (snapshot.time.year, snapshot.time.month,
                                            snapshot.time.day, snapshot.time.hour)),
    ("daily", lambda snapshot, position: (snapshot.time.year, snapshot.time.month,
                                           snapshot.time.day)),
    ("weekly", lambda snapshot, position: tuple(snapshot.time.isocalendar())[:2]),
    ("monthly", lambda snapshot, position: (snapshot.time.year, snapshot.time.month)),
    ("yearly", lambda snapshot, position: snapshot.time.year),
)


@dataclass(frozen=True)
class Decision:
    """One snapshot under the policy: kept (and why) or removed."""

    snapshot: Snapshot
    #: The rules that keep it ("daily", "weekly" …); empty: it will be removed.
    reasons: tuple[str, ...]

    @property
    def kept(self) -> bool:
        return bool(self.reasons)


def apply_policy(snapshots: Iterable[Snapshot], policy: KeepPolicy) -> list[Decision]:
    """Given one group's snapshots and a policy, return a decision per snapshot, newest first.

    A policy that keeps nothing at all (every count 0) keeps everything, as
    Chaton never calls forget with it.
    """
    ordered = sorted(snapshots, key=lambda snapshot: snapshot.time, reverse=True)
    if policy.keeps_everything:
        return [Decision(snapshot, ("all",)) for snapshot in ordered]
    counts = {name: getattr(policy, name) for name, _bucket in _RULES}
    last_bucket: dict[str, object] = {}
    decisions = []
    for position, snapshot in enumerate(ordered):
        reasons = []
        for name, bucket in _RULES:
            if counts[name] <= 0:
                continue
            value = bucket(snapshot, position)
            if value != last_bucket.get(name):
                last_bucket[name] = value
                counts[name] -= 1
                reasons.append(name)
        decisions.append(Decision(snapshot, tuple(reasons)))
    return decisions


def group_by_host_and_tags(snapshots: Sequence[Snapshot]) -> dict[tuple[str, tuple[str, ...]],
                                                                    list[Snapshot]]:
    """Group snapshots as ``forget --group-by host,tags`` does: same host, same set of tags."""
    groups: dict[tuple[str, tuple[str, ...]], list[Snapshot]] = {}
    for snapshot in snapshots:
        groups.setdefault((snapshot.hostname, tuple(sorted(snapshot.tags))), []).append(snapshot)
    return groups
