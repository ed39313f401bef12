"""The HTTP import (`handle_http`, `POST /api/indicators/import`; CONTRACT.md "HTTP API").

HTTP time limit: the Functions host cuts an HTTP answer at 230 s whatever functionTimeout says. An HTTP
import therefore runs against HTTP_DEADLINE_SECONDS from the request's arrival: the lock wait counts, and the
Defender client stops instead of waiting past it (`DefenderClient.time_limit`); what was not submitted is
`failed` with a reason saying to resend it (200), or, when nothing was submitted, the answer is a 503.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.app.http_answer import HttpAnswer
from shared.app.http_body import Body, HttpProblem, ValueBuilder, check_body, error_body, overrides_from_params
from shared.app.runtime import RETRY_AFTER_SECONDS, Runtime, get_runtime
from shared.core.errors import DeadlineReached
from shared.core.settings import Settings, SettingsError
from shared.pipeline.job import Job, JobHooks, run_job
from shared.pipeline.process import RunResult
from shared.pipeline.reports import FAILED
from shared.storage.blobs import BlobReports
from shared.storage.tenant_lock import LockLost, LockTimeout
from shared.tenant import feeds

if TYPE_CHECKING:
    import azure.functions as func

log = logging.getLogger(__name__)


def handle_http(req: func.HttpRequest, *, invocation_id: str, runtime: Runtime | None = None) -> func.HttpResponse:
    """`POST /api/indicators/import` (CONTRACT.md "HTTP API")."""
    return http_import(
        method=req.method,
        headers=dict(req.headers),
        params=dict(req.params),
        body=req.get_body() or b"",
        invocation_id=invocation_id,
        runtime=runtime,
    ).to_response()


def http_import(
    *,
    method: str,
    headers: Mapping[str, str],
    params: Mapping[str, str],
    body: bytes,
    invocation_id: str,
    runtime: Runtime | None = None,
    now: datetime | None = None,
) -> HttpAnswer:
    arrived = time.monotonic()  # HTTP_DEADLINE_SECONDS counts from here: the lock wait counts too
    try:
        rt = runtime or get_runtime()
    except Exception as e:  # configuration: the health endpoint lists the details too
        log.error("configuration incomplete: %s", e)
        return HttpAnswer(500, error_body(500, f"the app's configuration is incomplete: {e}"))
    try:
        settings = rt.settings.with_overrides(overrides_from_params(params))
        feeds.check_sync(settings)
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
    base = f"http/{started.strftime('%Y%m%dT%H%M%SZ')}-{invocation_id}"
    deadline = arrived + rt.options.http_deadline
    job = http_job(rt, settings, parsed, base, started, deadline=deadline)
    try:
        return _run_http(rt, job, base)
    except LockLost as e:
        log.error("HTTP import %s: %s", invocation_id, e)
        return HttpAnswer(
            503,
            error_body(503, f"{e}; the import stopped part-way (what was submitted is `unchanged` on a retry)"),
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except LockTimeout as e:
        return HttpAnswer(
            503,
            error_body(503, f"{e}; try again later"),
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except Exception as e:
        log.exception("HTTP import %s failed", invocation_id)
        return HttpAnswer(500, error_body(500, f"the import failed unexpectedly ({type(e).__name__}); see the logs"))


def http_source(settings: Settings) -> str:
    """The input name HTTP imports give validation (`{source}` of DEFAULT_DESCRIPTION): stable from one
    request to the next, so defaulted descriptions compare equal and a resent indicator is `unchanged`."""
    return f"HTTP import ({settings.feed})" if settings.feed else "HTTP import"


def http_job(rt: Runtime, settings: Settings, parsed: Body, base: str, started: datetime, *, deadline: float) -> Job:
    """The job of one request: its body's items as the checks decoded them, within the HTTP time limit."""
    return Job(
        name=parsed.name,
        source=http_source(settings),
        report_source={"container": None, "name": base, "etag": None, "size": parsed.size},
        settings=settings,
        started=started,
        saved=parsed.items,
        entries_at_most=parsed.count,
        lock_wait=max(0.0, min(rt.options.http_lock_wait, deadline - time.monotonic())),
        deadline_seconds=lambda: deadline - time.monotonic(),
        deadline_label=f"the HTTP time limit (HTTP_DEADLINE_SECONDS = {rt.options.http_deadline:g} s)",
    )


def _run_http(rt: Runtime, job: Job, base: str) -> HttpAnswer:
    json_name, csv_name = f"{base}.report.json", f"{base}.report.csv"
    values = ValueBuilder()
    result = run_job(
        job,
        client=rt.defender,
        turn=rt,
        reports=BlobReports(rt.reports, json_name, csv_name),
        hooks=JobHooks(on_outcome=values.add),
    )
    run = result.run
    assert run is not None  # HTTP reports are never `already_done`
    summary = run.summary.as_dict()
    stopped = run.stop if isinstance(run.stop, DeadlineReached) else None
    if stopped is not None:
        log.warning("HTTP import %s: %d entries not submitted: %s", base, run.stopped, stopped.message)
    unreachable = unreachable_message(run)
    if unreachable and stopped is not None:
        # Nothing reached Defender before the time limit: as when Defender cannot be reached at all (503),
        # but the message says why, and Retry-After is the wait Defender (or the pacer) asked for.
        message = (
            f"stopped before the HTTP time limit (HTTP_DEADLINE_SECONDS = {rt.options.http_deadline:g} s): "
            f"{stopped.why or stopped.message}. None of the {run.stopped} indicators was submitted: resend the "
            "request after the Retry-After delay (larger sets can be dropped into the indicators container, "
            "which has no time limit)"
        )
        body = error_body(503, message)
        body.update({"summary": summary, "report": json_name})
        retry_after = math.ceil(stopped.wait) if stopped.wait else RETRY_AFTER_SECONDS
        return HttpAnswer(503, body, {"Retry-After": str(retry_after)})
    if unreachable:
        body = error_body(503, unreachable)
        body.update({"summary": summary, "report": json_name})
        return HttpAnswer(503, body)
    # Stopped part-way by the time limit: still a 200 (the request was processed, CONTRACT.md "HTTP API");
    # the entries not submitted are `isFailed` with a reason that says to resend them.
    return HttpAnswer(200, {"value": values.entries, "summary": summary, "report": json_name, "status": run.status})


def unreachable_message(result: RunResult) -> str | None:
    """The 503 message when Defender or the identity endpoint could not be reached at all, else None.

    process_stream reports such a run `failed` without a fatal file-level problem (a file that could
    not be read is the other way to `failed`); every pending entry then carries the client's message,
    which names the endpoint and what to check (e.g. the missing Ti.ReadWrite.All role).
    """
    if result.status != FAILED or any(e.fatal for e in result.errors):
        return None
    return (
        f"Defender or the identity endpoint could not be reached: {result.first_failure or 'no answer'}. "
        "Check the managed identity, its Ti.ReadWrite.All role and DEFENDER_API_URL / DEFENDER_TOKEN_SCOPE."
    )
