"""Entry points of the function app: `handle_blob`, `handle_http`, `handle_health`.

Settings and clients are built once per process, lazily, on the first invocation (`get_runtime()`),
and reused by every invocation after it (azure-functions-conventions.md P12). Each handler is the
one place where an unexpected exception is caught and turned into a `failed` report or a 5xx
(STYLE.md "Errors").

Blob drop (CONTRACT.md "Function names", "Reports"; issue "Triggers"):
1. per-file overrides from blob metadata — a bad value gives a `failed` report naming the key;
2. the tenant lock, waited for at most BLOB_LOCK_WAIT_SECONDS — if it cannot be had, `LockTimeout`
   is raised so the host retries the event (and poisons it after host.json's `poisonBlobThreshold`);
3. inside the lock: a complete report for this blob's ETag means the event was already handled
   (Event Grid delivers at least once, possibly concurrently) — nothing is submitted again;
4. otherwise the quota steward reads the tenant (List) and, when the blob may not fit the room left,
   ranks it in a first pass over the same blob version (issue 6; `shared.stewarding`); then the blob is
   streamed through `process_stream`, pinned to its ETag; the CSV report is uploaded first and the JSON
   report last, so its presence means complete. The input is never changed or deleted.

Feed sync: a blob named `feeds/<feed>/<file>` is the full current state of feed `<feed>` (as if its
metadata said `feed=<feed>`, `sync=true`); the blob's own metadata wins over the folder.

HTTP time limit: the Functions host cuts an HTTP answer at 230 s whatever functionTimeout says. An HTTP
import therefore runs against HTTP_DEADLINE_SECONDS from the request's arrival: the lock wait counts, and the
Defender client stops instead of waiting past it (`DefenderClient.time_limit`); what was not submitted is
`failed` with a reason saying to resend it (200), or, when nothing was submitted, the answer is a 503.

Pacing across instances: the tenant lock hands each holder's recent Defender calls to the next holder
(`Runtime.turn`, `shared.lock`, `shared.defender.pacing`), so MAX_CALLS_PER_MINUTE holds tenant-wide.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import stewarding
from shared.defender.pacing import CallPacer, handover_metadata, seed_from_metadata
from shared.http_api import HttpProblem, ValueBuilder, check_body, error_body, overrides_from_params
from shared.lock import LockHandle, LockLost, LockTimeout, TenantLock
from shared.model import FileProblem, Outcome, RawRow, Status, Summary
from shared.reports import FAILED, ReportWriter, report_names
from shared.settings import Settings, SettingsError
from shared.storage import (
    BlobChanged,
    ConnectionSettingsError,
    ReportFiles,
    blob_info,
    has_complete_report,
    open_blob,
    parse_connection,
    report_metadata,
    service_client,
)

log = logging.getLogger(__name__)

DEFAULT_LOCK_CONTAINER = "indicator-locks"
DEFAULT_HTTP_LOCK_WAIT = 60.0  # HTTP answers must come well inside the 230-second limit
# The Functions host answers 504 itself after 230 s of an HTTP invocation, whatever functionTimeout says
# (azure-functions-conventions.md); the default leaves half a minute for the report upload and the answer.
DEFAULT_HTTP_DEADLINE = 200.0
HTTP_DEADLINE_BOUNDS = (10.0, 225.0)
DEFAULT_BLOB_LOCK_WAIT = 900.0  # well inside host.json's functionTimeout (30 min)
RETRY_AFTER_SECONDS = 30  # the holder renews every 20 s; a crashed one frees the lock within 60 s
# The Defender client's pacers handed over through the tenant lock (name in the lock blob's metadata, attribute).
HANDED_OVER_PACERS = (("import", "pacer"), ("list", "list_pacer"), ("batchdelete", "batch_delete_pacer"),
                      ("delete", "delete_pacer"))  # fmt: skip


@dataclass(frozen=True)
class AppOptions:
    """App settings of the function app itself (not of the pipeline): where the lock lives, wait bounds."""

    lock_container: str = DEFAULT_LOCK_CONTAINER
    http_lock_wait: float = DEFAULT_HTTP_LOCK_WAIT
    blob_lock_wait: float = DEFAULT_BLOB_LOCK_WAIT
    http_deadline: float = DEFAULT_HTTP_DEADLINE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AppOptions:
        errors: list[str] = []
        kw: dict[str, Any] = {}

        def take(name: str, attr: str, conv: Any, check: Any = None) -> None:
            raw = (env.get(name) or "").strip()
            if not raw:
                return
            try:
                val = conv(raw)
            except ValueError as e:
                errors.append(f"{name}: {e}")
                return
            problem = check(val) if check else None
            if problem:
                errors.append(f"{name}: {problem}")
            else:
                kw[attr] = val

        take("LOCK_CONTAINER", "lock_container", str)
        take("HTTP_LOCK_WAIT_SECONDS", "http_lock_wait", float, lambda v: None if 0 <= v <= 180 else "must be 0 to 180")
        take("BLOB_LOCK_WAIT_SECONDS", "blob_lock_wait", float, lambda v: None if v >= 0 else "must be 0 or more")
        low, high = HTTP_DEADLINE_BOUNDS
        take("HTTP_DEADLINE_SECONDS", "http_deadline", float,
             lambda v: None if low <= v <= high else f"must be {low:g} to {high:g}")  # fmt: skip
        if errors:
            raise SettingsError("invalid settings: " + "; ".join(errors))
        return cls(**kw)


class Runtime:
    """Everything an invocation needs, built once per process. The constructor does no I/O."""

    def __init__(
        self,
        settings: Settings,
        options: AppOptions,
        service: Any,
        *,
        defender_factory: Any = None,
        lock_factory: Any = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.service = service
        self.reports = service.get_container_client(settings.reports_container)
        self.lock = (lock_factory or TenantLock)(service.get_container_client(options.lock_container))
        self._defender_factory = defender_factory
        self._defender: Any = None
        self._defender_lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kw: Any) -> Runtime:
        """Build from app settings; raises SettingsError / ConnectionSettingsError naming every bad one."""
        settings = Settings.from_env(env)
        options = AppOptions.from_env(env)
        problem = lock_container_problem(settings, options)
        if problem:
            raise SettingsError(problem)
        service = service_client(parse_connection(env))
        return cls(settings, options, service, **kw)

    @property
    def defender(self) -> Any:
        """The Defender client (one per process: its token cache and pacer are shared by invocations)."""
        with self._defender_lock:
            if self._defender is None:
                if self._defender_factory is not None:
                    self._defender = self._defender_factory(self.settings)
                else:
                    from shared.defender import make_client

                    self._defender = make_client(self.settings)
            return self._defender

    def turn(self, timeout: float) -> AbstractContextManager[LockHandle]:
        """The tenant's turn: the lock, with the pacing handover between holders (see `shared.lock`)."""
        return self.lock.hold(timeout, on_acquired=self._seed_pacers, publish=self._pacing_handover)

    def pacers(self) -> dict[str, CallPacer]:
        """The Defender client's pacers by handover name (builds the client: no I/O)."""
        client = self.defender
        found = {name: getattr(client, attr, None) for name, attr in HANDED_OVER_PACERS}
        return {name: p for name, p in found.items() if isinstance(p, CallPacer)}

    def _seed_pacers(self, metadata: Mapping[str, str]) -> None:
        booked = seed_from_metadata(self.pacers(), metadata, time.time())
        if booked:
            log.info("tenant lock: %d Defender calls of the last holder booked into this instance's pacers", booked)

    def _pacing_handover(self) -> dict[str, str] | None:
        if self._defender is None:  # never built: nothing to hand over (and the last handover stays)
            return None
        return handover_metadata(self.pacers(), time.time())


