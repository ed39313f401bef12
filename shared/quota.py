"""Quota stewardship decisions: what the tenant already holds, what to send, what room is left, what to delete.

Core module: standard library only, no I/O. `shared/steward.py` reads the tenant and applies these
decisions; everything here is a pure function of its arguments so it can be tested in tables.

Facts relied on (design/defender-api.md):
- §2: 15,000 active indicators per tenant, no increase; expired indicators are deleted by Defender.
- §3.2: Import is an upsert whose key is undocumented (probably includes `action`), so an action change
  is "import the new one first, delete the old one only if the import returned a different id".
- §5: List returns `externalId` and `createdBy`; `externalId` is free text we own, `createdBy` is set by
  Defender from the caller's identity. Together they are the ownership mark (`owned_by_app`): feed sync
  and action replacement only ever delete records that carry it.
- indicator-ip-domain (§4 "Network conflicts"): Allow > Warn > Block, so a stale Allow silently wins.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from shared.model import Action, Indicator, Severity

# --------------------------------------------------------------------------------------------- tenant records

_HASH_TYPES = frozenset({"FileSha1", "FileSha256", "FileMd5", "CertificateThumbprint"})


def tenant_key(indicator_type: str, value: str) -> tuple[str, str]:
    """(type, value) written the way validation writes it (CONTRACT.md "Normalisation").

    Defender stores values as submitted (defender-api.md §4 "Hash case"), so our own records already
    match; this catches what analysts typed by hand (upper-case hashes, compressed IPv6, `HTTP://Host`).
    A value this cannot parse is kept as given: at worst it is not recognised and gets resubmitted.
    """
    v = value.strip()
    if indicator_type in _HASH_TYPES:
        return indicator_type, v.lower()
    if indicator_type == "DomainName":
        return indicator_type, v.lower().rstrip(".")
    if indicator_type == "IpAddress":
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            return indicator_type, v
        if ip.version == 6:
            # All eight groups, no leading zeros (CONTRACT.md "Normalisation").
            return indicator_type, ":".join(f"{int(g, 16):x}" for g in ip.exploded.split(":"))
        return indicator_type, str(ip)
    if indicator_type == "Url":
        try:
            parts = urlsplit(v)
        except ValueError:
            return indicator_type, v
        if parts.scheme and parts.netloc:
            return indicator_type, urlunsplit((parts.scheme.lower(), parts.netloc.lower(), *parts[2:]))
        return indicator_type, v
    return indicator_type, v


def parse_time(text: Any) -> datetime | None:
    """Defender's DateTimeOffset (`2025-01-02T03:04:05Z`, `.0000000Z`, `+00:00`) as aware UTC; None if absent."""
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    s = str(text).strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    if "." in s:
        # Python < 3.11 style parsers choke on 7 fractional digits; the second is all we compare.
        head, _, rest = s.partition(".")
        tz = ""
        for sign in ("+", "-"):
            if sign in rest:
                tz = sign + rest.split(sign, 1)[1]
                break
        s = head + tz
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """One indicator as the List API returns it, reduced to what the decisions read."""

    id: str
    type: str
    value: str
    action: str
    severity: str | None = None
    title: str | None = None
    description: str | None = None
    rbacGroupNames: tuple[str, ...] = ()
    generateAlert: bool = False
    expirationTime: datetime | None = None
    externalId: str | None = None
    createdBy: str | None = None
    recommendedActions: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return tenant_key(self.type, self.value)

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> TenantRecord:
        """From one List `value` item. Tolerates missing fields and `externalID` spelling (defender-api.md §1.5)."""
        groups = item.get("rbacGroupNames") or ()
        if isinstance(groups, str):
            groups = [g for g in (p.strip() for p in groups.split(",")) if g]
        alert = item.get("generateAlert")
        if isinstance(alert, str):
            alert = alert.strip().lower() == "true"
        ext = item.get("externalId", item.get("externalID"))
        return cls(
            id=str(item.get("id", "")),
            type=str(item.get("indicatorType", "")),
            value=str(item.get("indicatorValue", "")),
            action=_legacy_action(str(item.get("action", ""))),
            severity=item.get("severity"),
            title=item.get("title"),
            description=item.get("description"),
            rbacGroupNames=tuple(sorted(str(g) for g in groups)),
            generateAlert=bool(alert),
            expirationTime=parse_time(item.get("expirationTime")),
            externalId=str(ext) if ext is not None else None,
            createdBy=item.get("createdBy"),
            recommendedActions=item.get("recommendedActions"),
        )

    def active(self, now: datetime) -> bool:
        """Defender deletes an indicator when it expires, to the second (defender-api.md §1.5)."""
        return self.expirationTime is None or self.expirationTime > now


