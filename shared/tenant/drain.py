"""One view of the tenant for the jobs of one turn of the tenant lock (a drain of coalesced HTTP jobs, or a
single job): CONTRACT.md "Settings" [coalesce], [mirror].

Pure: no I/O (the mirror's "changing" mark is a callback the caller gives). The view comes from the tenant
mirror or a List made at the start of the turn (`tenant.mirrored`); every job of the turn decides against
it, and it follows every import result and delete, so later jobs — and the mirror written at the end of the
turn — see what earlier ones did without listing again. Capacity goes to the jobs in arrival order: each
takes what the earlier ones left (`room_left`, then `took`), less the margin an older view keeps for what
analysts may have added since it was listed (`capacity.analyst_margin`).

Drift signals (the mirror disagrees with Defender; the next turn lists before it decides anything):
- an import returns, for a value the view holds with the same action, another id than the view's (or an id
  the view holds for another value);
- a delete finds an indicator gone (404);
- Defender answers that the tenant's cap is reached while the view counts fewer than the cap;
- an import call failed without an answer (its indicators may or may not be stored).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from shared.core.errors import AccessDenied, IdentityUnavailable
from shared.core.model import Outcome, Status
from shared.tenant.capacity import analyst_margin, room_left
from shared.tenant.records import TenantRecord, TenantView, tenant_key

log = logging.getLogger(__name__)

# How Defender words "the tenant's cap is reached" is not documented (defender-api.md §2, UNCONFIRMED): a reason
# naming a limit, quota, cap or maximum together with reaching or exceeding it is read as that answer.
_CAP_WORDS = re.compile(
    r"\b(limit|quota|cap|maximum)\b.*\b(reach|exceed)|\b(reach|exceed)\w*\b.*\b(limit|quota|cap|maximum)\b",
    re.IGNORECASE,
)


def reports_cap(reason: str | None) -> bool:
    """Does a failure reason say that the tenant's indicator cap is reached?"""
    return bool(reason) and bool(_CAP_WORDS.search(str(reason)))


def import_drift(view: TenantView, outcome: Outcome) -> str | None:
    """A submitted outcome whose id the view cannot explain: the mirror missed a change made behind it.

    The view holds the value with the same action under other ids (someone deleted and made it again, or
    changed it behind the mirror), or holds the returned id for another value. A new value, or a value held
    only with other actions (a replacement), may come back with any id the view does not know.
    """
    ind = outcome.indicator
    if outcome.status is not Status.submitted or not outcome.id or ind is None:
        return None
    key = tenant_key(ind.indicatorType.value, ind.indicatorValue)
    known = view.by_id(outcome.id)
    if known is not None and known.key != key:
        value = ind.indicatorValue
        return f"Defender returned indicator {outcome.id} for {value}, which the mirror holds for {known.value}"
    same = [r for r in view.get(*key) if r.action == ind.action.value]
    if same and all(r.id != outcome.id for r in same):
        held = ", ".join(r.id for r in same)
        return f"Defender returned indicator {outcome.id} for {ind.indicatorValue}, which the mirror holds as {held}"
    return None