def lock_container_problem(settings: Settings, options: AppOptions) -> str | None:
    """The lock blob must live outside the watched and the report containers (CONTRACT.md "Defender calls")."""
    if options.lock_container in (settings.indicators_container, settings.reports_container):
        return "invalid settings: LOCK_CONTAINER must differ from the indicator and report containers"
    return None


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide Runtime, built from os.environ on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime.from_env(os.environ)
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install a Runtime (the demo, tests) or forget it so the next call rebuilds from os.environ."""
    global _runtime
    with _runtime_lock:
        _runtime = runtime


# ---------------------------------------------------------------------------------------------- blob


@dataclass
class BlobRun:
    """What one blob invocation did (returned for the demo and tests; the host ignores it)."""

    source: dict[str, Any]
    report_json: str
    report_csv: str
    status: str | None = None
    summary: dict[str, int] = field(default_factory=dict)
    already_done: bool = False


def handle_blob(blob_client: Any, *, runtime: Runtime | None = None) -> BlobRun:
    """Import one dropped blob (see the module docstring for the steps and guarantees)."""
    from azure.core.exceptions import ResourceNotFoundError

    rt = runtime or get_runtime()
    if blob_client.container_name != rt.settings.indicators_container:
        # The trigger path binds to INDICATORS_CONTAINER, but a misrouted Event Grid subscription or a caller
        # of this function must never make the app import its own reports (a report of the report, and so
        # on) or lock blobs (CONTRACT.md "Settings": REPORTS_CONTAINER is never the watched container).
        log.warning("blob %s/%s is outside the watched container %s: not imported", blob_client.container_name,
                    blob_client.blob_name, rt.settings.indicators_container)  # fmt: skip
        return BlobRun({"container": blob_client.container_name, "name": blob_client.blob_name}, "", "")
    try:
        info = blob_info(blob_client)
    except ResourceNotFoundError:
        # Deleted before we got to it: nothing to import and nothing to report (the host does the same
        # for its own internal message, azure-functions-conventions.md #7).
        log.warning("blob %s/%s no longer exists: nothing to import", blob_client.container_name, blob_client.blob_name)
        return BlobRun({"container": blob_client.container_name, "name": blob_client.blob_name}, "", "")
    json_name, csv_name = report_names(info.name)
    source = {
        "container": info.container,
        "name": info.name,
        "etag": info.etag.strip('"'),
        "size": info.size,
    }  # `format` is added by process_stream once the reader knows it
    run = BlobRun(source, json_name, csv_name)
    try:
        settings = rt.settings.with_overrides(stewarding.blob_overrides(info.name, info.metadata))
        stewarding.check_sync(settings)
    except SettingsError as e:
        log.warning("blob %s/%s: bad metadata: %s", info.container, info.name, e)
        run.status = _write_failed_report(rt, run, f"blob metadata: {e}", dry_run=rt.settings.dry_run)
        return run

    try:
        with rt.turn(timeout=rt.options.blob_lock_wait) as turn:
            if has_complete_report(rt.reports, json_name, info.etag):
                log.info("blob %s/%s (ETag %s) already has a complete report: nothing to do", *_where(source))
                run.already_done = True
                return run
            _import_blob(rt, blob_client, info, settings, run, turn)
    except LockLost as e:
        # No report: the run is incomplete. The host retries the event; what was submitted is `unchanged` then.
        log.error("blob %s/%s: %s; stopped, the host will retry", info.container, info.name, e)
        raise
    except LockTimeout:
        # Raising makes the host retry the event later (poisoned after poisonBlobThreshold attempts).
        log.warning("blob %s/%s: tenant lock busy for %.0f s; the host will retry", info.container, info.name,
                    rt.options.blob_lock_wait)  # fmt: skip
        raise
    return run


def _where(source: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return source["container"], source["name"], source["etag"]


def _import_blob(rt: Runtime, blob_client: Any, info: Any, settings: Settings, run: BlobRun, turn: Any = None) -> None:
    from shared.process import process_stream

    started = datetime.now(UTC)  # also validation's clock, the same for the ranking pass and the real one
    client = rt.defender  # the steward lists the tenant in a dry run too
    log.info("importing %s/%s (ETag %s, %d bytes)%s", info.container, info.name, run.source["etag"], info.size,
             " as a dry run" if settings.dry_run else "")  # fmt: skip
    with ReportFiles() as files, open_blob(blob_client, info.etag, info.size) as stream:
        writer = PinnedBlobWriter(
            stream.raw, files.json, files.csv, source=run.source, started_at=started, dry_run=settings.dry_run
        )
        try:
            steward, submitter = stewarding.start(
                client,
                settings,
                entries_at_most=stewarding.entries_bound(stream.peek(2)[:2], info.size),
                reopen=lambda: _revalidate_blob(blob_client, info, settings, started),
            )
            result = process_stream(
                stream,
                info.name,
                settings=settings,
                submitter=guarded(submitter, turn, steward),
                reports=writer,
                source=info.name,
                now=started,
                steward=steward,
            )
        except BlobChanged as e:
            # Raised before any row was read (readers turn later read errors into a file problem).
            log.warning("%s/%s: %s", info.container, info.name, e)
            run.status = _write_failed_report(
                rt, run, f"{e}; a new upload is imported by its own event", dry_run=settings.dry_run
            )
            return
        files.upload(rt.reports, run.report_json, run.report_csv, metadata=report_metadata(info.etag))
    run.status = writer.status or result.status
    run.summary = result.summary.as_dict()
    run.source = dict(writer.source)
    log.info("%s/%s: %s %s", info.container, info.name, result.status, run.summary)


def _revalidate_blob(blob_client: Any, info: Any, settings: Settings, now: datetime) -> Iterator[object]:
    """The steward's ranking pass: the same blob version (pinned to its ETag) read and validated again."""
    from shared.readers import read
    from shared.validate import validate

    with open_blob(blob_client, info.etag, info.size) as stream:
        yield from validate(read(stream, info.name), settings, source=info.name, now=now)


