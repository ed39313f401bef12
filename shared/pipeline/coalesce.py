"""Coalesced batches (CONTRACT.md "Settings" [coalesce]): the HTTP jobs of one drain share import calls.

Playbooks fire per incident: many requests of a few indicators close together, against a budget of 30 import
calls a minute for the whole tenant. The jobs of a drain run side by side, each its own `process_stream` with
its own report, `value` list and options; their batches go to one `Coalescer`, which sends shared bodies of at
most BATCH_SIZE entries and waits up to COALESCE_WINDOW_SECONDS for a body to fill before sending a partial one.

Decided semantics (the issue's):
- a job's `apiCalls` counts the calls that carried at least one of its entries (`Member.api_calls`);
- an entry identical to one an earlier job of the drain sends (same type and value, same fields) rides on it
  and is `unchanged` with its id;
- entries that would conflict in one body (same type and value, different fields) never share one: arrival
  order decides, the later one goes in a later body and is an update of what the earlier one made;
- the drain's view of the tenant follows every result (`tenant.drain.DrainTenant.imported`).

No I/O of its own: the Defender client is handed in. Threads: one per job of the drain (they mostly wait).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable, IdentityUnavailable
from shared.core.model import Outcome, Status
from shared.core.times import parse_iso_utc
from shared.tenant.drain import DrainTenant

log = logging.getLogger(__name__)

STOP_ERRORS = (AccessDenied, DefenderUnavailable, IdentityUnavailable)
SAME_AS_EARLIER = "identical to an entry of an earlier request sent in the same call"
EXPIRY_SLACK = timedelta(days=1)


@dataclass(eq=False)
class _Entry:
    member: Member
    outcome: Outcome
    key: tuple[str, str]
    fields: tuple[tuple[str, object], ...]  # the wire fields but the expiry
    expiry: datetime | None
    result: Outcome | None = None
    riders: list[_Entry] = field(default_factory=list)


class Coalescer:
    """Shared import bodies for the jobs of one drain (see the module docstring)."""

    def __init__(
        self,
        client: Submitting,
        *,
        batch_size: int,
        window_seconds: float,
        drain: DrainTenant,
        created_by: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._batch_size = batch_size
        self._window = window_seconds
        self._drain = drain
        self._created_by = created_by
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: list[_Entry] = []
        self._first_at: float | None = None
        self._sending = False
        self._members: list[Member] = []
        self._stop: DefenderError | None = None
        self.calls = 0

    def member(self) -> Member:
        with self._cond:
            m = Member(self)
            self._members.append(m)
            return m

    # ------------------------------------------------------------------------------------ members' side

    def _submit(self, member: Member, batch: Sequence[Outcome]) -> list[Outcome]:
        entries = [_entry(member, o) for o in batch]
        with self._cond:
            if self._stop is not None:
                raise self._stop
            self._pending.extend(entries)
            if self._first_at is None:
                self._first_at = self._clock()
            member.waiting = True
            self._cond.notify_all()
            try:
                while any(e.result is None for e in entries):
                    if self._stop is not None and any(e.result is None for e in entries):
                        error = self._stop
                        error.partial = _settled_prefix(entries)
                        raise error
                    if not self._sending and self._due():
                        self._send_one()
                        continue
                    self._cond.wait(timeout=self._wait_left())
            finally:
                member.waiting = False
        return [e.result for e in entries if e.result is not None]

    def _finished(self, member: Member) -> None:
        with self._cond:
            member.done = True
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------ sending

    def _due(self) -> bool:
        """A body is sent when it is full, or when its first entry waited the window."""
        if not self._pending:
            return False
        if len({e.key for e in self._pending}) >= self._batch_size:
            return True
        # A partial body waits the window: jobs still arriving (a drain takes them as they come) may fill it.
        return self._first_at is not None and self._clock() - self._first_at >= self._window

    def _wait_left(self) -> float:
        if self._first_at is None:
            return self._window
        return max(0.01, self._window - (self._clock() - self._first_at))

    def _take_body(self) -> list[_Entry]:
        """At most BATCH_SIZE distinct entries in arrival order; an identical later entry rides on the first,
        a conflicting one waits for a later body."""
        body: list[_Entry] = []
        by_key: dict[tuple[str, str], _Entry] = {}
        rest: list[_Entry] = []
        for e in self._pending:
            first = by_key.get(e.key)
            if first is not None:
                if first.member is not e.member and _identical(first, e):
                    first.riders.append(e)
                else:
                    rest.append(e)  # conflicting fields (or the same job twice): a later body
                continue
            if len(body) >= self._batch_size:
                rest.append(e)
                continue
            body.append(e)
            by_key[e.key] = e
        self._pending = rest
        self._first_at = self._clock() if rest else None
        return body

    def _send_one(self) -> None:
        """Send one body (called holding the condition; the call itself runs without it)."""
        body = self._take_body()
        if not body:
            return
        self._sending = True
        self._cond.release()
        try:
            results, error, retries = self._call(body)
        finally:
            self._cond.acquire()
            self._sending = False
        self.calls += 1
        for m in {e.member for e in body}:
            m.api_calls += 1
            m.retries += retries
        self._settle_body(body, results, error)
        jobs = len({entry.member for entry in body})
        log.info("shared import call %d: %d entries of %d requests", self.calls, len(body), jobs)
        self._cond.notify_all()

    def _call(self, body: list[_Entry]) -> tuple[list[Outcome | None], DefenderError | None, int]:
        """One import call for `body` (without the condition): (results, the error if it failed, retries);
        what Defender took is told to the drain's tenant view at once."""
        retries0 = self._client.retries
        results: list[Outcome | None]
        error: DefenderError | None = None
        self._drain.before_change()  # the tenant mirror hears of the turn's first change before it is made
        try:
            results = list(self._client.submit([e.outcome for e in body]))
        except DefenderError as failure:
            results, error = _settled(body, failure.partial), failure
        except BaseException as failure:
            self._drain.import_failed(failure)
            raise
        if error is None or error.partial:
            self._drain.imported([r for r in results if r is not None], self._created_by)
        if error is not None:
            self._drain.import_failed(error)
        return results, error, self._client.retries - retries0

    def _settle_body(self, body: list[_Entry], results: list[Outcome | None], error: DefenderError | None) -> None:
        for entry, r in zip(body, results, strict=False):
            if r is not None:
                _settle(entry, r)
        if isinstance(error, STOP_ERRORS):
            self._stop = error  # no further call can succeed: every job of the drain stops (and is retried later)
        elif error is not None:  # this body failed for good: its entries are `failed`, the drain goes on
            for entry in body:
                if entry.result is None:
                    _settle(entry, entry.outcome.final(Status.failed, error.message, code=error.outcome_code))


