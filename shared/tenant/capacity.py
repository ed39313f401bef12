"""Capacity: the room left under the tenant cap and which new indicators get it (CAPACITY_PRIORITY).

Pure: standard library only, no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.core.model import Action, Indicator, Severity
from shared.core.settings import PRIORITY_FIELDS, parse_priority_fields
from shared.tenant.records import parse_time

SEVERITY_RANK: Mapping[str, int] = {
    Severity.High.value: 0,
    Severity.Medium.value: 1,
    Severity.Low.value: 2,
    Severity.Informational.value: 3,
}
ACTION_RANK: Mapping[str, int] = {
    Action.Block.value: 0,
    Action.BlockAndRemediate.value: 0,
    Action.Warn.value: 1,
    Action.Audit.value: 2,
    Action.Allowed.value: 3,
}
_NEVER = -(10**9)  # "never expires" sorts before any date under "latest expiry first"

PriorityKey = tuple[int, ...]


# What analysts may add behind a view that is not fresh, per hour of its age. Their indicators come by hand in
# the portal, one at a time, or by its CSV import, at most 500 a file (defender-api.md §6): the margin assumes
# one full portal import per hour since the listing, in proportion to the view's age. A fresh listing needs
# none; a mirror at the default TENANT_REFRESH_MINUTES (60) keeps up to 500 more free, plus what a drain of up to
# DRAIN_MAX_SECONDS adds. Why not less: the reserve (CAPACITY_RESERVE) is the analysts' room, and what they added
# since the listing is what the stale count misses, so without the margin their own additions would eat into
# the room left for them. Why not more: more is only needed when analysts outpace a portal import an hour, and
# then Defender's "cap reached" answer is a drift signal (the next drain lists) while the reserve still stands
# between the tenant and its cap.
ANALYST_ADDS_PER_HOUR = 500


def room_left(max_tenant_indicators: int, capacity_reserve: int, active_count: int, margin: int = 0) -> int:
    """New indicators this run may add: the cap minus the analysts' reserve minus what is active (§2), minus the
    `margin` kept for what analysts may have added since the view was listed (`analyst_margin`)."""
    return max(0, max_tenant_indicators - capacity_reserve - active_count - max(0, margin))


def analyst_margin(view_age_seconds: float) -> int:
    """Indicators analysts may have added since a view `view_age_seconds` old was listed, at
    ANALYST_ADDS_PER_HOUR (whole indicators): 0 for a listing made seconds ago, 500 for one an hour old."""
    if view_age_seconds <= 0:
        return 0
    return math.floor(ANALYST_ADDS_PER_HOUR * view_age_seconds / 3600)


@dataclass(frozen=True)
class Priority:
    """Order in which new indicators get the room left: lower key first.

    Default (issue 6): severity High first, then action Block/BlockAndRemediate, Warn, Audit, Allowed, then
    latest expiry. Expiry counts in whole days, so indicators defaulted seconds apart tie and keep input order.
    `parse("action,severity")` reorders or drops criteria.
    """

    fields: tuple[str, ...] = PRIORITY_FIELDS

    @classmethod
    def parse(cls, text: str | None) -> Priority:
        return cls(parse_priority_fields(text))

    def key(self, indicator: Indicator) -> PriorityKey:
        out: list[int] = []
        for f in self.fields:
            if f == "severity":
                sev = indicator.severity.value if indicator.severity is not None else None
                out.append(SEVERITY_RANK.get(sev, len(SEVERITY_RANK)) if sev else len(SEVERITY_RANK))
            elif f == "action":
                out.append(ACTION_RANK.get(indicator.action.value, len(ACTION_RANK)))
            else:
                exp = parse_time(indicator.expirationTime)
                out.append(_NEVER if exp is None else -int(exp.timestamp() // 86400))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Threshold:
    """Result of `admit_plan`: admit keys below `cut`, the first `at_cut` with key == `cut` (input order).

    `cut` None: no ranking needed; admit the first `limit` in input order (all of them when they fit).
    """

    limit: int
    cut: PriorityKey | None = None
    at_cut: int = 0
    candidates: int = 0


def admit_plan(keys: Iterable[PriorityKey], room: int) -> Threshold:
    """Plan which new indicators get the `room`: exactly min(room, n), best keys first, ties in input order.

    Memory grows with the number of distinct keys only (a Counter of buckets, not the candidates), so a
    second pass over the input with an `Admitter` reproduces the choice without holding the file.
    """
    return admit_plan_counts(Counter(keys), room)


def admit_plan_counts(counts: Mapping[PriorityKey, int], room: int) -> Threshold:
    """`admit_plan` from bucket counts already gathered (the steward's first pass)."""
    room = max(0, room)
    n = sum(counts.values())
    if n <= room or room == 0:
        return Threshold(limit=room, candidates=n)
    taken = 0
    for k in sorted(counts):
        if taken + counts[k] >= room:
            return Threshold(limit=room, cut=k, at_cut=room - taken, candidates=n)
        taken += counts[k]
    return Threshold(limit=room, candidates=n)  # unreachable: n > room


class Admitter:
    """Second pass of `admit_plan`: call `admit(key)` once per new indicator, in input order."""

    def __init__(self, plan: Threshold) -> None:
        self.plan = plan
        self.admitted = 0
        self.refused = 0
        self._seen_at_cut = 0

    def admit(self, key: PriorityKey) -> bool:
        ok = self._decide(key)
        if ok:
            self.admitted += 1
        else:
            self.refused += 1
        return ok

    def _decide(self, key: PriorityKey) -> bool:
        p = self.plan
        if self.admitted >= p.limit:
            return False
        if p.cut is None:
            return True
        if key < p.cut:
            return True
        if key == p.cut and self._seen_at_cut < p.at_cut:
            self._seen_at_cut += 1
            return True
        return False
