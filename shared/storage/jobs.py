"""The job store and the job queue: job records, saved HTTP rows, progress logs and results as blobs in
JOBS_CONTAINER; doorbells in the JOBS_QUEUE storage queue (CONTRACT.md "Settings" [jobs]).

Layout of the container (a lifecycle rule collects it all `JOB_RESULT_DAYS + 1` days after the last change):
- `records/<id>.json`   the job record (`core.jobs.JobRecord`), updated under its ETag (If-Match), created
                         with If-None-Match so two deliveries of one event create one job;
- `inputs/<id>.jsonl`   an HTTP body's rows as its checks decoded them (one reader item a line);
- `progress/<id>.jsonl` an append blob: the final outcomes of the entries up to the checkpoint, in input
                         order, appended as batches are confirmed (what a resumed job replays);
- `results/<id>.json`   an HTTP job's final answer body (`value`, `summary`, `report`, `status`).

Queue messages are base64 text (host.json `messageEncoding`): the SDK sends plain text unless given
`TextBase64EncodePolicy`, which the host would then fail to decode.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from shared.core.jobs import JobRecord, item_from_json, item_to_json, outcome_from_json, outcome_to_json
from shared.core.model import Outcome, ReaderItem
from shared.storage.blobs import create_if_missing

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient
    from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)

# Progress lines are appended in blocks of at most this many bytes (an append blob block holds up to 4 MiB).
APPEND_BLOCK_BYTES = 1024 * 1024
# Longest doorbell delay the queue accepts (7 days); job retries are far shorter.
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600


class RecordConflict(Exception):
    """The record changed since it was read (another instance updated it): read it again."""


class JobStore:
    """Job records and their pieces in one container. Constructing it does no I/O."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        self._ready = False

    def _prepare(self) -> None:
        if not self._ready:
            create_if_missing(self.container)
            self._ready = True

    # ------------------------------------------------------------------------------ records

    def create(self, record: JobRecord) -> bool:
        """Create the record; False when a record with this id exists already (If-None-Match)."""
        from azure.core.exceptions import ResourceExistsError

        self._prepare()
        try:
            self.container.upload_blob(
                _record(record.id), record.to_json(), overwrite=False, metadata=record.summary_metadata()
            )
        except ResourceExistsError:
            return False
        return True

    def get(self, job_id: str) -> tuple[JobRecord, str] | None:
        """The record and its ETag, or None when there is no such job."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            download = self.container.download_blob(_record(job_id))
        except ResourceNotFoundError:
            return None
        return JobRecord.from_json(download.readall()), str(download.properties.etag)

    def update(self, record: JobRecord, etag: str) -> str:
        """Write the record if it is unchanged since `etag` was read; returns the new ETag."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        try:
            props = self.container.get_blob_client(_record(record.id)).upload_blob(
                record.to_json(),
                overwrite=True,
                metadata=record.summary_metadata(),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as e:
            raise RecordConflict(f"job {record.id} changed meanwhile") from e
        return str(props["etag"])

    def records(self) -> Iterator[JobRecord]:
        """Every job record (for health's counts by state; a scan, bounded by the lifecycle rule)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            for blob in self.container.list_blobs(name_starts_with="records/"):
                try:
                    yield JobRecord.from_json(self.container.download_blob(blob.name).readall())
                except ResourceNotFoundError:
                    continue
        except ResourceNotFoundError:
            return

    def pending_coalescible(self, tenant: str, *, now_text: str) -> list[str]:
        """Ids of the tenant's HTTP jobs that may join a drain (queued, or retrying and due), oldest first —
        read from the records' metadata, without downloading them."""
        found: list[tuple[str, str]] = []
        for blob in self.container.list_blobs(name_starts_with="records/", include=["metadata"]):
            meta = blob.metadata or {}
            if meta.get("tenant") != tenant or meta.get("kind") != "http" or meta.get("coalescible") != "1":
                continue
            state = meta.get("state")
            if state == "queued" or (state == "retrying" and meta.get("due", "") <= now_text):
                found.append((meta.get("created", ""), blob.name.removeprefix("records/").removesuffix(".json")))
        return [job_id for _, job_id in sorted(found)]

    # ------------------------------------------------------------------------------ saved rows

    def save_rows(self, job_id: str, items: Iterable[ReaderItem]) -> str:
        """Save an HTTP body's rows as its checks decoded them; returns the blob's name."""
        self._prepare()
        name = f"inputs/{job_id}.jsonl"
        data = "".join(item_to_json(i) + "\n" for i in items).encode()
        self.container.upload_blob(name, data, overwrite=True)
        return name

    def rows(self, name: str) -> Iterator[ReaderItem]:
        """The saved rows again, streamed line by line."""
        stream = self.container.download_blob(name)
        pending = b""
        for chunk in stream.chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line:
                    yield item_from_json(line.decode())
        if pending.strip():
            yield item_from_json(pending.decode())

    # ------------------------------------------------------------------------------ progress log

    def progress(self, job_id: str) -> list[Outcome]:
        """The logged final outcomes, in input order ([] when nothing was logged yet)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            data = self.container.download_blob(_progress(job_id)).readall()
        except ResourceNotFoundError:
            return []
        return [outcome_from_json(line) for line in data.decode().splitlines() if line]

    def start_progress(self, job_id: str) -> None:
        """An empty progress log (a fresh start; a resumed job keeps its log)."""
        self._prepare()
        self.container.get_blob_client(_progress(job_id)).create_append_blob()

    def append_progress(self, job_id: str, outcomes: Iterable[Outcome]) -> None:
        """Append final outcomes (in input order) to the job's progress log."""
        blob = self.container.get_blob_client(_progress(job_id))
        block: list[bytes] = []
        size = 0
        for o in outcomes:
            line = (outcome_to_json(o) + "\n").encode()
            if size + len(line) > APPEND_BLOCK_BYTES and block:
                blob.append_block(b"".join(block))
                block, size = [], 0
            block.append(line)
            size += len(line)
        if block:
            blob.append_block(b"".join(block))

    # ------------------------------------------------------------------------------ results

    def save_result(self, job_id: str, body: dict[str, object]) -> str:
        name = f"results/{job_id}.json"
        data = json.dumps(body, ensure_ascii=False).encode()
        self.container.upload_blob(name, data, overwrite=True)
        return name

    def result(self, name: str) -> dict[str, object]:
        body = json.loads(self.container.download_blob(name).readall())
        assert isinstance(body, dict)
        return body

    def forget_pieces(self, record: JobRecord) -> None:
        """Delete what only a running job needs (saved rows, progress log) once it is final."""
        from azure.core.exceptions import ResourceNotFoundError

        names = [_progress(record.id)]
        rows = record.input.get("rows")
        if isinstance(rows, str):
            names.append(rows)
        for name in names:
            try:
                self.container.delete_blob(name)
            except ResourceNotFoundError:
                pass


def _record(job_id: str) -> str:
    return f"records/{job_id}.json"


def _progress(job_id: str) -> str:
    return f"progress/{job_id}.jsonl"


class JobQueue:
    """Doorbells: a queue message naming a job (`{"id", "tenant"}`); the record is the truth."""

    def __init__(self, queue: QueueClient) -> None:
        self.queue = queue
        self._ready = False

    def ring(self, job_id: str, tenant: str, *, delay: float = 0.0) -> None:
        """Enqueue a doorbell, visible after `delay` seconds."""
        from azure.core.exceptions import ResourceExistsError

        if not self._ready:
            try:
                self.queue.create_queue()
            except ResourceExistsError:
                pass
            self._ready = True
        visible = max(0, min(MAX_VISIBILITY_SECONDS, round(delay)))
        message = json.dumps({"id": job_id, "tenant": tenant})
        self.queue.send_message(message, visibility_timeout=visible or None)


def doorbell(body: str) -> tuple[str, str]:
    """(job id, tenant key) of a doorbell's decoded body; ValueError when it is not one."""
    raw = json.loads(body)
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise ValueError("not a job doorbell")
    return raw["id"], str(raw.get("tenant") or "default")
