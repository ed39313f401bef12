"""One attempt of one queued job (`Worker` and `Drain` make them): its `pipeline.job.Job` description, the
progress log it extends, the HTTP `value` list it builds, and the client it calls Defender through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.app.http_body import ValueBuilder
from shared.app.runtime import Runtime
from shared.core import telemetry as tm
from shared.core.errors import DefenderError
from shared.core.jobs import JobRecord, now_text, parse_when
from shared.core.model import Outcome, ReaderItem
from shared.core.options import InputOptions
from shared.pipeline.job import (
    HeldTurn,
    Job,
    JobHooks,
    JobResult,
    Lease,
    SavedItems,
    run_job,
)
from shared.storage.blobs import BlobReports, open_blob
from shared.storage.jobs import JobStore, RecordConflict
from shared.tenant.drain import DrainTenant
from shared.tenant.mirrored import TenantMirror

if TYPE_CHECKING:
    from shared.app.drain import Shared
    from shared.app.worker import Worker
    from shared.pipeline.job import DefenderLike

log = logging.getLogger(__name__)

LOG_EVERY_ENTRIES = 1000  # progress is logged at least this often, also between batches


class Attempt:
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
            "report_source": report_source(rec),
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
        return run_job(self.job(), client=client, turn=HeldTurn(lease), reports=job_reports(self.rt, self.record),
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


def report_source(record: JobRecord) -> dict[str, object]:
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


def job_reports(rt: Runtime, record: JobRecord) -> BlobReports:
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