class Submitting(Protocol):
    """What the coalescer needs of the client (`pipeline.job.DefenderLike` has it)."""

    @property
    def retries(self) -> int: ...

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]: ...


class Member:
    """One job's side of the coalescer: a `Submitter` for its `process_stream`, with its own call counters."""

    def __init__(self, coalescer: Coalescer) -> None:
        self._coalescer = coalescer
        self.api_calls = 0
        self.retries = 0
        self.waiting = False
        self.done = False

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        return self._coalescer._submit(self, batch)

    def finished(self) -> None:
        """This job will submit nothing more."""
        self._coalescer._finished(self)


def _entry(member: Member, o: Outcome) -> _Entry:
    ind = o.indicator
    if ind is None:
        raise ValueError(f"line {o.line}: only pending outcomes with an indicator can be submitted")
    wire = ind.to_wire()
    expiry = parse_iso_utc(str(wire.pop("expirationTime"))) if wire.get("expirationTime") else None
    fields = tuple(sorted(((k, repr(v)) for k, v in wire.items()), key=str))
    return _Entry(member, o, (ind.indicatorType.value, ind.indicatorValue), fields, expiry)


def _identical(a: _Entry, b: _Entry) -> bool:
    """The same fields; expiries a defaulted window apart by the seconds between two requests count as the
    same (the steward compares a defaulted expiry with the same slack, `tenant.delta.looks_defaulted`)."""
    if a.fields != b.fields:
        return False
    if a.expiry is None or b.expiry is None:
        return a.expiry is b.expiry
    return abs(a.expiry - b.expiry) <= EXPIRY_SLACK


def _settle(e: _Entry, result: Outcome) -> None:
    e.result = result
    for rider in e.riders:
        if result.status is Status.submitted and result.id:
            rider.result = rider.outcome.final(Status.unchanged, SAME_AS_EARLIER, id=result.id, code="unchanged")
        else:
            rider.result = replace(result, line=rider.outcome.line, indicator=rider.outcome.indicator,
                                   notes=rider.outcome.notes)  # fmt: skip


def _settled(body: list[_Entry], partial: Sequence[object]) -> list[Outcome | None]:
    """The results a bisection settled before an error (the client's `partial`), aligned to the body."""
    done = [p for p in partial if isinstance(p, Outcome)]
    return [*done[: len(body)], *([None] * max(0, len(body) - len(done)))]


def _settled_prefix(entries: list[_Entry]) -> list[Outcome]:
    out = []
    for e in entries:
        if e.result is None:
            break
        out.append(e.result)
    return out
