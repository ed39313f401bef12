"""The queue worker (`run_import_jobs`): a doorbell names a job; the job record says what to do.

- A final job: the doorbell is done. An early doorbell (the job waits for a scheduled retry): rung again for
  the time left.
- The tenant's turn taken by a live holder: the doorbell is rung again after a short delay and the invocation
  succeeds — contention never burns a dequeue, so the dequeue count measures crashes only.
- Otherwise, holding the turn: the job runs from its checkpoint (`pipeline.job.run_job`, interrupted rather
  than failed when Defender or the identity endpoint stops answering). Confirmed batches are appended to the
  job's progress log and the checkpoint moves, so a retried or redelivered job sends at most the batch that was
  in flight again (import is an upsert).
- Two failure paths (CONTRACT.md "HTTP API" [jobs]): (a) a crash raises, and the host redelivers the message;
  on the last delivery (`maxDequeueCount`) the job is first made final `failed`. (b) Defender or the identity
  endpoint unavailable, or a `403`: the job is `retrying`, and a new doorbell is rung after the next delay of
  JOB_RETRY_SCHEDULE_MINUTES, until JOB_RETRY_MAX_HOURS (ACCESS_DENIED_RETRY_HOURS for a 403) have passed
  since the first such failure; then the job is final `failed`, every entry not sent `failed` with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.app import telemetry
from shared.app.http_body import ValueBuilder
from shared.app.runtime import Runtime, get_runtime
from shared.core import telemetry as tm
from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable
from shared.core.jobs import JobRecord, JobState, now_text, parse_when, retry_delay, seconds_until
from shared.core.model import Outcome, ReaderItem, Summary
from shared.core.options import InputOptions
from shared.pipeline.coalesce import Coalescer, Member
from shared.pipeline.job import (
    HeldTurn,
    Job,
    JobHooks,
    JobResult,
    Lease,
    LeaseChecked,
    SavedItems,
    publish_failed_report,
    run_job,
)
from shared.pipeline.process import Interrupted
from shared.storage.blobs import BlobReports, open_blob
from shared.storage.jobs import JobStore, RecordConflict, doorbell
from shared.storage.tenant_lock import LockTimeout
from shared.tenant.drain import DrainTenant
from shared.tenant.mirrored import TenantMirror

if TYPE_CHECKING:
    import azure.functions as func

    from shared.pipeline.job import DefenderLike

log = logging.getLogger(__name__)

CONTENTION_DELAY_SECONDS = 5.0  # a doorbell rung again while another job holds the tenant's turn
LOG_EVERY_ENTRIES = 1000  # progress is logged at least this often, also between batches


def handle_doorbell(msg: func.QueueMessage, *, runtime: Runtime | None = None, traceparent: str | None = None) -> None:
    """The queue trigger's body. Raises to make the host redeliver (a crash); returns when handled.

    The first call of the process configures telemetry (`shared.app.telemetry.ensure`); `traceparent` is the
    host's invocation (`func.Context.trace_context`), so the job's span is its child.
    """
    telemetry.ensure()
    job_id, tenant = doorbell(msg.get_body().decode("utf-8"))
    dequeue_count = getattr(msg, "dequeue_count", None) or 1  # func.QueueMessage built by hand has none
    Worker(runtime or get_runtime()).answer(job_id, tenant, dequeue_count=int(dequeue_count), traceparent=traceparent)


class Worker:
    """Answers doorbells for one process; holds nothing between invocations but the runtime."""

    def __init__(self, rt: Runtime, *, now: datetime | None = None) -> None:
        self.rt = rt
        self.store: JobStore = rt.jobs
        self._now = now

    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    def answer(self, job_id: str, tenant: str, *, dequeue_count: int = 1, traceparent: str | None = None) -> None:
        found = self.store.get(job_id)
        if found is None:
            log.warning("doorbell for unknown job %s (expired or never created): nothing to do", job_id)
            return
        record, _ = found
        if record.final:
            return
        wait = seconds_until(record.next_attempt_at, self.now())
        if wait > 1.0:
            self.rt.queue.ring(job_id, record.tenant, delay=wait)  # early: its retry is not due yet
            return
        try:
            with self.rt.turn_for(record.tenant).hold(0.0) as lease:
                last = dequeue_count >= self.rt.options.max_dequeue_count
                # The tenant mirror of this turn: read (or the tenant listed) when a job first needs the view,
                # written back once at the end (`tenant.mirrored`).
                mirror = self.rt.mirror_for(record.tenant, LeaseChecked(self.rt.defender, lease))
                clean = False
                try:
                    self._run(job_id, lease, mirror, last_delivery=last, traceparent=traceparent)
                    clean = True
                finally:
                    mirror.close(clean=clean, lease_held=_held(lease))
        except LockTimeout:
            log.info("job %s: the tenant's turn is taken; doorbell rung again in %.0f s", job_id,
                     CONTENTION_DELAY_SECONDS)  # fmt: skip
            self.rt.queue.ring(job_id, record.tenant, delay=CONTENTION_DELAY_SECONDS)

    # ------------------------------------------------------------------------------------ one attempt

    def _run(self, job_id: str, lease: Lease, mirror: TenantMirror, *, last_delivery: bool,
             traceparent: str | None = None) -> None:  # fmt: skip
        found = self.store.get(job_id)
        if found is None or found[0].final:
            return
        record, etag = found
        record.state = JobState.running
        record.attempt += 1
        record.next_attempt_at = None
        record.heartbeat_at = now_text(self.now())
        etag = self.store.update(record, etag)
        if record.kind == "http" and record.coalescible:
            Drain(self, lease, mirror, traceparent=traceparent).run(record, etag, last_delivery=last_delivery)
            return
        run = _Attempt(self, record, etag, self._progress(job_id), mirror=mirror)
        tel = tm.current()
        with tel.job(job_id=job_id, kind=record.kind, tenant=record.tenant, attempt=record.attempt,
                     traceparent=traceparent) as span:  # fmt: skip
            run.span = span
            try:
                result = run.go(lease)
            except Interrupted as e:
                run.flush_progress()
                self._retry_or_give_up(run, e.error, lease)
                return
            except Exception as e:
                if last_delivery:
                    # The host poisons the message after this delivery: the job must not wait forever.
                    log.exception("job %s failed on its last delivery; made final", job_id)
                    self._give_up(run, DefenderUnavailable(f"the import failed unexpectedly ({type(e).__name__}) "
                                                           "on every delivery; see the logs"), lease,
                                  outcome=tm.POISONED)  # fmt: skip
                else:  # the host delivers the message again
                    tel.job_outcome(tm.RETRIED, kind=record.kind, status=None)
                    span.ended(tm.RETRIED, error=type(e).__name__)
                raise
            self._finish(run, result)

    def _progress(self, job_id: str) -> list[Outcome]:
        logged = self.store.progress(job_id)
        if not logged:
            self.store.start_progress(job_id)
        return logged

    def _retry_or_give_up(self, run: _Attempt, error: DefenderError, lease: Lease) -> None:
        record = run.record
        now = self.now()
        first = parse_when(record.first_failure_at) or now
        record.first_failure_at = now_text(first)
        opts = self.rt.options
        hours = opts.access_denied_retry_hours if isinstance(error, AccessDenied) else opts.retry_max_hours
        if now - first >= timedelta(hours=hours):
            why = "access denied" if isinstance(error, AccessDenied) else "Defender or identity unavailable"
            self._give_up(run, DefenderUnavailable(f"{error.message} ({why} for {hours:g} h: retries given up)"), lease,
                          error_name=type(error).__name__)  # fmt: skip
            return
        failures = record.attempt  # attempts so far; the schedule grows with them
        delay = retry_delay(opts.retry_schedule_minutes, failures)
        record.state = JobState.retrying
        record.next_attempt_at = now_text(now + delay)
        record.error = error.message
        if isinstance(error, AccessDenied):
            record.error += " (a new role grant can take a while to reach tokens: retried)"
        run.save()
        self.rt.queue.ring(record.id, record.tenant, delay=delay.total_seconds())
        tm.current().job_outcome(tm.RETRIED, kind=record.kind, status=None)
        run.span.ended(tm.RETRIED, error=type(error).__name__)
        log.warning("job %s: %s; retry %d at %s", record.id, error.message, failures, record.next_attempt_at)

    def _give_up(self, run: _Attempt, error: DefenderError, lease: Lease, *, outcome: str = tm.FAILED,
                 error_name: str | None = None) -> None:  # fmt: skip
        """Make the job final `failed`: what was settled keeps its outcome, what was not sent is `failed` with
        the reason — without another call to Defender. `outcome` for telemetry: `failed` (retries ran out) or
        `poisoned` (the last delivery of a message the host poisons next)."""
        record = run.record
        final = _Attempt(self, record, run.etag, self.store.progress(record.id), refuse=error)
        final.span = run.span
        try:
            result = final.go(lease)
        except Exception:  # the pipeline itself fails on this input: a report that says so, no entries
            log.exception("job %s: the final report could not be written with its entries", record.id)
            job = final.job()
            publish_failed_report(_reports(self.rt, record), job, error.message)
            result = JobResult(dict(job.report_source))
        self._finish(final, result, state=JobState.failed, error=error.message, outcome=outcome,
                     error_name=error_name)  # fmt: skip

    def _finish(self, run: _Attempt, result: JobResult, *, state: JobState = JobState.completed,
                error: str | None = None, outcome: str = tm.COMPLETED,
                error_name: str | None = None) -> None:  # fmt: skip
        record = run.record
        record.state = state
        record.status = result.status or "failed"
        record.error = error
        record.finished_at = now_text(self.now())
        record.next_attempt_at = None
        if result.run is not None:
            record.total = result.summary.total
            record.checkpoint = result.summary.total
        if record.kind == "http":
            summary = result.summary.as_dict() if result.run is not None else Summary().as_dict()
            body: dict[str, object] = {
                "value": run.values.entries,
                "summary": summary,
                "report": record.report,
                "status": record.status,
            }
            record.result = self.store.save_result(record.id, body)
        run.save()
        self.store.forget_pieces(record)
        _count_final(record, result, outcome, run.span, error_name)
        log.info("job %s: %s (%s)", record.id, state.value, record.status)


def _held(lease: Lease) -> bool:
    """Is the tenant's turn still ours (the mirror is written only then)?"""
    try:
        lease.check()
    except Exception:  # LockLost: another holder may have the turn (and judges the mirror itself)
        return False
    return True


