"""A drain: the coalescible HTTP jobs of one tenant run side by side in one turn, sharing import calls and one
view of the tenant (CONTRACT.md "Settings" [coalesce]).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from shared.app.attempt import Attempt
from shared.core import telemetry as tm
from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable
from shared.core.jobs import JobRecord, JobState, now_text
from shared.core.model import Outcome
from shared.pipeline.coalesce import Coalescer, Member
from shared.pipeline.job import (
    Lease,
    LeaseChecked,
    SavedItems,
)
from shared.pipeline.process import Interrupted
from shared.storage.jobs import JobStore, RecordConflict
from shared.tenant.drain import DrainTenant
from shared.tenant.mirrored import TenantMirror

if TYPE_CHECKING:
    from shared.app.worker import Worker

log = logging.getLogger(__name__)


class Drain:
    """The HTTP jobs of one tenant run side by side, sharing import calls and one view of the tenant
    (CONTRACT.md "Settings" [coalesce]; `pipeline/coalesce.py` has the body rules).

    The job whose doorbell rang starts it; the drain takes the tenant's other pending HTTP jobs (oldest first,
    dry runs and feed syncs never), also those arriving while it runs, up to DRAIN_MAX_JOBS jobs or
    DRAIN_MAX_SECONDS. Capacity goes in arrival order: a job decides once the one before it reviewed all its
    entries. Each job keeps its own report, `value` list, options, progress log and retry path.
    """

    SCAN_SECONDS = 0.3

    def __init__(self, worker: Worker, lease: Lease, mirror: TenantMirror, *, traceparent: str | None = None) -> None:
        self.worker = worker
        self.rt = worker.rt
        self.lease = lease
        self.mirror = mirror
        self.traceparent = traceparent  # the invocation's, for each member's job span
        self.client = LeaseChecked(self.rt.defender, lease)
        self.jobs = 0
        self.tenant: DrainTenant
        self.coalescer: Coalescer

    def run(self, first: JobRecord, etag: str, *, last_delivery: bool) -> None:
        opts = self.rt.options
        try:
            self.tenant = self.mirror.open()  # the tenant mirror, or one List when it will not do
        except DefenderError as e:
            # The tenant cannot be read: this job alone goes down its retry path (a stop error) or runs alone.
            run = Attempt(self.worker, first, etag, self.worker._progress(first.id))
            if isinstance(e, AccessDenied | DefenderUnavailable):
                self.worker._retry_or_give_up(run, e, self.lease)
                return
            raise
        settings = self.rt.settings
        ids = self.client.identity_ids()
        self.coalescer = Coalescer(self.client, batch_size=settings.batch_size,
                                   window_seconds=opts.coalesce_window_seconds, drain=self.tenant,
                                   created_by=ids[0] if ids else None)  # fmt: skip
        started = time.monotonic()
        members: dict[str, threading.Thread] = {}
        crash: list[BaseException] = []
        gate = self._start(first.id, (first, etag), None, members, crash, last_delivery=last_delivery)
        while True:
            if not any(t.is_alive() for t in members.values()):
                break
            time.sleep(self.SCAN_SECONDS)
            if len(members) < opts.drain_max_jobs and time.monotonic() - started < opts.drain_max_seconds:
                for job_id in self._more(first.tenant, members, opts.drain_max_jobs - len(members)):
                    gate = self._start(job_id, None, gate, members, None, last_delivery=False)
        log.info("drain of %d jobs: %d shared import calls", len(members), self.coalescer.calls)
        if crash:
            raise crash[0]

    def _more(self, tenant: str, members: dict[str, threading.Thread], room: int) -> list[str]:
        """Ids of pending HTTP jobs not in the drain yet (each marks itself running in its own thread)."""
        ids = self.worker.store.pending_coalescible(tenant, now_text=now_text(self.worker.now()))
        return [i for i in ids if i not in members][:room]

    def _claim(self, job_id: str) -> tuple[JobRecord, str] | None:
        """The record of a job joining the drain, marked running; None when it changed meanwhile."""
        found = self.worker.store.get(job_id)
        if found is None or found[0].final or found[0].state is JobState.running:
            return None
        record, record_etag = found
        record.state = JobState.running
        record.attempt += 1
        record.next_attempt_at = None
        record.heartbeat_at = now_text(self.worker.now())
        try:
            return record, self.worker.store.update(record, record_etag)
        except RecordConflict:
            return None

    def _start(self, job_id: str, claimed: tuple[JobRecord, str] | None, gate: threading.Event | None,
               members: dict[str, threading.Thread], crash: list[BaseException] | None,
               *, last_delivery: bool) -> threading.Event:  # fmt: skip
        reviewed = threading.Event()
        member = self.coalescer.member()
        self.jobs += 1
        shared = Shared(DrainShared(self.tenant, self.coalescer, self), MemberClient(member, self.client), reviewed)
        thread = threading.Thread(target=self._member, name=f"drain-{job_id[:8]}", daemon=True,
                                  args=(job_id, claimed, gate, shared, member, crash, last_delivery))  # fmt: skip
        members[job_id] = thread
        thread.start()
        return reviewed

    def _member(self, job_id: str, claimed: tuple[JobRecord, str] | None, gate: threading.Event | None,
                shared: Shared, member: Member, crash: list[BaseException] | None,
                last_delivery: bool) -> None:  # fmt: skip
        span = tm.JobSpan()  # each member its own job span, a child of the invocation that started the drain
        with ExitStack() as stack:
            try:
                claimed = claimed or self._claim(job_id)
                if claimed is None:
                    return  # taken or finished meanwhile: nothing of ours
                record, etag = claimed
                opened = tm.current().job(job_id=record.id, kind=record.kind, tenant=record.tenant,
                                          attempt=record.attempt, traceparent=self.traceparent)  # fmt: skip
                span = stack.enter_context(opened)
                run = Attempt(self.worker, record, etag, self.worker._progress(record.id), shared=shared)
                run.span = span
                run.shared_rows = _load_rows(self.worker.store, record)  # its I/O before its turn: short turns
                if gate is not None:
                    gate.wait()  # capacity in arrival order: the job before has decided every entry
                try:
                    result = run.go(self.lease)
                except Interrupted as e:
                    shared.reviewed_event.set()
                    member.finished()
                    run.flush_progress()
                    self.worker._retry_or_give_up(run, e.error, self.lease)
                    return
                self.worker._finish(run, result)
            except Exception as e:
                log.exception("job %s failed in a drain", job_id)
                if crash is not None and claimed is not None:  # the job whose doorbell rang: the host retries it
                    if last_delivery:  # (and poisons it after this delivery: make it final first)
                        final = Attempt(self.worker, claimed[0], claimed[1], [])
                        final.span = span
                        self.worker._give_up(final, DefenderUnavailable(
                            f"the import failed unexpectedly ({type(e).__name__}) on every delivery; see the logs"),
                            self.lease, outcome=tm.POISONED)  # fmt: skip
                    else:
                        tm.current().job_outcome(tm.RETRIED, kind=claimed[0].kind, status=None)
                        span.ended(tm.RETRIED, error=type(e).__name__)
                    crash.append(e)
            finally:
                shared.reviewed_event.set()
                member.finished()


def _load_rows(store: JobStore, record: JobRecord) -> SavedItems:
    """An HTTP job's saved rows in memory (at most MAX_HTTP_INDICATORS rows, MAX_HTTP_BODY_BYTES of body)."""
    saved = SavedItems(format=str(record.input.get("format") or "unknown"))
    for item in store.rows(str(record.input["rows"])):
        saved.add(item)
    return saved


