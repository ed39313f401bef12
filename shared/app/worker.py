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

One attempt of one job is an `attempt.Attempt`; the coalescible HTTP jobs of a tenant run together in a
`drain.Drain`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.app import telemetry
from shared.app.attempt import Attempt, job_reports
from shared.app.drain import Drain
from shared.app.runtime import Runtime, get_runtime
from shared.core import telemetry as tm
from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable
from shared.core.jobs import JobRecord, JobState, now_text, parse_when, retry_delay, seconds_until
from shared.core.model import Outcome, Summary
from shared.pipeline.job import (
    JobResult,
    Lease,
    LeaseChecked,
    publish_failed_report,
)
from shared.pipeline.process import Interrupted
from shared.storage.jobs import JobStore, doorbell
from shared.storage.tenant_lock import LockTimeout
from shared.tenant.mirrored import TenantMirror

if TYPE_CHECKING:
    import azure.functions as func


log = logging.getLogger(__name__)

CONTENTION_DELAY_SECONDS = 5.0  # a doorbell rung again while another job holds the tenant's turn


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
        run = Attempt(self, record, etag, self._progress(job_id), mirror=mirror)
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

    def _retry_or_give_up(self, run: Attempt, error: DefenderError, lease: Lease) -> None:
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

    def _give_up(self, run: Attempt, error: DefenderError, lease: Lease, *, outcome: str = tm.FAILED,
                 error_name: str | None = None) -> None:  # fmt: skip
        """Make the job final `failed`: what was settled keeps its outcome, what was not sent is `failed` with
        the reason — without another call to Defender. `outcome` for telemetry: `failed` (retries ran out) or
        `poisoned` (the last delivery of a message the host poisons next)."""
        record = run.record
        final = Attempt(self, record, run.etag, self.store.progress(record.id), refuse=error)
        final.span = run.span
        try:
            result = final.go(lease)
        except Exception:  # the pipeline itself fails on this input: a report that says so, no entries
            log.exception("job %s: the final report could not be written with its entries", record.id)
            job = final.job()
            publish_failed_report(job_reports(self.rt, record), job, error.message)
            result = JobResult(dict(job.report_source))
        self._finish(final, result, state=JobState.failed, error=error.message, outcome=outcome,
                     error_name=error_name)  # fmt: skip

    def _finish(self, run: Attempt, result: JobResult, *, state: JobState = JobState.completed,
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
