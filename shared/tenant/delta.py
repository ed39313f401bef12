"""Delta decisions: is an entry already in the tenant with the same fields, an update, or a conflict?

Pure: standard library only, no I/O; tested in tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from shared.core.model import Indicator
from shared.core.vocab import NETWORK_TYPES
from shared.tenant.ownership import owned_by_app
from shared.tenant.records import TenantRecord, parse_time


class Kind(Enum):
    new = "new"
    unchanged = "unchanged"
    update = "update"
    replace = "replace"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A record holding the value with another action that this app does not own: left in place."""

    id: str
    action: str
    type: str
    created_by: str | None = None

    @property
    def who(self) -> str:
        return self.created_by or "an unknown identity"

    def note(self) -> str:
        text = f"conflicts with {self.action} indicator {self.id} created by {self.who}, left in place"
        if self.type in NETWORK_TYPES:
            # indicator-ip-domain (defender-api.md §4 "Network conflicts"): the stale Allow may still win.
            text += " (for network indicators Allow wins over Warn over Block)"
        return text

    def in_place_note(self) -> str:
        """When the import returned this record's id: Defender's upsert (key type+value) rewrote it."""
        return f"Defender updated indicator {self.id} in place (it was created by {self.who})"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one indicator given what the tenant holds.

    `existing_id`: the same-action record compared against (unchanged/update), if any.
    `old_id`/`old_action`: for `replace`, the first record this app owns holding the value with another action.
    `supersedes`: ids of records this app owns to delete after a successful import, each only if the import
    returned a different id (defender-api.md §3.2: if Defender updated the record in place, deleting it would
    delete the new one). Never a record someone else created (`owned_by_app`).
    `conflicts`: records with another action that someone else created: never deleted, only reported.
    `differences`: field names that differ, for the report.
    """

    kind: Kind
    existing_id: str | None = None
    old_id: str | None = None
    old_action: str | None = None
    supersedes: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()

    @property
    def adds(self) -> bool:
        """May the import add a record to the tenant (so it needs room)?

        `new` does, also next to a foreign record with another action: under an upsert key holding the
        action (defender-api.md §3.2, likely) the import creates a record and the foreign one stays.
        """
        return self.kind is Kind.new

    def note(self, *, rewritten: str | None = None) -> str | None:
        """The phrase the report carries for this decision (None for `new` without conflicts).

        `rewritten`: the id the import returned, when it is a conflicting record's: Defender's upsert (keyed
        on type+value) rewrote that record in place, and its part of the phrase says so.
        """
        main: str | None = None
        if self.kind is Kind.unchanged:
            main = "already in the tenant with identical fields"
        elif self.kind is Kind.update:
            main = f"updates indicator {self.existing_id} ({', '.join(self.differences)})"
        elif self.kind is Kind.replace:
            main = f"replaces {self.old_action} indicator {self.old_id}"
        conflicts = (c.in_place_note() if c.id == rewritten else c.note() for c in self.conflicts)
        parts = [p for p in (main, *conflicts) if p]
        return "; ".join(parts) or None


# A defaulted expiry "moves" every run; compare it within this slack of the window's far end.
_EXPIRY_SLACK = timedelta(days=1)


def expiry_unchanged(
    wanted: str | None, held: datetime | None, *, now: datetime, window_days: int, explicit: bool
) -> bool:
    """Is the tenant's expiry good enough?

    Explicit (the row gave it): equal to the second. Defaulted: `window_days` 0 means "never expires", so
    only a record without expiry matches; otherwise the record matches while it still has at least half of
    its window left (feeds refresh at half-life, not every run) and does not reach further than the window
    (plus a day's slack), so a shortened window is applied on the next run (issue 6, "Delta").
    """
    if explicit:
        w = parse_time(wanted)
        if w is None or held is None:
            return w is None and held is None
        return int(w.timestamp()) == int(held.timestamp())
    if window_days == 0:
        return held is None
    if held is None:
        return False
    window = timedelta(days=window_days)
    return now + window / 2 <= held <= now + window + _EXPIRY_SLACK


def _differences(
    indicator: Indicator, rec: TenantRecord, *, now: datetime, window_days: int, explicit: bool
) -> list[str]:
    """Fields that differ between what we would send and what the tenant holds (issue 6, "Delta")."""
    diff: list[str] = []
    if indicator.severity is not None and indicator.severity.value != rec.severity:
        diff.append("severity")
    if indicator.title != (rec.title or ""):
        diff.append("title")
    if indicator.description != (rec.description or ""):
        diff.append("description")
    # None and [] both mean "all devices" (defender-api.md §1.5); order is not meaningful.
    if tuple(sorted(indicator.rbacGroupNames or ())) != rec.rbacGroupNames:
        diff.append("rbacGroupNames")
    # Not sending generateAlert leaves Defender's default, false (Audit always sends true: CONTRACT.md).
    if bool(indicator.generateAlert) != rec.generateAlert:
        diff.append("generateAlert")
    if indicator.recommendedActions is not None and indicator.recommendedActions != rec.recommendedActions:
        diff.append("recommendedActions")
    if not expiry_unchanged(
        indicator.expirationTime, rec.expirationTime, now=now, window_days=window_days, explicit=explicit
    ):
        diff.append("expirationTime")
    return diff


def compare(
    indicator: Indicator,
    existing: Sequence[TenantRecord],
    *,
    now: datetime,
    expiry_window_days: int,
    explicit_expiry: bool,
    identities: Iterable[str] = (),
) -> Decision:
    """Decide new / unchanged / update / replace for one indicator against the tenant's records for its key.

    - No record: `new`.
    - Records this app owns (`owned_by_app` with `identities`) with another action: `replace` (import first,
      then delete those the import did not update in place). A stale Allow next to a new Block would
      otherwise win (Allow > Warn > Block).
    - Records with another action that someone else created (an analyst's Allow is usually a deliberate
      false-positive exception): never superseded, listed in `conflicts`; the entry is still imported when
      it is not already there (`new`, or `update` of a same-action record).
    - A same-action record with identical type, value, severity, title, description, device groups, alert
      setting (and expiry, see `expiry_unchanged`): `unchanged`; otherwise `update` of that record.
    `externalId` is deliberately not compared: a value shared by two feeds stays with the feed that wrote it
    first instead of flip-flopping between them on every run (see `feed_mark`).
    """
    if not existing:
        return Decision(Kind.new)
    ids = tuple(identities)
    action = indicator.action.value
    others = [r for r in existing if r.action != action]
    mine = [r for r in others if owned_by_app(r, ids)]
    conflicts = tuple(Conflict(r.id, r.action, r.type, r.createdBy) for r in others if not owned_by_app(r, ids))
    target, target_diff = _same_action_target(
        indicator,
        [r for r in existing if r.action == action],
        now=now,
        window_days=expiry_window_days,
        explicit=explicit_expiry,
    )
    if mine:
        return _replacement(target, target_diff, mine, ids, conflicts)
    if target is None:
        return Decision(Kind.new, conflicts=conflicts)
    if not target_diff:
        return Decision(Kind.unchanged, existing_id=target.id, conflicts=conflicts)
    return Decision(
        Kind.update,
        existing_id=target.id,
        supersedes=_stale(target, target_diff, ids),
        differences=tuple(target_diff),
        conflicts=conflicts,
    )


def _stale(target: TenantRecord | None, target_diff: list[str], ids: tuple[str, ...]) -> tuple[str, ...]:
    """A differing same-action twin is superseded too, but only when it is ours."""
    return (target.id,) if target is not None and target_diff and owned_by_app(target, ids) else ()


def _replacement(
    target: TenantRecord | None,
    target_diff: list[str],
    mine: list[TenantRecord],
    ids: tuple[str, ...],
    conflicts: tuple[Conflict, ...],
) -> Decision:
    """`replace`: our records with another action go once the import took (the same-action twin updated)."""
    return Decision(
        Kind.replace,
        existing_id=target.id if target else None,
        old_id=mine[0].id,
        old_action=mine[0].action,
        supersedes=(*(r.id for r in mine), *_stale(target, target_diff, ids)),
        differences=("action", *target_diff),
        conflicts=conflicts,
    )


def _same_action_target(
    indicator: Indicator, same: Sequence[TenantRecord], *, now: datetime, window_days: int, explicit: bool
) -> tuple[TenantRecord | None, list[str]]:
    """The same-action record to compare with and its differences: the first identical one, else the first."""
    target: TenantRecord | None = None
    target_diff: list[str] = []
    for r in same:
        d = _differences(indicator, r, now=now, window_days=window_days, explicit=explicit)
        if not d:
            return r, []
        if target is None:
            target, target_diff = r, d
    return target, target_diff


def superseded_to_delete(decision: Decision, returned_id: str | None) -> list[str]:
    """Ids to delete after the import of a `replace`/`update` returned `returned_id`.

    Nothing when the import failed (no id): the old indicator keeps protecting until the next run,
    so there is never a gap (issue 6, "Action change").
    """
    if not returned_id:
        return []
    return [i for i in decision.supersedes if i != returned_id]


def looks_defaulted(expiration: str | None, *, now: datetime, window_days: int, tolerance: timedelta) -> bool:
    """Was this expiry computed from the window (now + days) rather than given by the row?

    Validation does not say which; an expiry within `tolerance` of now + window is taken as defaulted.
    A row whose explicit expiry happens to land there is treated by the half-life rule, which is harmless.
    """
    if window_days == 0:
        return expiration is None
    exp = parse_time(expiration)
    if exp is None:
        return False
    return abs(exp - (now + timedelta(days=window_days))) <= tolerance