def _legacy_action(action: str) -> str:
    # Legacy actions as validation maps them (CONTRACT.md "Normalisation"), so an old AlertAndBlock
    # record compares equal to a Block row instead of being "replaced" by it.
    return {"Alert": "Audit", "AlertAndBlock": "Block"}.get(action, action)


class TenantView:
    """The tenant's indicators at one moment, indexed by (type, value). At most ~15,000 records (§2)."""

    def __init__(self, records: Iterable[TenantRecord | Mapping[str, Any]], *, now: datetime) -> None:
        self.now = now
        self.records: list[TenantRecord] = []
        self._by_key: dict[tuple[str, str], list[TenantRecord]] = {}
        for r in records:
            rec = r if isinstance(r, TenantRecord) else TenantRecord.from_wire(r)
            if not rec.active(now):
                continue  # expired: Defender is about to delete it; it neither counts nor matches
            self.records.append(rec)
            self._by_key.setdefault(rec.key, []).append(rec)
        self.ids = frozenset(r.id for r in self.records)

    @property
    def active_count(self) -> int:
        return len(self.records)

    def get(self, indicator_type: str, value: str) -> list[TenantRecord]:
        return self._by_key.get(tenant_key(indicator_type, value), [])

    def for_indicator(self, indicator: Indicator) -> list[TenantRecord]:
        return self.get(indicator.indicatorType.value, indicator.indicatorValue)


# --------------------------------------------------------------------------------------------- delta decisions


class Kind(Enum):
    new = "new"
    unchanged = "unchanged"
    update = "update"
    replace = "replace"


NETWORK_TYPES = frozenset({"IpAddress", "DomainName", "Url"})


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

    def note(self) -> str | None:
        """The phrase the report carries for this decision (None for `new` without conflicts)."""
        main: str | None = None
        if self.kind is Kind.unchanged:
            main = "already in the tenant with identical fields"
        elif self.kind is Kind.update:
            main = f"updates indicator {self.existing_id} ({', '.join(self.differences)})"
        elif self.kind is Kind.replace:
            main = f"replaces {self.old_action} indicator {self.old_id}"
        parts = [p for p in (main, *(c.note() for c in self.conflicts)) if p]
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
    same = [r for r in existing if r.action == action]
    others = [r for r in existing if r.action != action]
    mine = [r for r in others if owned_by_app(r, ids)]
    conflicts = tuple(Conflict(r.id, r.action, r.type, r.createdBy) for r in others if not owned_by_app(r, ids))

    def diff(r: TenantRecord) -> list[str]:
        return _differences(indicator, r, now=now, window_days=expiry_window_days, explicit=explicit_expiry)

    target: TenantRecord | None = None
    target_diff: list[str] = []
    for r in same:
        d = diff(r)
        if not d:
            target, target_diff = r, []
            break
        if target is None:
            target, target_diff = r, d
    # A differing same-action twin is superseded too, but only when it is ours.
    stale_target = (target.id,) if target is not None and target_diff and owned_by_app(target, ids) else ()

    if mine:
        return Decision(
            Kind.replace,
            existing_id=target.id if target else None,
            old_id=mine[0].id,
            old_action=mine[0].action,
            supersedes=(*(r.id for r in mine), *stale_target),
            differences=("action", *target_diff),
            conflicts=conflicts,
        )
    if target is None:
        return Decision(Kind.new, conflicts=conflicts)
    if not target_diff:
        return Decision(Kind.unchanged, existing_id=target.id, conflicts=conflicts)
    return Decision(
        Kind.update,
        existing_id=target.id,
        supersedes=stale_target,
        differences=tuple(target_diff),
        conflicts=conflicts,
    )


