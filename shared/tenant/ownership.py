"""Ownership and feed sync: the app's mark in `externalId`, which records are ours or a feed's, and
what a feed sync may delete (with its safety rules).

Pure: standard library only, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from shared.tenant.records import TenantRecord, TenantView, tenant_key

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
    made_now: Container[str] = (),
) -> SyncPlan:
    """Which of the feed's own indicators are stale, and whether deleting them is safe (issue 6, "Feed sync").

    `present_keys`: (type, value) of every entry of the new input meant for the tenant, whatever happened
    to it (unchanged, submitted, failed, skipped for capacity): all of them are still in the feed.
    Safety: nothing is deleted after a file-level error, with more than 10% `invalid` entries, or when the
    deletes would remove more than half of the feed's indicators, unless `force`; the reason says which.
    Only records carrying this feed's mark (and our identity when known) are ever candidates. `made_now`: ids
    this run created (the view followed its imports); they are in the feed and not counted as "before".
    """
    if callable(present_keys):
        present = present_keys
    else:
        keys = {tenant_key(t, v) for t, v in present_keys}
        present = keys.__contains__
    ids = tuple(identities)
    own = [r for r in view.records if r.id not in made_now and owned_by_feed(r, feed, ids)]
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
