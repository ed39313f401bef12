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
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.app.http_body import ValueBuilder
from shared.app.runtime import Runtime, get_runtime
from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable
from shared.core.jobs import JobRecord, JobState, now_text, parse_when, retry_delay, seconds_until
from shared.core.model import Outcome, ReaderItem, Summary
from shared.pipeline.job import HeldTurn, Job, JobHooks, JobResult, Lease, publish_failed_report, run_job
from shared.pipeline.process import Interrupted
from shared.storage.blobs import BlobReports, open_blob
from shared.storage.jobs import JobStore, RecordConflict, doorbell
from shared.storage.tenant_lock import LockTimeout
from shared.tenant import feeds

if TYPE_CHECKING:
    import azure.functions as func

    from shared.pipeline.job import DefenderLike

log = logging.getLogger(__name__)

CONTENTION_DELAY_SECONDS = 5.0  # a doorbell rung again while another job holds the tenant's turn
LOG_EVERY_ENTRIES = 1000  # progress is logged at least this often, also between batches


def handle_doorbell(msg: func.QueueMessage, *, runtime: Runtime | None = None) -> None:
    """The queue trigger's body. Raises to make the host redeliver (a crash); returns when handled."""
    job_id, tenant = doorbell(msg.get_body().decode("utf-8"))
    dequeue_count = getattr(msg, "dequeue_count", None) or 1  # func.QueueMessage built by hand has none
    Worker(runtime or get_runtime()).answer(job_id, tenant, dequeue_count=int(dequeue_count))


class Worker:
    """Answers doorbells for one process; holds nothing between invocations but the runtime."""

    def __init__(self, rt: Runtime, *, now: datetime | None = None) -> None:
        self.rt = rt
        self.store: JobStore = rt.jobs
        self._now = now

    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    def answer(self, job_id: str, tenant: str, *, dequeue_count: int = 1) -> None:
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
                self._run(job_id, lease, last_delivery=dequeue_count >= self.rt.options.max_dequeue_count)
        except LockTimeout:
            log.info("job %s: the tenant's turn is taken; doorbell rung again in %.0f s", job_id,
                     CONTENTION_DELAY_SECONDS)  # fmt: skip
            self.rt.queue.ring(job_id, record.tenant, delay=CONTENTION_DELAY_SECONDS)

    # ------------------------------------------------------------------------------------ one attempt

    def _run(self, job_id: str, lease: Lease, *, last_delivery: bool) -> None:
        found = self.store.get(job_id)
        if found is None or found[0].final:
            return
        record, etag = found
        record.state = JobState.running
        record.attempt += 1
        record.next_attempt_at = None
        record.heartbeat_at = now_text(self.now())
        etag = self.store.update(record, etag)
        logged = self.store.progress(job_id)
        if not logged:
            self.store.start_progress(job_id)
        run = _Attempt(self, record, etag, logged)
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
                self._give_up(run, DefenderUnavailable(f"the import failed unexpectedly ({type(e).__name__}) on "
                                                       "every delivery; see the logs"), lease)  # fmt: skip
            raise
        self._finish(run, result)

    def _retry_or_give_up(self, run: _Attempt, error: DefenderError, lease: Lease) -> None:
        record = run.record
        now = self.now()
        first = parse_when(record.first_failure_at) or now
        record.first_failure_at = now_text(first)
        opts = self.rt.options
        hours = opts.access_denied_retry_hours if isinstance(error, AccessDenied) else opts.retry_max_hours
        if now - first >= timedelta(hours=hours):
            why = "access denied" if isinstance(error, AccessDenied) else "Defender or identity unavailable"
            self._give_up(run, DefenderUnavailable(f"{error.message} ({why} for {hours:g} h: retries given up)"), lease)
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
        log.warning("job %s: %s; retry %d at %s", record.id, error.message, failures, record.next_attempt_at)

    def _give_up(self, run: _Attempt, error: DefenderError, lease: Lease) -> None:
        """Make the job final `failed`: what was settled keeps its outcome, what was not sent is `failed` with
        the reason — without another call to Defender."""
        record = run.record
        final = _Attempt(self, record, run.etag, self.store.progress(record.id), refuse=error)
        try:
            result = final.go(lease)
        except Exception:  # the pipeline itself fails on this input: a report that says so, no entries
            log.exception("job %s: the final report could not be written with its entries", record.id)
            job = final.job()
            publish_failed_report(_reports(self.rt, record), job, error.message)
            result = JobResult(dict(job.report_source))
        self._finish(final, result, state=JobState.failed, error=error.message)

    def _finish(self, run: _Attempt, result: JobResult, *, state: JobState = JobState.completed,
                error: str | None = None) -> None:  # fmt: skip
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
        log.info("job %s: %s (%s)", record.id, state.value, record.status)


class _Attempt:
    """One run of one job: its Job description, the progress log it extends, the HTTP `value` it builds."""

    def __init__(self, worker: Worker, record: JobRecord, etag: str, logged: Sequence[Outcome],
                 *, refuse: DefenderError | None = None) -> None:  # fmt: skip
        self.worker = worker
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
        settings = self.rt.settings.with_overrides(rec.options)
        feeds.check_sync(settings)
        common = {
            "report_source": _report_source(rec),
            "settings": settings,
            "started": parse_when(rec.started) or datetime.now(UTC),
            "resume": self.logged,
            "interrupt": self.refuse is None,
        }
        inp = rec.input
        if rec.kind == "blob":
            blob = self.rt.service.get_blob_client(str(inp["container"]), str(inp["name"]))
            etag, size = str(inp["etag"]), int(str(inp["size"]))
            return Job(name=str(inp["name"]), source=str(inp["name"]), size=size,
                       open_input=lambda: open_blob(blob, etag, size), **common)  # type: ignore[arg-type]  # fmt: skip
        from shared.app.http_import import http_source

        rows = SavedRows(self.worker.store, str(inp["rows"]), str(inp.get("format") or "unknown"))
        return Job(name=str(inp["name"]), source=http_source(settings), saved=rows, entries_at_most=rec.total,
                   **common)  # type: ignore[arg-type]  # fmt: skip

    def go(self, lease: Lease) -> JobResult:
        client: DefenderLike = self.rt.defender
        if self.refuse is not None:
            client = Refusing(client, self.refuse)
        hooks = JobHooks(on_outcome=self._outcome, on_flush=self.flush_progress)
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
        return {"container": inp["container"], "name": inp["name"], "etag": str(inp["etag"]).strip('"'),
                "size": inp["size"]}  # fmt: skip
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
