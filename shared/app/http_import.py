"""The HTTP import (`POST /api/indicators/import`) and its job's status (`GET …/jobs/{id}`; CONTRACT.md
"HTTP API" [jobs]).

A POST is checked at once (400/413/415: the checks decode the body once, and those rows are what the job
imports), then becomes a queued job: its rows saved, its record created, its doorbell rung. The handler then
waits up to HTTP_SYNC_SECONDS for the record to turn final — polling with `asyncio.sleep`, holding no worker
thread — and answers `200` with the job's final body (`value`, `summary`, `report`, `status`), or `202
Accepted` with `Location` (the status route), `Retry-After` and the job's progress: Logic Apps' asynchronous
request-reply pattern, which its HTTP action follows by default. `Prefer: respond-async` (RFC 7240) answers
`202` at once. `503` only when the job cannot be saved or queued (storage unavailable).

The status route answers the same `202` body while the job is not final, then exactly the `200` body, and
`404` for an unknown id or once JOB_RESULT_DAYS have passed since it finished. A job with no progress for
longer than any run can take is answered as final `failed`: never an eternal 202.

With HTTP_AUTH=entra (`entra=True`, fixed by function_app.py at import) both routes first want an Entra ID token
(`shared.app.auth`): a POST the `Indicators.Import` role, and the caller it names becomes the job's `submitter`;
a GET `Indicators.Read`, or `Indicators.Import` and the job's own submitter — checked on the record before
anything about the job is answered.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.app.http_answer import HttpAnswer
from shared.app.http_body import Body, HttpProblem, check_body, error_body, overrides_from_params
from shared.app.runtime import Runtime, get_runtime
from shared.core.jobs import JobRecord, JobState, http_job_id, looks_like_job_id, now_text, parse_when
from shared.core.options import InputOptions
from shared.core.settings import SettingsError

if TYPE_CHECKING:
    import azure.functions as func

    from shared.app.auth import Caller

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often a waiting POST looks at its job's record
# A running job whose record has not moved for this long is taken for dead (functionTimeout is 30 min; the
# worker moves the record at every confirmed batch).
STALLED_AFTER = timedelta(minutes=35)
STATUS_ROUTE = "/api/indicators/import/jobs/"


async def handle_http(
    req: func.HttpRequest, *, invocation_id: str, runtime: Runtime | None = None, entra: bool = False
) -> func.HttpResponse:
    """`POST /api/indicators/import` (CONTRACT.md "HTTP API")."""
    headers = dict(req.headers)
    submitter = None
    if entra:
        from shared.app import auth

        try:
            caller = await asyncio.to_thread(auth.authorise, headers, (auth.IMPORT_ROLE,), "POST indicators/import")
        except auth.Refused as refused:
            return refused.answer().to_response()
        submitter = caller.submitter
    answer = await http_import(
        method=req.method,
        url=req.url,
        headers=headers,
        params=dict(req.params),
        body=req.get_body() or b"",
        invocation_id=invocation_id,
        runtime=runtime,
        submitter=submitter,
    )
    return answer.to_response()


async def http_import(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    params: Mapping[str, str],
    body: bytes,
    invocation_id: str,
    runtime: Runtime | None = None,
    now: datetime | None = None,
    submitter: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """The POST's answer. `submitter`: who sent it (a valid token's `oid` and `appid`/`azp`), kept in the job
    record and the report; None with function keys, which name nobody."""
    arrived = time.monotonic()
    try:
        rt = runtime or get_runtime()
    except Exception as e:  # configuration: the health endpoint lists the details too
        log.error("configuration incomplete: %s", e)
        return HttpAnswer(500, error_body(500, f"the app's configuration is incomplete: {e}"))
    try:
        overrides = overrides_from_params(params)
        options = InputOptions.parse(overrides)
        options.check_sync()
        settings = rt.settings
        parsed = check_body(
            headers,
            body,
            max_bytes=settings.max_http_body_bytes,
            max_indicators=settings.max_http_indicators,
            limits=settings.read_limits,
        )
    except SettingsError as e:
        return HttpAnswer(400, error_body(400, f"query parameters: {e}"))
    except HttpProblem as p:
        return HttpAnswer(p.status, p.body(), p.headers)
    started = now or datetime.now(UTC)
    try:
        record = await asyncio.to_thread(_queue_job, rt, parsed, overrides, started, options, submitter)
    except Exception as e:  # storage: the job cannot be saved or queued
        log.exception("HTTP import %s: the job could not be saved or queued", invocation_id)
        return HttpAnswer(
            503,
            error_body(503, f"the import could not be queued ({type(e).__name__}): storage is unavailable; retry"),
            {"Retry-After": "30"},
        )
    log.info("HTTP import %s: job %s queued with %d entries%s", invocation_id, record.id, parsed.count,
             "".join(f" {k}={v}" for k, v in (submitter or {}).items()))  # fmt: skip
    location = status_location(url, params, record.id)
    if "respond-async" in headers_lower(headers).get("prefer", "").lower():
        return _pending_answer(rt, record, location)
    deadline = arrived + rt.options.http_sync_seconds
    while True:
        found = await asyncio.to_thread(rt.jobs.get, record.id)
        if found is not None:
            record = found[0]
            if record.final:
                return await asyncio.to_thread(final_answer, rt, record)
        left = deadline - time.monotonic()
        if left <= 0:
            return _pending_answer(rt, record, location)
        await asyncio.sleep(min(POLL_SECONDS, left))


def headers_lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _queue_job(
    rt: Runtime, parsed: Body, overrides: Mapping[str, str], started: datetime, options: InputOptions,
    submitter: Mapping[str, str] | None = None,
) -> JobRecord:  # fmt: skip
    job_id = http_job_id()
    base = f"http/{started.strftime('%Y%m%dT%H%M%SZ')}-{job_id}"
    rows = rt.jobs.save_rows(job_id, parsed.items)
    record = JobRecord(
        id=job_id,
        kind="http",
        input={"rows": rows, "name": parsed.name, "size": parsed.size, "format": parsed.items.format},
        report=f"{base}.report.json",
        created_at=now_text(),
        started=now_text(started),
        options={k: v for k, v in overrides.items()},
        total=parsed.count,
        submitter=dict(submitter) if submitter else None,
        # Dry runs and feed syncs are never coalesced (CONTRACT.md "Settings" [coalesce]).
        coalescible=not options.dry_run_under(rt.settings) and not options.sync,
    )
    rt.jobs.create(record)
    rt.queue.ring(record.id, record.tenant)
    return record


def status_location(url: str, params: Mapping[str, str], job_id: str) -> str:
    """The status URL on the same host; it carries the function key only when the request did (`code=`)."""
    from urllib.parse import quote, urlsplit

    parts = urlsplit(url)
    location = f"{parts.scheme}://{parts.netloc}{STATUS_ROUTE}{job_id}"
    code = next((v for k, v in params.items() if k.lower() == "code"), None)
    return location + (f"?code={quote(code, safe='')}" if code else "")


def _pending_answer(rt: Runtime, record: JobRecord, location: str) -> HttpAnswer:
    body = pending_body(rt, record)
    retry_after = max(5, min(60, math.ceil(_estimate_seconds(rt, record, int(str(body["ahead"]))))))
    return HttpAnswer(202, body, {"Location": location, "Retry-After": str(retry_after)})


def pending_body(rt: Runtime, record: JobRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "state": record.state.value,
        "entries": {"done": record.checkpoint, "total": record.total},
        "ahead": _ahead(rt, record),
        "attempt": record.attempt,
        "nextAttemptAt": record.next_attempt_at,
    }


def _ahead(rt: Runtime, record: JobRecord) -> int:
    """Jobs of the same tenant, not final, queued before this one."""
    return sum(
        1
        for other in rt.jobs.records()
        if other.id != record.id and other.tenant == record.tenant and not other.final
        and other.created_at <= record.created_at
    )  # fmt: skip


def _estimate_seconds(rt: Runtime, record: JobRecord, ahead: int) -> float:
    """A rough time to the job's end: its batches left at MAX_CALLS_PER_MINUTE, a little more per job ahead."""
    if record.next_attempt_at:
        return max(0.0, ((parse_when(record.next_attempt_at) or datetime.now(UTC)) - datetime.now(UTC)).total_seconds())
    left = max(0, (record.total or 0) - record.checkpoint)
    batches = math.ceil(left / rt.settings.batch_size) if left else 1
    return (batches + ahead) * 60.0 / rt.settings.max_calls_per_minute