class GuardedSubmitter:
    """The Defender submitter, called only while the tenant lock is still held (`LockHandle.check`).

    A lease lost mid-import (renewals refused, or none succeeded for a lease period) raises LockLost before
    the next batch instead of calling on while another instance may hold the tenant's turn.
    """

    def __init__(self, inner: Any, turn: Any) -> None:
        self._inner = inner
        self._turn = turn

    @property
    def api_calls(self) -> int:
        return int(getattr(self._inner, "api_calls", 0))

    @property
    def retries(self) -> int:
        return int(getattr(self._inner, "retries", 0))

    def submit(self, batch: Any) -> Any:
        self._turn.check()
        return self._inner.submit(batch)


def guarded(submitter: Any, turn: Any, steward: Any = None) -> Any:
    """`submitter` wrapped in a GuardedSubmitter when there is one and the turn can be checked.

    The steward's deletes (action replacement, feed sync) are guarded by the same check.
    """
    check = getattr(turn, "check", None)
    if not callable(check):
        return submitter
    if steward is not None:
        steward.guard = check
    return submitter if submitter is None else GuardedSubmitter(submitter, turn)


class PinnedBlobWriter(ReportWriter):
    """The blob's ReportWriter: a run over a blob that changed mid-read is reported `failed`.

    The entries already read stay in the report (those submitted did reach Defender), but the run did
    not describe one version of the blob; the new version is imported by its own BlobCreated event.
    """

    def __init__(self, blob_stream: Any, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._blob_stream = blob_stream
        self.status: str | None = None

    def finish(self, summary: Summary, status: str, **kw: Any) -> None:
        if getattr(self._blob_stream, "changed", None) is not None:
            status = FAILED
        self.status = status
        super().finish(summary, status, **kw)


def _write_failed_report(rt: Runtime, run: BlobRun, message: str, *, dry_run: bool) -> str:
    """A report with no entries, status `failed` and one file-level error (bad metadata, ...)."""
    now = datetime.now(UTC)
    with ReportFiles() as files:
        w = ReportWriter(files.json, files.csv, source=run.source, started_at=now, dry_run=dry_run)
        w.error(FileProblem(message))
        w.finish(Summary(), FAILED, finished_at=datetime.now(UTC))
        files.upload(rt.reports, run.report_json, run.report_csv, metadata=report_metadata(run.source["etag"]))
    return FAILED


# ---------------------------------------------------------------------------------------------- http


@dataclass
class HttpAnswer:
    """An HTTP answer independent of azure.functions (function_app turns it into an HttpResponse)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> Any:
        import azure.functions as func

        return func.HttpResponse(
            json.dumps(self.body, ensure_ascii=False),
            status_code=self.status,
            headers=self.headers,
            mimetype="application/json",
            charset="utf-8",
        )


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
        stewarding.check_sync(settings)
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
    from shared.process import process_stream
    from shared.readers import read
    from shared.validate import validate

    json_name, csv_name = f"{base}.report.json", f"{base}.report.csv"
    source = {"container": None, "name": base, "etag": None, "size": len(parsed.data)}
    name = http_source(settings)
    values = ValueBuilder()
    client = rt.defender
    with ReportFiles() as files, _time_limit(client, rt.options.http_deadline, deadline) as limit:
        writer = CollectingWriter(
            values, files.json, files.csv, source=source, started_at=started, dry_run=settings.dry_run, limit=limit
        )
        steward, submitter = stewarding.start(
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


# -------------------------------------------------------------------------------------------- health


def handle_health(env: Mapping[str, str] | None = None) -> Any:
    return health_answer(env).to_response()


def health_answer(env: Mapping[str, str] | None = None) -> HttpAnswer:
    """Liveness plus whether the configuration is complete. Names settings, never their secret values."""
    env = os.environ if env is None else env
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings.from_env(env)
    except SettingsError as e:
        problems.append(str(e))
    try:
        options = AppOptions.from_env(env)
    except SettingsError as e:
        problems.append(str(e))
        options = AppOptions()
    if settings is not None:
        # Checked as Runtime.from_env checks it: health must not say "complete" when every import would fail.
        problem = lock_container_problem(settings, options)
        if problem:
            problems.append(problem)
        if settings.capacity_reserve >= settings.max_tenant_indicators:
            problems.append(
                f"CAPACITY_RESERVE ({settings.capacity_reserve}) leaves no room under MAX_TENANT_INDICATORS "
                f"({settings.max_tenant_indicators}): every new indicator would be skipped for tenant capacity"
            )
    storage = None
    try:
        storage = parse_connection(env).describe()
    except ConnectionSettingsError as e:
        problems.append(str(e))
    body: dict[str, Any] = {
        "status": "ok" if not problems else "misconfigured",
        "configurationComplete": not problems,
        "problems": problems,
        "storage": storage,
        "lockContainer": options.lock_container,
    }
    if settings is not None:
        body.update(
            {
                "defenderApiUrl": settings.defender_api_url,
                "tokenScope": settings.defender_token_scope,
                "managedIdentity": "user-assigned" if settings.azure_client_id else "system-assigned or developer",
                "indicatorsContainer": settings.indicators_container,
                "reportsContainer": settings.reports_container,
                "dryRun": settings.dry_run,
            }
        )
    # 200 either way: this is a liveness probe; a platform health check must not recycle the
    # instance over a setting only an operator can fix. `configurationComplete` tells the story.
    return HttpAnswer(200, body)
