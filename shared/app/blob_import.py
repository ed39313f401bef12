"""The blob drop (`handle_blob`; CONTRACT.md "Function names", "Reports"): a dropped file becomes a queued job.

The trigger checks the event, creates the job record and rings its doorbell, and returns at once: nothing
waits for the tenant's turn on an instance (the queue worker, `app/worker.py`, imports it).

- A blob outside INDICATORS_CONTAINER is never imported (a report of a report, a lock blob).
- The job's id is derived from the blob's container, name and ETag, and the record is created with
  If-None-Match: Event Grid delivers at least once, possibly concurrently, and one version is one job. A job
  that exists and is not final gets another doorbell (one may have been lost); a final one, nothing.
- Bad per-file overrides in the metadata give a `failed` report naming the key, at once (no job).
- The reports appear only when the job is final (CSV first, the HTML page, JSON last: the JSON means complete).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.app.runtime import Runtime, get_runtime
from shared.core.jobs import JobRecord, blob_job_id, now_text
from shared.core.options import InputOptions
from shared.core.settings import SettingsError
from shared.pipeline.job import Job, publish_failed_report
from shared.pipeline.reports import html_name, report_names, report_stem
from shared.storage.blobs import BlobReports, blob_info
from shared.tenant import feeds

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

log = logging.getLogger(__name__)


@dataclass
class BlobRun:
    """What one blob invocation did (returned for the demo and tests; the host ignores it)."""

    source: dict[str, object]
    report_json: str
    report_csv: str
    status: str | None = None
    summary: dict[str, int] = field(default_factory=dict)
    already_done: bool = False
    job: str | None = None  # the job's id (its record is in JOBS_CONTAINER)

    @property
    def report_html(self) -> str:
        """The HTML page beside the JSON report ("" when there is no report)."""
        return html_name(self.report_json) if self.report_json else ""


def handle_blob(blob_client: BlobClient, *, runtime: Runtime | None = None) -> BlobRun:
    """Turn one dropped blob into a queued job (see the module docstring)."""
    from azure.core.exceptions import ResourceNotFoundError

    rt = runtime or get_runtime()
    where: dict[str, object] = {"container": blob_client.container_name, "name": blob_client.blob_name}
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
    source: dict[str, object] = {"container": info.container, "name": info.name, "etag": info.etag.strip('"'),
                                 "size": info.size}  # fmt: skip
    if report_stem(info.name)[1]:
        source["reportNameShortened"] = True  # past Azure's blob-name limit; `name` stays the original
    overrides = feeds.blob_overrides(info.name, info.metadata)
    try:
        InputOptions.parse(overrides).check_sync()
    except SettingsError as e:
        log.warning("blob %s/%s: bad metadata: %s", info.container, info.name, e)
        reports = BlobReports(rt.reports, json_name, csv_name, etag=info.etag)
        job = Job(name=info.name, source=info.name, report_source=source, settings=rt.settings,
                  started=datetime.now(UTC))  # fmt: skip
        publish_failed_report(reports, job, f"blob metadata: {e}")
        return BlobRun(source, json_name, csv_name, status="failed")
    record = JobRecord(
        id=blob_job_id(info.container, info.name, info.etag),
        kind="blob",
        input={**source, "etag": info.etag},
        report=json_name,
        created_at=now_text(),
        started=now_text(),
        options=dict(overrides),
    )
    created = rt.jobs.create(record)
    if not created:
        found = rt.jobs.get(record.id)
        if found is not None and found[0].final:
            log.info("blob %s/%s (ETag %s): its job is final already; nothing to do", info.container, info.name,
                     source["etag"])  # fmt: skip
            return BlobRun(source, json_name, csv_name, status=found[0].status, already_done=True, job=record.id)
    rt.queue.ring(record.id, record.tenant)
    log.info("blob %s/%s (ETag %s, %d bytes): job %s %s", info.container, info.name, source["etag"], info.size,
             record.id, "queued" if created else "rung again")  # fmt: skip
    return BlobRun(source, json_name, csv_name, job=record.id)
