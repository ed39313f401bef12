"""The blob drop (`handle_blob`; CONTRACT.md "Function names", "Reports").

1. per-file overrides from blob metadata — a bad value gives a `failed` report naming the key;
2. the tenant lock, waited for at most BLOB_LOCK_WAIT_SECONDS — if it cannot be had, `LockTimeout`
   is raised so the host retries the event (and poisons it after host.json's `poisonBlobThreshold`);
3. inside the lock: a complete report for this blob's ETag means the event was already handled
   (Event Grid delivers at least once, possibly concurrently) — nothing is submitted again;
4. otherwise the quota steward reads the tenant (List) and, when the blob may not fit the room left,
   ranks it in a first pass over the same blob version (`shared.tenant.session`); then the blob is
   streamed through `process_stream`, pinned to its ETag; the CSV report is uploaded first and the JSON
   report last, so its presence means complete. The input is never changed or deleted.

The one place where an unexpected exception of a blob run is handled (STYLE.md "Errors"): it is raised,
so the host retries the event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.app.runtime import Runtime, get_runtime
from shared.core.settings import Settings, SettingsError
from shared.pipeline.job import Job, publish_failed_report, run_job
from shared.pipeline.reports import report_names, report_stem
from shared.storage.blobs import BlobInfo, BlobReports, blob_info, open_blob
from shared.storage.tenant_lock import LockLost, LockTimeout
from shared.tenant import feeds

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

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


def handle_blob(blob_client: BlobClient, *, runtime: Runtime | None = None) -> BlobRun:
    """Import one dropped blob (see the module docstring for the steps and guarantees)."""
    from azure.core.exceptions import ResourceNotFoundError

    rt = runtime or get_runtime()
    where = {"container": blob_client.container_name, "name": blob_client.blob_name}
    if blob_client.container_name != rt.settings.indicators_container:
        # The trigger path binds to INDICATORS_CONTAINER, but a misrouted Event Grid subscription or a caller
        # of this function must never make the app import its own reports (a report of the report, and so
        # on) or lock blobs (CONTRACT.md "Settings": REPORTS_CONTAINER is never the watched container).
        log.warning("blob %s/%s is outside the watched container %s: not imported", blob_client.container_name,
                    blob_client.blob_name, rt.settings.indicators_container)  # fmt: skip
        return BlobRun(where, "", "")
    try:
        info = blob_info(blob_client)
    except ResourceNotFoundError:
        # Deleted before we got to it: nothing to import and nothing to report (the host does the same
        # for its own internal message, azure-functions-conventions.md #7).
        log.warning("blob %s/%s no longer exists: nothing to import", blob_client.container_name, blob_client.blob_name)
        return BlobRun(where, "", "")
    json_name, csv_name = report_names(info.name)
    reports = BlobReports(rt.reports, json_name, csv_name, etag=info.etag)
    job = blob_job(rt, blob_client, info)
    try:
        settings = rt.settings.with_overrides(feeds.blob_overrides(info.name, info.metadata))
        feeds.check_sync(settings)
    except SettingsError as e:
        log.warning("blob %s/%s: bad metadata: %s", info.container, info.name, e)
        publish_failed_report(reports, job, f"blob metadata: {e}")
        return BlobRun(dict(job.report_source), json_name, csv_name, status="failed")
    job = blob_job(rt, blob_client, info, settings=settings)
    log.info("importing %s/%s (ETag %s, %d bytes)%s", info.container, info.name, job.report_source["etag"],
             info.size, " as a dry run" if settings.dry_run else "")  # fmt: skip
    try:
        # The steward lists the tenant in a dry run too, so the client is always there.
        result = run_job(job, client=rt.defender, turn=rt, reports=reports)
    except LockLost as e:
        # No report: the run is incomplete. The host retries the event; what was submitted is `unchanged` then.
        log.error("blob %s/%s: %s; stopped, the host will retry", info.container, info.name, e)
        raise
    except LockTimeout:
        # Raising makes the host retry the event later (poisoned after poisonBlobThreshold attempts).
        log.warning("blob %s/%s: tenant lock busy for %.0f s; the host will retry", info.container, info.name,
                    rt.options.blob_lock_wait)  # fmt: skip
        raise
    run = BlobRun(result.source, json_name, csv_name, status=result.status, already_done=result.already_done)
    if result.run is not None:
        run.summary = result.summary.as_dict()
        log.info("%s/%s: %s %s", info.container, info.name, result.status, run.summary)
    return run


def blob_job(rt: Runtime, blob_client: BlobClient, info: BlobInfo, *, settings: Settings | None = None) -> Job:
    """The job of one blob version: read pinned to its ETag (every read, the ranking pass's too)."""
    return Job(
        name=info.name,
        source=info.name,
        report_source={
            "container": info.container,
            "name": info.name,
            "etag": info.etag.strip('"'),
            "size": info.size,
            # A name past Azure's limit gives shortened report names; `name` stays the original (report_stem).
            **({"reportNameShortened": True} if report_stem(info.name)[1] else {}),
        },
        settings=settings or rt.settings,
        started=datetime.now(UTC),  # also validation's clock, the same for the ranking pass and the real one
        open_input=lambda: open_blob(blob_client, info.etag, info.size),
        size=info.size,
        lock_wait=rt.options.blob_lock_wait,
    )