def _count_final(record: JobRecord, result: JobResult, outcome: str, span: tm.JobSpan,
                 error_name: str | None) -> None:  # fmt: skip
    """Telemetry of a final job, once: its outcome, its entries by status and type, the tenant's count and room."""
    tel = tm.current()
    if not tel.enabled:
        return
    tel.job_outcome(outcome, kind=record.kind, status=record.status)
    span.ended(outcome, status=record.status, error=error_name)
    run = result.run
    if run is None:
        return
    if run.tally is not None:
        tel.indicators(run.tally)
    tel.tenant(record.tenant, run.tenant)


class _Attempt:
    """One run of one job: its Job description, the progress log it extends, the HTTP `value` it builds."""

    span: tm.JobSpan = tm.JobSpan()  # the job's telemetry span (the no-op until the worker opens one)

    def __init__(self, worker: Worker, record: JobRecord, etag: str, logged: Sequence[Outcome],
                 *, refuse: DefenderError | None = None, shared: Shared | None = None,
                 mirror: TenantMirror | None = None) -> None:  # fmt: skip
        self.worker = worker
        self.shared = shared
        self.mirror = mirror  # a job alone in its turn: the turn's view comes from the tenant mirror
        self.shared_rows: SavedItems | None = None  # a drain job's rows, read before its turn to decide
        self.rt = worker.rt
        self.record = record
        self.etag = etag
        self.logged = list(logged)
        self.refuse = refuse
        self.values = ValueBuilder()
        self._pending: list[Outcome] = []
        self._seen = 0

    def job(self) -> Job:
        rec = self.record
        options = InputOptions.parse(rec.options)
        options.check_sync()
        tenant: DrainTenant | Callable[[], DrainTenant] | None = None
        if self.shared is not None:
            tenant = self.shared.drain.tenant
        elif self.mirror is not None and self.refuse is None:  # a final run without calls lists nothing
            tenant = self.mirror.open
        common = {
            "report_source": _report_source(rec),
            "settings": self.rt.settings,
            "options": options,
            "started": parse_when(rec.started) or datetime.now(UTC),
            "resume": self.logged,
            "interrupt": self.refuse is None,
            "drain": tenant,
            "follow_imports": self.shared is None,
        }
        inp = rec.input
        if rec.kind == "blob":
            blob = self.rt.service.get_blob_client(str(inp["container"]), str(inp["name"]))
            etag, size = str(inp["etag"]), int(str(inp["size"]))
            return Job(name=str(inp["name"]), source=str(inp["name"]), size=size,
                       open_input=lambda: open_blob(blob, etag, size), **common)  # type: ignore[arg-type]  # fmt: skip
        from shared.app.http_import import http_source

        rows: SavedRows | SavedItems = SavedRows(
            self.worker.store, str(inp["rows"]), str(inp.get("format") or "unknown")
        )
        if self.shared is not None:
            rows = self.shared_rows or rows
        return Job(name=str(inp["name"]), source=http_source(options), saved=rows, entries_at_most=rec.total,
                   **common)  # type: ignore[arg-type]  # fmt: skip

    def go(self, lease: Lease) -> JobResult:
        client: DefenderLike = self.rt.defender
        hooks = JobHooks(on_outcome=self._outcome, on_flush=self.flush_progress)
        if self.refuse is not None:
            client = Refusing(client, self.refuse)
        elif self.shared is not None:
            client = self.shared.client
            hooks.on_reviewed = self.shared.reviewed
            hooks.report_extra = self.shared.drain.report_extra
        return run_job(self.job(), client=client, turn=HeldTurn(lease), reports=_reports(self.rt, self.record),
                       hooks=hooks)  # fmt: skip

    def _outcome(self, o: Outcome) -> None:
        if self.record.kind == "http":
            self.values.add(o)
        self._seen += 1
        if self._seen <= len(self.logged) or self.refuse is not None:
            return  # replayed from the log (or a final run that logs nothing more)
        self._pending.append(o)
        if len(self._pending) >= LOG_EVERY_ENTRIES:
            self.flush_progress()

    def flush_progress(self) -> None:
        """Append what was reported since the last checkpoint and move the checkpoint (a confirmed batch)."""
        if not self._pending:
            return
        self.worker.store.append_progress(self.record.id, self._pending)
        self.logged.extend(self._pending)
        self._pending = []
        self.record.checkpoint = len(self.logged)
        self.record.heartbeat_at = now_text(self.worker.now())
        self.save()

    def save(self) -> None:
        try:
            self.etag = self.worker.store.update(self.record, self.etag)
        except RecordConflict:
            # Only the turn's holder writes a running job; a conflict means a stale ETag of our own (a retry
            # of the write): read the newest and write ours over it.
            found = self.worker.store.get(self.record.id)
            if found is None:
                raise
            self.etag = self.worker.store.update(self.record, found[1])


