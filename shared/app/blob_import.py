"""The blob drop (`handle_blob`; CONTRACT.md "Function names", "Reports").

1. per-file overrides from blob metadata — a bad value gives a `failed` report naming the key;
2. the tenant lock, waited for at most BLOB_LOCK_WAIT_SECONDS — if it cannot be had, `LockTimeout`
   is raised so the host retries the event (and poisons it after host.json's `poisonBlobThreshold`);
3. inside the lock: a complete report for this blob's ETag means the event was already handled
   (Event Grid delivers at least once, possibly concurrently) — nothing is submitted again;
4. otherwise the quota steward reads the tenant (List) and, when the blob may not fit the room left,
   ranks it in a first pass over the same blob version (`shared.tenant.session`); then the blob is
   streamed through `process_stream`, pinned to its ETag; the CSV report is uploaded first, then the HTML
   page, and the JSON report last, so its presence means complete. The input is never changed or deleted.

The one place where an unexpected exception of a blob run is handled (STYLE.md "Errors"): it is raised,
so the host retries the event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.app.runtime import Runtime, get_runtime
from shared.core.model import FileProblem, Summary
from shared.core.settings import Settings, SettingsError
from shared.pipeline.job import guarded
from shared.pipeline.reports import FAILED, ReportWriter, html_name, report_names
from shared.storage.blobs import (
    BlobChanged,
    ReportFiles,
    blob_info,
    has_complete_report,
    open_blob,
    report_metadata,
)
from shared.storage.tenant_lock import LockLost, LockTimeout
from shared.tenant import feeds, session

log = logging.getLogger(__name__)


@dataclass
class BlobRun:
    """What one blob invocation did (returned for the demo and tests; the host ignores it)."""

    source: dict[str, Any]
    report_json: str
    report_csv: str
    status: str | None = None
    summary: dict[str, int] = field(default_factory=dict)
    already_done: bool = False

    @property
    def report_html(self) -> str:
        """The HTML page beside the JSON report ("" when there is no report)."""
        return html_name(self.report_json) if self.report_json else ""


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
        settings = rt.settings.with_overrides(feeds.blob_overrides(info.name, info.metadata))
        feeds.check_sync(settings)
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
    from shared.pipeline.process import process_stream

    started = datetime.now(UTC)  # also validation's clock, the same for the ranking pass and the real one
    client = rt.defender  # the steward lists the tenant in a dry run too
    log.info("importing %s/%s (ETag %s, %d bytes)%s", info.container, info.name, run.source["etag"], info.size,
             " as a dry run" if settings.dry_run else "")  # fmt: skip
    with ReportFiles() as files, open_blob(blob_client, info.etag, info.size) as stream:
        writer = PinnedBlobWriter(
            stream.raw, files.json, files.csv, source=run.source, started_at=started, dry_run=settings.dry_run,
            html_out=files.html,
        )  # fmt: skip
        try:
            steward, submitter = session.start(
                client,
                settings,
                entries_at_most=session.entries_bound(stream.peek(2)[:2], info.size),
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
    from shared.checks.validate import validate
    from shared.readers import read

    with open_blob(blob_client, info.etag, info.size) as stream:
        yield from validate(read(stream, info.name), settings, source=info.name, now=now)


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
        w = ReportWriter(files.json, files.csv, source=run.source, started_at=now, dry_run=dry_run, html_out=files.html)
        w.error(FileProblem(message))
        w.finish(Summary(), FAILED, finished_at=datetime.now(UTC))
        files.upload(rt.reports, run.report_json, run.report_csv, metadata=report_metadata(run.source["etag"]))
    return FAILED
