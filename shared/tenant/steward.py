"""The tenant's steward: reads what Defender holds, applies the decisions of `shared/tenant/`, deletes.

Adapter: talks to Defender only through the client it is given (anything with `list_indicators`,
`batch_delete`, `delete` and the `list_calls`/`delete_calls` counters, see `TenantClient`); it never
imports `requests` or `azure.*` itself. Runs under the tenant lock (CONTRACT.md "Defender calls"), so
its count of the tenant is not raced by another import of this app.

How the orchestrator drives it, per input (issue 6):

    steward = Steward(client, settings)
    prepare(steward, entries_at_most=n_or_None, second_pass=...)  # List + ranking pass only if it may not fit
    process_stream(..., steward=steward, now=same_now)       # calls, per input:
        steward.review(o)                    # classify + admit, every outcome with status None
        steward.after_submit(batch_results)  # replace/update: delete superseded ids (ours only) not reused
        steward.finish(summary, file_error=...); steward.apply_counters(summary); steward.report_extra()

Dry run (DRY_RUN or the input's `dry_run`): every decision is taken and reported; nothing is deleted.

Ownership (`ownership.owned_by_app`): every indicator this app imports carries its mark in `externalId`; only
records with that mark (and, when known, our identity in `createdBy`) are ever deleted — by feed sync or
by an action change. Someone else's record with another action is a conflict: left in place, reported.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.core.batching import batches
from shared.core.errors import DefenderError, NotFoundError
from shared.core.model import Indicator, Outcome, Status, Summary
from shared.core.options import NO_OPTIONS, InputOptions, row_defaults
from shared.core.settings import Settings
from shared.tenant import capacity, delta, ownership, records
from shared.tenant.capacity import Priority, Threshold
from shared.tenant.delta import Decision, Kind
from shared.tenant.drain import DrainTenant
from shared.tenant.records import MAX_FILTER_VALUES, TenantRecord, TenantView, value_filter

log = logging.getLogger(__name__)

CAPACITY_REASON = "tenant capacity"
# Validation computes a defaulted expiry as "now + window"; an expiry this close to that is taken as
# defaulted (delta.looks_defaulted). A day also covers validation rounding to whole days.
DEFAULTED_EXPIRY_TOLERANCE = timedelta(days=1)
MAX_DELETE_ATTEMPTS = 3  # BatchDelete 404 recovery rounds (each re-lists the tenant)
BATCH_DELETE_MAX_IDS = 500  # BatchDelete takes at most 500 ids a call (defender-api.md §2, §5)


class TenantClient(Protocol):
    """What the steward needs from `shared.defender` (its client is one of these)."""

    @property
    def list_calls(self) -> int: ...

    @property
    def delete_calls(self) -> int: ...

    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Iterator[dict[str, Any]]: ...

    def batch_delete(self, ids: Sequence[str]) -> Any: ...

    def delete(self, id: str) -> Any: ...


class Steward:
    """Quota stewardship for one input: delta against the tenant, capacity, action replacement, feed sync.

    `now`: a fixed clock for tests; None reads the real UTC clock at each decision (validation stamps
    defaulted expiries with the real clock too). `identities`: the app's own `createdBy` values (the
    `appid`/`oid`/`azp` claims of its token, `DefenderClient.identity_ids`); when given, ownership (feed sync
    and replacement) also requires them (the mark alone is used otherwise, see `ownership.owned_by_app`). `priority`:
    capacity order, a `Priority` or its text form (`severity,action,expiry`).
    Constructors do no I/O (STYLE.md "Configuration"): `load()` does.
    """

    def __init__(
        self,
        client: TenantClient,
        settings: Settings,
        *,
        options: InputOptions = NO_OPTIONS,
        now: datetime | None = None,
        identities: Iterable[str] = (),
        priority: Priority | str | None = None,
        drain: DrainTenant | Callable[[], DrainTenant] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.options = options
        self._expiry_days = row_defaults(settings, options).expiration_days_for
        self._fixed_now = now
        self.identities = tuple(i for i in identities if i)
        if isinstance(priority, Priority):
            self.priority = priority
        else:
            self.priority = Priority.parse(priority or settings.capacity_priority)
        self.dry_run = options.dry_run_under(settings)
        self.feed = options.feed or None
        self.view: TenantView | None = None
        self.room = 0
        # The view and the room shared by the jobs of one turn of the tenant lock (a drain, or a job alone in its
        # turn, read from the tenant mirror), or what gives it on `load()` (it may list: the List counts for this
        # input); None: `load()` lists the tenant for this input alone.
        self._drain_source = drain if callable(drain) else None
        self.drain: DrainTenant | None = None if callable(drain) else drain
        self._count_before = 0
        self._loaded = False
        self._view_list_calls = 0  # the List the turn made for its view, when this job is the first to take it
        self._ids_before: set[str] = set()
        self._view_report: dict[str, object] = {}
        self._list_calls0 = getattr(client, "list_calls", 0)
        self._delete_calls0 = getattr(client, "delete_calls", 0)
        self._rank_counts: Counter[capacity.PriorityKey] = Counter()
        self._ranked = False
        self._admitter: capacity.Admitter | None = None
        self._pending: dict[tuple[str, str], Decision] = {}  # update/replace awaiting their import result
        self._present: set[tuple[str, str]] = set()  # keys of this input meant for the tenant (feed sync)
        self._decisions: Counter[str] = Counter()
        self._added_ids: set[str] = set()
        self._replaced = 0
        self._in_place = 0
        self._conflicts_left = 0  # foreign records with another action left in place
        self._foreign_in_place = 0  # foreign records Defender's upsert rewrote in place (key type+value)
        self._deleted = 0
        self._delete_errors: list[str] = []
        self._would_delete = 0
        self._sync: ownership.SyncPlan | None = None
        self._last: tuple[tuple[str, str], Decision] | None = None  # classify → admit hand-over

    # ------------------------------------------------------------------------------------------ reading

    def now(self) -> datetime:
        return self._fixed_now or datetime.now(UTC)

    def load(self) -> TenantView:
        """Take the turn's view (the tenant mirror, or the List made at the start of the turn) and the room its
        earlier jobs left; without one, read every indicator of the tenant (List, paged by the client, §5)."""
        if self.drain is None and self._drain_source is not None:
            self.drain = self._drain_source()
            self.drain.claim_list_calls()  # made since this steward was built: counted in `list_calls` already
        elif self.drain is not None and not self._loaded:
            self._view_list_calls = self.drain.claim_list_calls()  # the turn's List, made before this job began
        self._loaded = True
        if self.drain is None:
            listed_at = self.now()
            view = TenantView(self.client.list_indicators(), now=listed_at)
            self.drain = DrainTenant(
                view,
                max_tenant_indicators=self.settings.max_tenant_indicators,
                capacity_reserve=self.settings.capacity_reserve,
                refresh_reason="listed for this input",
            )
            log.info("tenant holds %d active indicators; room for %d new", view.active_count, self.drain.room_left())
        if self.drain.refreshed and not self.drain.identity_checked:
            self.drain.identity_checked = True  # once per listing, not once per job of a drain
            self._check_identity(self.drain.view)
        self.view = self.drain.view
        self.room = self.drain.room_left()
        self._count_before = self.view.active_count
        self._ids_before = set(self.view.ids)
        self._view_report = self.drain.report()
        return self.view

    def _check_identity(self, view: TenantView) -> None:
        """Warn when records carry our mark but none was created by our identity.

        That is what it looks like when Defender writes into `createdBy` something other than the token's
        `appid`/`oid`/`azp` (unconfirmed for the real service, defender-api.md §5): ownership then never
        holds, so nothing is deleted (safe), but feed sync and replacement silently stop working.
        """
        if not self.identities:
            return
        marked = [r for r in view.records if ownership.looks_like_mark(r.externalId)]
        if marked and not any(ownership.owned_by_app(r, self.identities) for r in marked):
            seen = sorted({str(r.createdBy) for r in marked})[:5]
            log.warning(
                "%d indicators carry this app's mark but none was created by its identity %s (createdBy seen: %s);"
                " none of them will be treated as the app's own",
                len(marked),
                ", ".join(self.identities),
                ", ".join(seen),
            )

    def _view(self) -> TenantView:
        return self.view if self.view is not None else self.load()

    @property
    def list_calls(self) -> int:
        return getattr(self.client, "list_calls", 0) - self._list_calls0 + self._view_list_calls

    @property
    def delete_calls(self) -> int:
        return getattr(self.client, "delete_calls", 0) - self._delete_calls0

    # ------------------------------------------------------------------------------------------ decisions

    def decide(self, outcome: Outcome) -> Decision:
        """The quota decision for one pending outcome (pure given the loaded view and the clock)."""
        ind = outcome.indicator
        if ind is None:
            raise ValueError(f"line {outcome.line}: only pending outcomes with an indicator can be classified")
        now = self.now()
        window = self._expiry_days(ind.indicatorType)
        defaulted = delta.looks_defaulted(
            ind.expirationTime, now=now, window_days=window, tolerance=DEFAULTED_EXPIRY_TOLERANCE
        )
        return delta.compare(
            ind,
            self._view().for_indicator(ind),
            now=now,
            expiry_window_days=window,
            explicit_expiry=not defaulted,
            identities=self.identities,
        )

    def fits(self, max_new: int) -> bool:
        """True when `max_new` new indicators (an upper bound, e.g. the input's entry count) fit the room,
        so no ranking pass is needed."""
        self._view()
        return max_new <= self.room

    def rank(self, outcome: object) -> None:
        """First pass: count the priority bucket of every `new` pending outcome (bounded memory).

        Anything else validation yields (decided outcomes, `Ignored`, `FileProblem`) is passed over, so the
        caller can feed it the validated stream as is. Both passes must validate with the same `now`.
        """
        if not isinstance(outcome, Outcome) or outcome.status is not None or outcome.indicator is None:
            return
        if self.decide(outcome).adds:
            self._rank_counts[self.priority.key(outcome.indicator)] += 1
        self._ranked = True

    def plan(self) -> Threshold:
        """Close the first pass: which new indicators get the room. Without a first pass: input order."""
        self._view()
        if self._ranked:
            threshold = capacity.admit_plan_counts(self._rank_counts, self.room)
        else:
            threshold = Threshold(limit=self.room)
        self._admitter = capacity.Admitter(threshold)
        self._rank_counts = Counter()
        return threshold

    def classify(self, outcome: Outcome) -> Outcome:
        """Pending → `unchanged` (existing id) or still pending with a note for update/replace/conflicts.

        Also stamps the app's ownership mark (`ownership.app_mark`) on what will be sent. With a feed the mark
        always wins over the row's own `externalId` (the report says so). Without a feed a row's own
        `externalId` is kept, and the record it makes is then not the app's own (never deleted by it later),
        unless it only imitates our mark: that is replaced, so a row cannot make a record look like a feed's.
        """
        if outcome.status is not None or outcome.indicator is None:
            return outcome
        ind = outcome.indicator
        d = self.decide(outcome)
        key = records.tenant_key(ind.indicatorType.value, ind.indicatorValue)
        if self.options.sync and self.feed:
            self._present.add(key)  # grows with the input's distinct indicators, only in sync mode
        self._decisions[d.kind.value] += 1
        self._conflicts_left += len(d.conflicts)
        if d.kind is Kind.unchanged:
            return outcome.final(Status.unchanged, d.note(), id=d.existing_id, code="unchanged")
        notes = list(outcome.notes)
        ind = self._marked(ind, notes)
        if d.kind in (Kind.update, Kind.replace) or d.conflicts:
            self._pending[key] = d
            notes.append(d.note() or "")
        # `new` carries the decision too, so admit() does not compute it again.
        self._last = (key, d)
        return replace(outcome, indicator=ind, notes=tuple(n for n in notes if n))

    def _marked(self, ind: Indicator, notes: list[str]) -> Indicator:
        """The indicator with the app's ownership mark as its externalId (see `classify`); notes say why when it
        replaced the row's own."""
        mark = ownership.app_mark(self.feed, ind.indicatorType.value, ind.indicatorValue)
        if self.feed:
            if ind.externalId and ind.externalId != mark:
                notes.append("externalId replaced by the feed's ownership mark")
            return replace(ind, externalId=mark)
        if not ind.externalId:
            return replace(ind, externalId=mark)
        if ind.externalId != mark and ownership.looks_like_mark(ind.externalId):
            notes.append("externalId replaced by the app's ownership mark (the row's imitated it)")
            return replace(ind, externalId=mark)
        return ind

    def admit(self, outcome: Outcome) -> Outcome:
        """Capacity: a pending `new` outcome beyond the room (in priority order) becomes `skipped`."""
        if outcome.status is not None or outcome.indicator is None:
            return outcome
        ind = outcome.indicator
        key = records.tenant_key(ind.indicatorType.value, ind.indicatorValue)
        last = self._last
        d = last[1] if last and last[0] == key else self.decide(outcome)
        if not d.adds:
            return outcome  # updates and replaces do not add to the count
        if self._admitter is None:
            self.plan()
        assert self._admitter is not None
        if self._admitter.admit(self.priority.key(ind)):
            return outcome
        return outcome.final(Status.skipped, CAPACITY_REASON, code="tenant-capacity")

    def review(self, outcome: Outcome) -> Outcome:
        """`classify` then `admit`: the one call the orchestrator makes per pending outcome."""
        return self.admit(self.classify(outcome))

    # ------------------------------------------------------------------------------------------ after import

    def after_submit(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Replace/update follow-up for one submitted batch: delete superseded ids the import did not reuse.

        Import first, delete after, and only ids different from the one returned (defender-api.md §3.2):
        protection never lapses, and an in-place upsert is never undone. Only records this app owns are ever
        superseded (`delta.compare`); a conflicting record of someone else stays, unless Defender's upsert
        (keyed on type+value) rewrote it in place — which the reason then says. Returns the outcomes with
        their reasons telling what happened.
        """
        follow = self._follow_ups(outcomes)
        to_delete = [i for _, ids in follow.values() for i in ids]
        kept: dict[str, str] = {}  # id -> who made it, when a List showed it is not the app's after all
        gone: set[str] = set()
        if to_delete and not self.dry_run:
            kept = self._confirm_owned([i for i in to_delete if i in self._view().owner_inferred])
            gone = self._delete([i for i in to_delete if i not in kept])
        out: list[Outcome] = []
        for i, o in enumerate(outcomes):
            if i in follow:
                d, ids = follow[i]
                o = self._followed_up(o, d, ids, _FollowUp(gone=gone, kept=kept))
            out.append(o)
        return out

    def _follow_ups(self, outcomes: Sequence[Outcome]) -> dict[int, tuple[Decision, list[str]]]:
        """Position → (its update/replace decision, the ids to delete) for each entry submitted with one."""
        follow: dict[int, tuple[Decision, list[str]]] = {}
        for i, o in enumerate(outcomes):
            if o.status is Status.submitted and o.id and o.id not in self._ids_before:
                self._added_ids.add(o.id)
            ind = o.indicator
            d = (
                self._pending.pop(records.tenant_key(ind.indicatorType.value, ind.indicatorValue), None)
                if ind
                else None
            )
            if d is None or o.status is not Status.submitted:
                continue
            ids = delta.superseded_to_delete(d, o.id)
            if d.kind is Kind.replace:
                self._replaced += 1
            if (d.supersedes and not ids) or (d.kind is Kind.update and not d.supersedes and o.id == d.existing_id):
                self._in_place += 1
            follow[i] = (d, ids)
        return follow

    def _followed_up(self, o: Outcome, d: Decision, ids: list[str], done: _FollowUp) -> Outcome:
        """The submitted entry with its reason built again from its parts: its notes (the decision's note as it
        now reads) and what became of the superseded records. A submitted entry's reason is its notes
        (`Outcome.final` given only the id), so nothing else is lost."""
        notes = o.notes
        rewritten = sum(1 for c in d.conflicts if c.id == o.id)
        if rewritten:
            # Defender keyed the upsert on type+value: it rewrote the other identity's record.
            self._conflicts_left -= rewritten
            self._foreign_in_place += rewritten
            noted, renoted = d.note(), d.note(rewritten=o.id)
            notes = tuple((renoted or "") if n == noted else n for n in notes)
        parts = (*notes, *_follow_up_messages(o, d, ids, done))
        return replace(o, notes=tuple(n for n in notes if n), reason="; ".join(p for p in parts if p) or None)

    def finish(self, summary: Summary, *, file_error: bool) -> ownership.SyncPlan | None:
        """Feed sync at the end of the input: delete this feed's own stale indicators when it is safe."""
        if not (self.options.sync and self.feed):
            return None
        ratio = summary.invalid / summary.total if summary.total else 0.0

        def plan_on(view: TenantView) -> ownership.SyncPlan:
            assert self.feed is not None
            return ownership.sync_plan(
                self.feed,
                view,
                self._present.__contains__,
                invalid_ratio=ratio,
                file_error=file_error,
                force=self.options.sync_force,
                identities=self.identities,
                made_now=self._added_ids,
            )

        plan = plan_on(self._view())
        if plan.delete_ids:
            # Never delete on a stale view (CONTRACT.md [mirror]): what the turn's view calls stale is checked
            # against a full List made now, and only what that listing and the input (the feed's whole state)
            # agree on is deleted, under the same safety rules.
            plan = self._relisted_plan(plan, plan_on)
        self._sync = plan
        if plan.held_back_reason:
            log.warning("feed %s: %d deletes held back: %s", self.feed, len(plan.delete_ids), plan.held_back_reason)
        elif plan.delete_ids:
            if self.dry_run:
                self._would_delete += len(plan.delete_ids)
            else:
                self._delete(list(plan.delete_ids))
        return plan

    def _relisted_plan(
        self, plan: ownership.SyncPlan, plan_on: Callable[[TenantView], ownership.SyncPlan]
    ) -> ownership.SyncPlan:
        listed_at = self.now()
        try:
            fresh = TenantView(self.client.list_indicators(), now=listed_at)
        except DefenderError as e:
            why = f"the tenant could not be listed afresh before deleting: {e.message}"
            log.warning("feed %s: %d deletes held back: %s", self.feed, len(plan.delete_ids), why)
            return replace(plan, held_back_reason=why)
        assert self.drain is not None
        self.drain.relisted(fresh, listed_at)
        self.view = fresh
        return plan_on(fresh)

    # ------------------------------------------------------------------------------------------ deletes

    def _confirm_owned(self, ids: Sequence[str]) -> dict[str, str]:
        """Of superseded ids whose owner the view only inferred (`TenantView.owner_inferred`), those a List shows
        are not the app's: id -> who made them (they stay). An id the List does not show is gone already.

        The view took a new id from an import result as the app's own; Defender's upsert may instead have updated
        in place a record someone else made behind the mirror. Deleting is the one step that must not rest on a
        guess: the values are looked up first (20 a call), and an id that cannot be looked up stays.
        """
        if not ids:
            return {}
        view = self._view()
        wanted = {i: rec for i in ids if (rec := view.by_id(i)) is not None}
        values = list(dict.fromkeys(r.value for r in wanted.values()))
        listed: dict[str, TenantRecord] = {}
        try:
            for start in range(0, len(values), MAX_FILTER_VALUES):
                chunk = values[start : start + MAX_FILTER_VALUES]
                for item in self.client.list_indicators(value_filter(chunk), page_size=MAX_FILTER_VALUES * 8):
                    rec = TenantRecord.from_wire(item)
                    listed[rec.id] = rec
        except DefenderError as e:
            log.warning("confirming who made %d indicators before deleting them failed: %s", len(wanted), e)
            self._delete_errors.append(f"not deleted: who made {len(wanted)} indicators could not be confirmed: {e}")
            return {i: "an identity the List could not confirm" for i in wanted}
        kept: dict[str, str] = {}
        assert self.drain is not None
        for i in wanted:
            rec = listed.get(i)
            if rec is None:
                self.drain.found_gone([i])
            else:
                self.drain.confirmed(rec)  # the owner as Defender lists it, for the mirror too
                if not ownership.owned_by_app(rec, self.identities):
                    kept[i] = rec.createdBy or "an unknown identity"
                    self._conflicts_left += 1
        return kept

    def _delete(self, ids: Sequence[str]) -> set[str]:
        """Delete ids with BatchDelete (≤ 500 a call); a 404 is recovered by re-listing (§5, §8.10).

        Returns the ids that are gone afterwards (deleted now or already missing). Failures other than a
        404 are recorded for the report and leave the ids in place.
        """
        gone: set[str] = set()
        for chunk in batches(dict.fromkeys(ids), BATCH_DELETE_MAX_IDS):
            gone |= self._delete_chunk(chunk)
        return gone

    def _delete_chunk(self, chunk: list[str]) -> set[str]:
        remaining = list(chunk)
        tenant = self.drain
        for _ in range(MAX_DELETE_ATTEMPTS):
            if not remaining:
                return set(chunk)
            if tenant is not None:
                tenant.before_change()
            try:
                self._delete_now(remaining)
                return set(chunk)
            except NotFoundError:
                # All-or-nothing: one id already gone (expired, deleted by hand) fails the whole call.
                existing = self._existing_ids()
                if tenant is not None:
                    tenant.found_gone([i for i in remaining if i not in existing])
                remaining = [i for i in remaining if i in existing]
            except DefenderError as e:
                self._delete_errors.append(f"deleting {len(remaining)} indicators failed: {e}")
                log.warning("deleting %d indicators failed: %s", len(remaining), e)
                return set(chunk) - set(remaining)
        self._delete_errors.append(f"deleting {len(remaining)} indicators kept failing with 404")
        return set(chunk) - set(remaining)

    def _delete_now(self, ids: list[str]) -> None:
        """One delete call (a single DELETE for one id, BatchDelete for more); the turn's view follows it."""
        tenant = self.drain
        if len(ids) > 1:
            self.client.batch_delete(ids)
            self._deleted += len(ids)
            if tenant is not None:
                tenant.deleted(ids)
        elif self.client.delete(ids[0]) is not False:
            self._deleted += 1
            if tenant is not None:
                tenant.deleted(ids)
        elif tenant is not None:
            tenant.found_gone(ids)  # False: it was already gone (404), which is just as good

    def _existing_ids(self) -> set[str]:
        return {str(item.get("id")) for item in self.client.list_indicators()}

    # ------------------------------------------------------------------------------------------ report

    def report_extra(self) -> dict[str, Any]:
        """The report's `tenant` section: counts before/after, room, decisions, sync and deletes."""
        self._view()
        added = len(self._added_ids)
        after = self._count_before + added - self._deleted
        sync: dict[str, Any] | None = None
        if self.options.sync and self.feed:
            p = self._sync
            sync = {
                "feed": self.feed,
                "force": self.options.sync_force,
                "feedCountBefore": p.feed_count if p else None,
                "stale": len(p.delete_ids) if p else 0,
                "heldBack": p.held_back_reason if p else None,
            }
        admitter = self._admitter
        return {
            "tenant": {
                "countBefore": self._count_before,
                # Computed, not re-listed: before + indicators created now - indicators deleted now.
                "countAfter": after,
                "max": self.settings.max_tenant_indicators,
                "reserve": self.settings.capacity_reserve,
                "roomBefore": self.room,
                "roomLeft": capacity.room_left(
                    self.settings.max_tenant_indicators, self.settings.capacity_reserve, after
                ),
                "capacitySkipped": admitter.refused if admitter else 0,
                "decisions": {k.value: self._decisions.get(k.value, 0) for k in Kind},
                "replaced": self._replaced,
                "updatedInPlace": self._in_place,
                "conflictsLeft": self._conflicts_left,
                "foreignUpdatedInPlace": self._foreign_in_place,
                "deleted": self._deleted,
                "wouldDelete": self._would_delete if self.dry_run else 0,
                "deleteErrors": list(self._delete_errors),
                "sync": sync,
                "dryRun": self.dry_run,
                # How old the view these decisions rest on was, whether this turn listed it (else it is the
                # tenant mirror) and the room kept for what analysts may have added since (CONTRACT.md [mirror]).
                **self._view_report,
            }
        }

    @property
    def admitted(self) -> int:
        """New indicators this input was given room for (the next job of a drain gets what is left)."""
        return self._admitter.admitted if self._admitter is not None else 0

    def apply_counters(self, summary: Summary) -> None:
        """Add this input's List and delete calls to `summary.listCalls` / `deleteCalls`."""
        summary.listCalls += self.list_calls
        summary.deleteCalls += self.delete_calls


def prepare(steward: Steward, *, entries_at_most: int | None, second_pass: Callable[[], Iterable[object]]) -> Threshold:
    """Load the tenant and plan capacity for one input: the entry point's single call before process_stream.

    `entries_at_most`: an upper bound on the input's entries when known (an HTTP body's count), else None.
    When it fits the room no ranking is needed; otherwise `second_pass()` must give the input's validated stream
    again (validated with the same `now` as the real pass) for the ranking pass.
    """
    steward.load()
    if entries_at_most is None or not steward.fits(entries_at_most):
        for item in second_pass():
            steward.rank(item)
    return steward.plan()


@dataclass(frozen=True)
class _FollowUp:
    """What a batch's deletes did: the ids gone afterwards, and those kept because a List named another maker."""

    gone: set[str]
    kept: dict[str, str]


def _follow_up_messages(o: Outcome, d: Decision, ids: list[str], done: _FollowUp) -> list[str]:
    """What became of the records an update or a replacement superseded, for the entry's reason."""
    if d.supersedes:
        return _superseded_messages(ids, done)
    if d.kind is Kind.update and d.existing_id is not None:
        # The same-action record is someone else's: an update, never a delete (delta.compare).
        if o.id == d.existing_id:
            return ["Defender updated it in place (same id)"]
        return [f"indicator {d.existing_id} left in place (not created by this app)"]
    return []


def _superseded_messages(ids: list[str], done: _FollowUp) -> list[str]:
    msgs = [f"indicator {x} left in place (Defender lists it as created by {done.kept[x]})" for x in ids
            if x in done.kept]  # fmt: skip
    mine = [x for x in ids if x not in done.kept]
    if not ids:
        msgs.append("Defender updated it in place (same id)")
    elif mine and all(x in done.gone for x in mine):
        msgs.append(f"old indicator {', '.join(mine)} deleted")
    elif mine:
        msgs.append(f"old indicator {', '.join(x for x in mine if x not in done.gone)} could not be deleted")
    return msgs