def _report_source(record: JobRecord) -> dict[str, object]:
    inp = record.input
    if record.kind == "blob":
        source = {"container": inp["container"], "name": inp["name"], "etag": str(inp["etag"]).strip('"'),
                  "size": inp["size"]}  # fmt: skip
        if inp.get("reportNameShortened"):
            source["reportNameShortened"] = True  # its report names were shortened (reports.report_stem)
        return source
    # [entra] who sent it: the token's `oid` and `appid`/`azp` (null with function keys, which name nobody).
    return {"container": None, "name": record.report.removesuffix(".report.json"), "etag": None, "size": inp["size"],
            "submitter": record.submitter}  # fmt: skip


def _reports(rt: Runtime, record: JobRecord) -> BlobReports:
    csv_name = record.report.removesuffix(".json") + ".csv"
    etag = str(record.input["etag"]) if record.kind == "blob" else None
    return BlobReports(rt.reports, record.report, csv_name, etag=etag)


class SavedRows:
    """An HTTP job's saved rows, streamed from the job store on each pass (`pipeline.job.Items`)."""

    def __init__(self, store: JobStore, name: str, format: str) -> None:
        self._store = store
        self._name = name
        self.format = format

    def __iter__(self) -> Iterator[ReaderItem]:
        return self._store.rows(self._name)


class Refusing:
    """The client of a job's final run after its retries ran out: every call fails with the reason (a stop
    error, so the run is `failed`), none is made — the report settles every entry not sent as `failed` and
    says why."""

    def __init__(self, client: DefenderLike, error: DefenderError) -> None:
        self._client = client
        self._error = error
        self.api_calls = self.retries = self.list_calls = self.delete_calls = 0

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        raise self._error

    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Iterator[dict[str, object]]:
        raise self._error

    def batch_delete(self, ids: Sequence[str]) -> object:
        raise self._error

    def delete(self, id: str) -> object:
        raise self._error

    def identity_ids(self) -> tuple[str, ...]:
        return self._client.identity_ids()

    def time_limit(self, seconds: float, label: str):  # type: ignore[no-untyped-def]
        return self._client.time_limit(seconds, label)


# ---------------------------------------------------------------------------------------------- drains


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
            run = _Attempt(self.worker, first, etag, self.worker._progress(first.id))
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
                run = _Attempt(self.worker, record, etag, self.worker._progress(record.id), shared=shared)
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
                        final = _Attempt(self.worker, claimed[0], claimed[1], [])
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
