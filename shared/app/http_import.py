"""The HTTP import (`handle_http`, `POST /api/indicators/import`; CONTRACT.md "HTTP API").

HTTP time limit: the Functions host cuts an HTTP answer at 230 s whatever functionTimeout says. An HTTP
import therefore runs against HTTP_DEADLINE_SECONDS from the request's arrival: the lock wait counts, and the
Defender client stops instead of waiting past it (`DefenderClient.time_limit`); what was not submitted is
`failed` with a reason saying to resend it (200), or, when nothing was submitted, the answer is a 503.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from shared.app.http_answer import HttpAnswer
from shared.app.http_body import HttpProblem, ValueBuilder, check_body, error_body, overrides_from_params
from shared.app.runtime import RETRY_AFTER_SECONDS, Runtime, get_runtime
from shared.core.model import Outcome, RawRow, Status
from shared.core.settings import Settings, SettingsError
from shared.pipeline.job import guarded
from shared.pipeline.reports import FAILED, ReportWriter
from shared.storage.blobs import (
    ReportFiles,
)
from shared.storage.tenant_lock import LockLost, LockTimeout
from shared.tenant import feeds, session

log = logging.getLogger(__name__)


def handle_http(req: Any, *, invocation_id: str, runtime: Runtime | None = None) -> Any:
    """`POST /api/indicators/import` (CONTRACT.md "HTTP API"); returns a func.HttpResponse."""
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
            count_entries=count_entries,
        )
    except SettingsError as e:
        return HttpAnswer(400, error_body(400, f"query parameters: {e}"))
    except HttpProblem as p:
        return HttpAnswer(p.status, p.body(), p.headers)

    started = now or datetime.now(UTC)
    base = f"http/{started.strftime('%Y%m%dT%H%M%SZ')}-{invocation_id}"
    deadline = arrived + rt.options.http_deadline
    try:
        with rt.turn(timeout=max(0.0, min(rt.options.http_lock_wait, deadline - time.monotonic()))) as turn:
            return _run_http(rt, settings, parsed, base, started, turn, deadline=deadline)
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


def count_entries(data: bytes, name: str) -> int:
    """Indicator entries the readers find in a body (for MAX_HTTP_INDICATORS on CSV and text bodies)."""
    from shared.readers import read

    return sum(1 for item in read(io.BytesIO(data), name) if isinstance(item, RawRow))


def http_source(settings: Settings) -> str:
    """The input name HTTP imports give validation (`{source}` of DEFAULT_DESCRIPTION): stable from one
    request to the next, so defaulted descriptions compare equal and a resent indicator is `unchanged`."""
    return f"HTTP import ({settings.feed})" if settings.feed else "HTTP import"


def _run_http(
    rt: Runtime,
    settings: Settings,
    parsed: Any,
    base: str,
    started: datetime,
    turn: Any = None,
    *,
    deadline: float | None = None,
) -> HttpAnswer:
    from shared.checks.validate import validate
    from shared.pipeline.process import process_stream
    from shared.readers import read

    json_name, csv_name = f"{base}.report.json", f"{base}.report.csv"
    source = {"container": None, "name": base, "etag": None, "size": len(parsed.data)}
    name = http_source(settings)
    values = ValueBuilder()
    client = rt.defender
    with ReportFiles() as files, _time_limit(client, rt.options.http_deadline, deadline) as limit:
        writer = CollectingWriter(
            values, files.json, files.csv, source=source, started_at=started, dry_run=settings.dry_run, limit=limit,
            html_out=files.html,
        )  # fmt: skip
        steward, submitter = session.start(
            client,
            settings,
            entries_at_most=parsed.count,
            reopen=lambda: validate(read(io.BytesIO(parsed.data), parsed.name), settings, source=name, now=started),
        )
        result = process_stream(
            io.BytesIO(parsed.data),
            parsed.name,
            settings=settings,
            submitter=guarded(submitter, turn, steward),
            reports=writer,
            source=name,
            now=started,
            steward=steward,
        )
        files.upload(rt.reports, json_name, csv_name)
    summary = result.summary.as_dict()
    stopped = getattr(limit, "reached", None)
    if stopped is not None:
        log.warning("HTTP import %s: %d entries not submitted: %s", base, writer.stopped_by_limit, stopped.message)
    unreachable = unreachable_message(result, writer.first_failure)
    if unreachable and stopped is not None:
        # Nothing reached Defender before the time limit: as when Defender cannot be reached at all (503),
        # but the message says why, and Retry-After is the wait Defender (or the pacer) asked for.
        why = getattr(stopped, "why", "") or stopped.message
        message = (
            f"stopped before the HTTP time limit (HTTP_DEADLINE_SECONDS = {rt.options.http_deadline:g} s): {why}. "
            f"None of the {writer.stopped_by_limit} indicators was submitted: resend the request after the "
            "Retry-After delay (larger sets can be dropped into the indicators container, which has no time limit)"
        )
        body = error_body(503, message)
        body.update({"summary": summary, "report": json_name})
        wait = getattr(stopped, "wait", None)
        retry_after = math.ceil(wait) if wait else RETRY_AFTER_SECONDS
        return HttpAnswer(503, body, {"Retry-After": str(retry_after)})
    if unreachable:
        body = error_body(503, unreachable)
        body.update({"summary": summary, "report": json_name})
        return HttpAnswer(503, body)
    # Stopped part-way by the time limit: still a 200 (the request was processed, CONTRACT.md "HTTP API");
    # the entries not submitted are `isFailed` with a reason that says to resend them.
    return HttpAnswer(200, {"value": values.entries, "summary": summary, "report": json_name, "status": result.status})


def _time_limit(client: Any, limit_seconds: float, deadline: float | None) -> AbstractContextManager[Any]:
    """The client's time limit for the rest of an HTTP import (`DefenderClient.time_limit`).

    None for a client without one (a stand-in in tests) or without a deadline.
    """
    start = getattr(client, "time_limit", None)
    if deadline is None or not callable(start):
        return nullcontext(None)
    label = f"the HTTP time limit (HTTP_DEADLINE_SECONDS = {limit_seconds:g} s)"
    return start(deadline - time.monotonic(), label)  # type: ignore[no-any-return]


class CollectingWriter(ReportWriter):
    """A ReportWriter that also hands every final outcome to the HTTP `value` builder."""

    def __init__(self, values: ValueBuilder, *args: Any, limit: Any = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._values = values
        self._limit = limit  # the client's TimeLimit, if any: entries it stopped are counted
        self.first_failure: str | None = None
        self.stopped_by_limit = 0

    def add(self, outcome: Outcome) -> None:
        super().add(outcome)
        self._values.add(outcome)
        if outcome.status is Status.failed:
            if self.first_failure is None:
                self.first_failure = outcome.reason
            stopped = getattr(self._limit, "reached", None)
            if stopped is not None and outcome.reason and stopped.message in outcome.reason:
                self.stopped_by_limit += 1


def unreachable_message(result: Any, first_failure: str | None) -> str | None:
    """The 503 message when Defender or the identity endpoint could not be reached at all, else None.

    process_stream reports such a run `failed` without a fatal file-level problem (a file that could
    not be read is the other way to `failed`); every pending entry then carries the client's message,
    which names the endpoint and what to check (e.g. the missing Ti.ReadWrite.All role).
    """
    if result.status != FAILED or any(e.fatal for e in result.errors):
        return None
    return (
        f"Defender or the identity endpoint could not be reached: {first_failure or 'no answer'}. "
        "Check the managed identity, its Ti.ReadWrite.All role and DEFENDER_API_URL / DEFENDER_TOKEN_SCOPE."
    )
