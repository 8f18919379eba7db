"""Repository checks that read everything, in turn.

``restic check --read-data-subset n/t`` reads the packs of the n-th of t
groups (a pack's group is fixed by its id): t checks with n = 1 … t read
every pack once. A repository's ``check_read_data_subset`` says how much one
check reads — a percentage (5 % is 20 parts), a fraction (1/10 is 10 parts)
or a size — and its ``check_cycle_position`` which part comes next.

- A check that passes moves to the next part; the one that passes the last
  part completes the cycle: every pack was read (``last_full_read_at``).
- A check that fails stays on its part: the next one reads it again, so a
  damaged pack keeps the repository red until it is repaired, never hidden
  by a check of other packs.
- A size (``500M``) reads a random sample: it cannot rotate, and only a check
  of all the data (``100%``) counts as a full read then.

Nothing here touches restic or the database: the actions call it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PERCENT = re.compile(r"^(\d{1,3}(?:\.\d+)?)%$")
_FRACTION = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Part:
    """One check's share of the data: ``number`` of ``parts`` (from 1), or a fixed subset."""

    subset: str
    number: int = 0
    parts: int = 0

    @property
    def rotating(self) -> bool:
        return self.parts > 0

    @property
    def last(self) -> bool:
        """Whether passing this part reads the last pack not yet read in its cycle."""
        return self.rotating and self.number == self.parts


def parts_of(subset: str) -> int:
    """Given a repository's ``check_read_data_subset``, return how many checks read all its
    data in turn (1: each check reads everything), or 0 when it cannot rotate (a size)."""
    value = subset.strip()
    percent = _PERCENT.match(value)
    if percent:
        share = float(percent.group(1))
        return max(1, math.ceil(100 / share)) if share > 0 else 0
    fraction = _FRACTION.match(value)
    if fraction:
        return max(1, int(fraction.group(2)))
    return 0


def reads_everything(subset: str) -> bool:
    """Whether a check reading ``subset`` reads every pack at once."""
    return parts_of(subset) == 1


def next_part(subset: str, position: int) -> Part:
    """Given the repository's setting and its cycle position, return what the next check
    reads: ``n/t`` when it rotates (``100%`` when one part is everything), else the setting."""
    parts = parts_of(subset)
    if parts == 0:
        return Part(subset.strip())
    if parts == 1:
        return Part("100%", 1, 1)
    number = position % parts + 1
    return Part(f"{number}/{parts}", number, parts)