class DrainShared:
    """What the jobs of one drain share: the tenant view and room, the coalescer, the drain itself."""

    def __init__(self, tenant: DrainTenant, coalescer: Coalescer, drain: Drain) -> None:
        self.tenant = tenant
        self.coalescer = coalescer
        self.drain = drain

    def report_extra(self) -> dict[str, object]:
        """The report's `drain` key: the jobs that shared calls, and the drain's import calls so far."""
        return {"drain": {"jobs": self.drain.jobs, "sharedCalls": self.coalescer.calls}}


class Shared:
    """One job's view of its drain: the shared pieces, its coalesced client, its turn in the capacity order."""

    def __init__(self, drain: DrainShared, client: MemberClient, reviewed_event: threading.Event) -> None:
        self.drain = drain
        self.client = client
        self.reviewed_event = reviewed_event

    def reviewed(self, steward: object) -> None:
        """Every entry of this job decided: the room it took goes, and the next job may decide."""
        admitted = getattr(steward, "admitted", 0)  # a Steward; an UnreadTenant stand-in admits nothing
        self.drain.tenant.took(int(admitted))
        self.reviewed_event.set()


class MemberClient(LeaseChecked):
    """A drain job's Defender client: imports go through the coalescer (with its own call counts), the rest —
    List, deletes, identity — to the lease-checked client as for any job."""

    def __init__(self, member: Member, checked: LeaseChecked) -> None:
        super().__init__(checked.client, checked.lease)
        self._member = member

    @property
    def api_calls(self) -> int:
        return self._member.api_calls

    @property
    def retries(self) -> int:
        return self._member.retries

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        return self._member.submit(batch)

    def time_limit(self, seconds: float, label: str):  # type: ignore[no-untyped-def]
        return self.client.time_limit(seconds, label)