def superseded_to_delete(decision: Decision, returned_id: str | None) -> list[str]:
    """Ids to delete after the import of a `replace`/`update` returned `returned_id`.

    Nothing when the import failed (no id): the old indicator keeps protecting until the next run,
    so there is never a gap (issue 6, "Action change").
    """
    if not returned_id:
        return []
    return [i for i in decision.supersedes if i != returned_id]


# --------------------------------------------------------------------------------------------- capacity

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
PRIORITY_FIELDS = ("severity", "action", "expiry")
DEFAULT_PRIORITY = "severity,action,expiry"
_NEVER = -(10**9)  # "never expires" sorts before any date under "latest expiry first"

PriorityKey = tuple[int, ...]


def room_left(max_tenant_indicators: int, capacity_reserve: int, active_count: int) -> int:
    """New indicators this run may add: the cap minus the analysts' reserve minus what is active (§2)."""
    return max(0, max_tenant_indicators - capacity_reserve - active_count)


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
        parts = tuple(p.strip().lower() for p in (text or DEFAULT_PRIORITY).split(",") if p.strip())
        bad = [p for p in parts if p not in PRIORITY_FIELDS]
        if bad or len(set(parts)) != len(parts):
            raise ValueError(
                f"capacity priority must list some of {', '.join(PRIORITY_FIELDS)} once each, got {text!r}"
            )
        return cls(parts)

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


# --------------------------------------------------------------------------------------------- feed ownership and sync

MARK_PREFIX = "ioc-importer"
# The feed segment of a mark made without a feed. `quote(feed, safe="")` leaves only letters, digits and
# `_.-~` unescaped, so it can never produce `*` (a feed named "*" is written `%2A`): unambiguous.
NO_FEED = "*"
MAX_INVALID_RATIO = 0.10
MAX_DELETE_FRACTION = 0.5


def app_mark(feed: str | None, indicator_type: str, value: str) -> str:
    """The `externalId` this app writes on every indicator it imports: `ioc-importer:<feed or *>:<digest>`.

    Why this mark (defender-api.md §5): `externalId` is returned by List and settable on import, while
    `application` cannot change after creation and `createdBy` only says which identity wrote it. The feed
    is percent-encoded (so `:` cannot split it; `*` stands for "no feed") and the digest binds feed, type
    and value: a mark copied onto another value does not verify. `owned_by_app` also requires `createdBy`
    to be the app's own identity when that identity is known.
    """
    t, v = tenant_key(indicator_type, value)
    digest = hashlib.sha256(f"{feed or ''}\x1f{t}\x1f{v}".encode()).hexdigest()[:24]
    return f"{MARK_PREFIX}:{quote(feed, safe='') if feed else NO_FEED}:{digest}"


def feed_mark(feed: str, indicator_type: str, value: str) -> str:
    """The mark of a feed's indicator: `ioc-importer:<feed, percent-encoded>:<digest>` (see `app_mark`)."""
    if not feed:
        raise ValueError("a feed mark needs a feed name")
    return app_mark(feed, indicator_type, value)


def looks_like_mark(external_id: str | None) -> bool:
    """Does `external_id` have the shape of this app's mark (prefix only, digest not checked)?"""
    return bool(external_id) and str(external_id).startswith(MARK_PREFIX + ":")


def _mark_segment(external_id: str | None) -> str | None:
    if not external_id or not looks_like_mark(external_id):
        return None
    parts = external_id.split(":")
    return parts[1] if len(parts) == 3 else None