def final_answer(rt: Runtime, record: JobRecord) -> HttpAnswer:
    """The `200` a final job answers: today's body (`value`, `summary`, `report`, `status`)."""
    if record.result is None:
        body: dict[str, object] = {"value": [], "summary": {}, "report": record.report,
                                   "status": record.status or "failed", "error": record.error}  # fmt: skip
        return HttpAnswer(200, body)
    return HttpAnswer(200, rt.jobs.result(record.result))


async def handle_status(
    req: func.HttpRequest, *, runtime: Runtime | None = None, entra: bool = False
) -> func.HttpResponse:
    """`GET /api/indicators/import/jobs/{id}`."""
    caller = None
    if entra:
        from shared.app import auth

        try:
            caller = await asyncio.to_thread(auth.authorise, dict(req.headers), (auth.IMPORT_ROLE, auth.READ_ROLE),
                                             "GET indicators/import/jobs")  # fmt: skip
        except auth.Refused as refused:
            return refused.answer().to_response()
    answer = await asyncio.to_thread(
        job_status, req.route_params.get("id", ""), req.url, dict(req.params), runtime, caller=caller
    )
    return answer.to_response()


def job_status(
    job_id: str, url: str, params: Mapping[str, str], runtime: Runtime | None = None, *, caller: Caller | None = None
) -> HttpAnswer:
    """The job's answer; with a `caller` (HTTP_AUTH=entra), only if it may read that job."""
    rt = runtime or get_runtime()
    found = rt.jobs.get(job_id) if looks_like_job_id(job_id) else None
    if found is None:
        return HttpAnswer(404, error_body(404, f"no import job {job_id[:40]!r}"))
    record = found[0]
    if caller is not None and not caller.may_read(record.submitter):
        from shared.app.auth import READ_ROLE, Refused

        log.warning("GET job %s refused (403) for %s: not its submitter", record.id, caller.describe())
        return Refused(
            403,
            f"import job {job_id} was submitted by another caller: Indicators.Import reads the caller's own jobs, "
            f"{READ_ROLE} any job",
            error="insufficient_scope",
        ).answer()
    now = datetime.now(UTC)
    if record.final:
        finished = parse_when(record.finished_at) or now
        if now - finished > timedelta(days=rt.options.job_result_days):
            return HttpAnswer(404, error_body(404, f"import job {job_id} finished more than JOB_RESULT_DAYS ago"))
        return final_answer(rt, record)
    stalled = _stalled(rt, record, now)
    if stalled:
        stalled_body: dict[str, object] = {"value": [], "summary": {}, "report": record.report, "status": "failed",
                                           "error": stalled}  # fmt: skip
        return HttpAnswer(200, stalled_body)
    return _pending_answer(rt, record, status_location(url, params, record.id))


def _stalled(rt: Runtime, record: JobRecord, now: datetime) -> str | None:
    """Why a job that is not final will not progress any more, or None (never an eternal 202)."""
    if record.state is JobState.running:
        moved = parse_when(record.heartbeat_at) or parse_when(record.created_at) or now
        if now - moved > STALLED_AFTER:
            return f"the job made no progress since {record.heartbeat_at}; it is taken for failed"
        return None
    due = parse_when(record.next_attempt_at) or parse_when(record.created_at) or now
    if now - due > timedelta(hours=rt.options.retry_max_hours + 1):
        return f"the job was not picked up since {record.next_attempt_at or record.created_at}; it is taken for failed"
    return None


def http_source(options: InputOptions) -> str:
    """The input name HTTP imports give validation (`{source}` of DEFAULT_DESCRIPTION): stable from one
    request to the next, so defaulted descriptions compare equal and a resent indicator is `unchanged`."""
    return f"HTTP import ({options.feed})" if options.feed else "HTTP import"