class DrainTenant:
    """The view and the room shared by the jobs of one turn, and what the mirror must hear of them.

    `listed_at`: when the List this view descends from started (None: just now, no margin); `refreshed`: that
    List was made in this turn (`refresh_reason` says why). `clock`: the real UTC clock unless a test gives one.
    `on_change`: called once, before the first import or delete of the turn (the mirror's "changing" mark, so a
    turn that dies before writing the mirror makes the next one list).
    """

    def __init__(
        self,
        view: TenantView,
        *,
        max_tenant_indicators: int,
        capacity_reserve: int,
        listed_at: datetime | None = None,
        refreshed: bool = True,
        refresh_reason: str | None = None,
        clock: Callable[[], datetime] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.view = view
        self.max_tenant_indicators = max_tenant_indicators
        self.capacity_reserve = capacity_reserve
        self.listed_at = listed_at
        self.refreshed = refreshed
        self.refresh_reason = refresh_reason
        self._clock = clock or (lambda: datetime.now(UTC))
        self._on_change = on_change
        self._room = room_left(max_tenant_indicators, capacity_reserve, view.active_count)
        self._lock = threading.RLock()
        self._change_lock = threading.Lock()
        self.changing = False  # an import or delete was (about to be) sent in this turn
        self.changed = False  # the view followed an import or a delete
        self.drift: list[str] = []  # drift signals of this turn: the next one lists first
        self.identity_checked = False  # the steward's check of who made the marked records, once per listing
        self.list_calls = 0  # List calls made to build the view (the first job of the turn reports them)

    def claim_list_calls(self) -> int:
        """The List calls the view cost, once: for the report of the first job that takes the view."""
        with self._lock:
            n, self.list_calls = self.list_calls, 0
            return n

    # ------------------------------------------------------------------------------------------ capacity

    def age_seconds(self) -> float:
        """Seconds since the List this view descends from (0 for one made just now)."""
        if self.listed_at is None:
            return 0.0
        return max(0.0, (self._clock() - self.listed_at).total_seconds())

    def margin(self) -> int:
        """Room kept free for what analysts may have added since an earlier turn listed the view
        (`capacity.analyst_margin`); none for a List made at the start of this turn."""
        return 0 if self.refreshed else analyst_margin(self.age_seconds())

    def room_left(self) -> int:
        with self._lock:
            return max(0, self._room - self.margin())

    def took(self, admitted: int) -> None:
        """A job was given room for `admitted` new indicators."""
        with self._lock:
            self._room = max(0, self._room - admitted)

    # ------------------------------------------------------------------------------------------ following

    def before_change(self) -> None:
        """Called before every import or delete call: the first one tells the mirror (`on_change`)."""
        with self._change_lock:
            if self.changing:
                return
            self.changing = True
            if self._on_change is not None:
                self._on_change()

    def imported(self, outcomes: Sequence[Outcome], created_by: str | None) -> None:
        """Follow an import's results: what Defender took is in the tenant now; what it refused for its cap, or
        an id the view cannot explain, is a drift signal."""
        with self._lock:
            for o in outcomes:
                if o.status is Status.submitted and o.id and o.indicator is not None:
                    why = import_drift(self.view, o)
                    if why:
                        self.signal(why)
                    known = self.view.by_id(o.id)
                    # An id the view knows keeps its owner: Defender's upsert may have updated someone else's
                    # record in place. A new id is taken as the app's own, to be confirmed by a List before
                    # the app ever deletes it (`TenantView.owner_inferred`).
                    owner = known.createdBy if known is not None else created_by
                    wire = {**o.indicator.to_wire(), "id": o.id, "createdBy": owner}
                    inferred = known is None or o.id in self.view.owner_inferred
                    self.view.add(TenantRecord.from_wire(wire), owner_inferred=inferred)
                    self.changed = True
                elif o.status is Status.failed and reports_cap(o.reason):
                    if self.view.active_count < self.max_tenant_indicators:
                        self.signal(
                            f"Defender answered that the tenant's cap is reached while the mirror counts"
                            f" {self.view.active_count} of {self.max_tenant_indicators}"
                        )
                    self._room = 0  # no later job of this turn plans room Defender says is not there

    def import_failed(self, error: BaseException) -> None:
        """An import call ended without an answer for all its indicators: some may be stored, unseen. Not so
        when nothing was sent (no token) or Defender refused the caller (403)."""
        if isinstance(error, AccessDenied | IdentityUnavailable):
            return
        self.signal(f"an import call ended without a full answer ({type(error).__name__}): what it stored is unknown")

    def deleted(self, ids: Iterable[str]) -> None:
        with self._lock:
            if self.view.remove(ids):
                self.changed = True

    def found_gone(self, ids: Iterable[str]) -> None:
        """A delete found these ids gone (404): deleted or expired behind the mirror."""
        gone = list(ids)
        with self._lock:
            if self.view.remove(gone):
                self.changed = True
        if gone:
            self.signal(f"a delete found indicator {', '.join(gone[:5])} gone")

    def confirmed(self, record: TenantRecord) -> None:
        """A record as a List shows it now (its owner no longer inferred)."""
        with self._lock:
            self.view.add(record)
            self.changed = True

    def relisted(self, view: TenantView, listed_at: datetime) -> None:
        """A full List made during the turn (feed sync lists before it deletes): the view is that listing now."""
        with self._lock:
            self.view = view
            self.listed_at = listed_at
            self.refreshed = True
            self.changed = True
            self.drift.clear()  # what the signals were about is in the listing

    def signal(self, why: str) -> None:
        with self._lock:
            if why not in self.drift:
                log.info("tenant mirror drift: %s; the next drain lists the tenant first", why)
                self.drift.append(why)

    def report(self) -> dict[str, object]:
        """The report's `tenant` keys about the view: its age, whether this turn listed it, the margin."""
        return {
            "viewAgeSeconds": round(self.age_seconds()),
            "refreshed": self.refreshed,
            "refreshReason": self.refresh_reason if self.refreshed else None,
            "analystMargin": self.margin(),
        }