def mark_feed(external_id: str | None) -> str | None:
    """The feed named in a mark; None when `external_id` is not a feed's mark (digest not checked)."""
    seg = _mark_segment(external_id)
    return None if seg is None or seg == NO_FEED else unquote(seg)


def _is_us(rec: TenantRecord, identities: Iterable[str]) -> bool:
    ids = {i.lower() for i in identities if i}
    return not ids or (rec.createdBy or "").lower() in ids


def owned_by_app(rec: TenantRecord, identities: Iterable[str] = ()) -> bool:
    """True when this app wrote `rec`: a mark that verifies for its own type and value (any feed or none),
    and, when our identities are known, `createdBy` one of them.

    The identity matters: an indicator another app (or an analyst) wrote with a copy of our mark is not
    ours. Without known identities the mark alone decides (the client could not read its token's claims).
    """
    seg = _mark_segment(rec.externalId)
    if seg is None:
        return False
    feed = None if seg == NO_FEED else unquote(seg)
    if feed == "" or rec.externalId != app_mark(feed, rec.type, rec.value):
        return False
    return _is_us(rec, identities)


def owned_by_feed(rec: TenantRecord, feed: str, identities: Iterable[str] = ()) -> bool:
    """True when this app wrote `rec` for `feed`: the exact mark for its value, and (when known) our identity."""
    if rec.externalId != feed_mark(feed, rec.type, rec.value):
        return False
    return _is_us(rec, identities)


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """Deletes for feed sync. `held_back_reason` set means `delete_ids` would be deleted but are held back."""

    delete_ids: tuple[str, ...] = ()
    held_back_reason: str | None = None
    feed_count: int = 0  # the feed's own active indicators in the tenant before this run

    @property
    def deletes(self) -> tuple[str, ...]:
        """What may actually be deleted (nothing when held back)."""
        return () if self.held_back_reason else self.delete_ids


def sync_plan(
    feed: str,
    view: TenantView,
    present_keys: Iterable[tuple[str, str]] | Callable[[tuple[str, str]], bool],
    *,
    invalid_ratio: float,
    file_error: bool,
    force: bool,
    identities: Iterable[str] = (),
) -> SyncPlan:
    """Which of the feed's own indicators are stale, and whether deleting them is safe (issue 6, "Feed sync").

    `present_keys`: (type, value) of every entry of the new input meant for the tenant, whatever happened
    to it (unchanged, submitted, failed, skipped for capacity): all of them are still in the feed.
    Safety: nothing is deleted after a file-level error, with more than 10% `invalid` entries, or when the
    deletes would remove more than half of the feed's indicators, unless `force`; the reason says which.
    Only records carrying this feed's mark (and our identity when known) are ever candidates.
    """
    if callable(present_keys):
        present = present_keys
    else:
        keys = {tenant_key(t, v) for t, v in present_keys}
        present = keys.__contains__
    ids = tuple(identities)
    own = [r for r in view.records if owned_by_feed(r, feed, ids)]
    stale = tuple(r.id for r in own if not present(r.key))
    reason: str | None = None
    if stale and not force:
        if file_error:
            reason = "the input had a file-level error"
        elif invalid_ratio > MAX_INVALID_RATIO:
            reason = f"{invalid_ratio:.0%} of the input's entries are invalid (limit {MAX_INVALID_RATIO:.0%})"
        elif len(stale) > len(own) * MAX_DELETE_FRACTION:
            reason = f"deletes would remove {len(stale)} of the feed's {len(own)} indicators (more than half)"
        if reason:
            reason += "; set sync_force=true to delete anyway"
    return SyncPlan(delete_ids=stale, held_back_reason=reason, feed_count=len(own))


def chunks(ids: Sequence[str], size: int = 500) -> list[list[str]]:
    """BatchDelete takes at most 500 ids a call (defender-api.md §2, §5)."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


# --------------------------------------------------------------------------------------------- expiry helpers


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
