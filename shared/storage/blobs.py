"""Blob storage adapter: the data connection, blobs streamed in, reports streamed out.

- `parse_connection(env)` reads the Functions-style `IndicatorStorage` connection (pure, no I/O).
- `service_client(conn)` builds the one `BlobServiceClient` a process uses.
- `BlobStream` reads a blob as a file-like object over ranged `download_blob()` calls, pinned to one
  ETag, so a blob of hundreds of MB never sits in memory (CONTRACT.md "Inputs").
- `ReportFiles` spools the JSON and CSV reports and the HTML page to temporary files and uploads them
  in blocks, CSV first, then HTML, JSON last: a JSON report's presence means the run is complete.
- `complete_report_etag()` answers "is there a complete report for this blob ETag?" (idempotency,
  azure-functions-conventions.md #7).
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from shared.core.errors import InputChanged
from shared.core.vocab import secure_url

log = logging.getLogger(__name__)

CONNECTION_NAME = "IndicatorStorage"
# Metadata written on the JSON report: the ETag of the input blob it describes.
REPORT_ETAG_KEY = "source_etag"
# Reports above this size are spilled from memory to a temporary file while written.
SPOOL_BYTES = 4 * 1024 * 1024
# Range size for input reads. The SDK's download path briefly holds about nine times the range it
# fetches (measured with tracemalloc on azure-storage-blob 12.31: 4 MB ranges peak at 36 MB, 1 MB at
# 9 MB), so ranges stay small; a 50 MB input is 50 requests.
BLOCK_BYTES = 1024 * 1024


class ConnectionSettingsError(ValueError):
    """The `IndicatorStorage` connection is missing or half-configured; the message says what to set."""


class BlobChanged(InputChanged):
    """The input blob changed (new ETag) or disappeared while it was being read."""


@dataclass(frozen=True)
class StorageConnection:
    """Where the data account is and how to authenticate to it.

    `connection_string` is set for `UseDevelopmentStorage=true` / a connection string; otherwise
    `blob_service_uri` with a managed identity (`client_id` for a user-assigned one) or, when no
    `__credential` is given, azure-identity's DefaultAzureCredential as Functions does locally.
    """

    connection_string: str | None = None
    blob_service_uri: str | None = None
    credential: str | None = None
    client_id: str | None = None
    queue_service_uri: str | None = None  # [jobs] `__queueServiceUri`; derived from the blob URI when absent

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None

    def describe(self) -> str:
        """A secret-free description for logs and the health answer."""
        if self.connection_string is not None:
            if self.connection_string.strip().lower().startswith("usedevelopmentstorage=true"):
                return "development storage (Azurite)"
            return "connection string"
        how = "managed identity" if self.credential else "DefaultAzureCredential"
        if self.client_id:
            how += f" (client id {self.client_id})"
        return f"{safe_uri(self.blob_service_uri or '')} via {how}"


def parse_connection(env: Mapping[str, str], name: str = CONNECTION_NAME) -> StorageConnection:
    """Read a Functions-style connection: `<name>` or `<name>__blobServiceUri` (+ `__credential`, `__clientId`).

    Follows the host's rules (azure-functions-conventions.md "Connections", P10): `__credential`
    may only be `managedidentity`; `__clientId` without `__credential` is refused because the host
    and the blob binding would then disagree on the identity.
    """

    def get(key: str) -> str | None:
        v = env.get(key)
        return v.strip() if v is not None and v.strip() else None

    plain = get(name)
    if plain is not None:
        return StorageConnection(connection_string=plain)
    uri = get(f"{name}__blobServiceUri") or get(f"{name}__serviceUri")
    account = get(f"{name}__accountName")
    if uri is None and account is not None:
        uri = f"https://{account}.blob.core.windows.net"
    credential = get(f"{name}__credential")
    client_id = get(f"{name}__clientId")
    if uri is None:
        raise ConnectionSettingsError(
            f"{name} is not set: set {name} (a connection string, or UseDevelopmentStorage=true locally) "
            f"or {name}__blobServiceUri with {name}__credential=managedidentity"
        )
    if not secure_url(uri):
        raise ConnectionSettingsError(f"{name}__blobServiceUri must be an https:// URL, got {safe_uri(uri)!r}")
    if credential is not None and credential.lower() != "managedidentity":
        raise ConnectionSettingsError(f"{name}__credential must be 'managedidentity', got {credential!r}")
    if client_id is not None and credential is None:
        raise ConnectionSettingsError(f"{name}__clientId is set but {name}__credential=managedidentity is not")
    queue_uri = get(f"{name}__queueServiceUri")
    if queue_uri is None and account is not None:
        queue_uri = f"https://{account}.queue.core.windows.net"
    if queue_uri is None:
        queue_uri = uri.replace(".blob.", ".queue.", 1)
    if not secure_url(queue_uri):
        raise ConnectionSettingsError(f"{name}__queueServiceUri must be an https:// URL, got {safe_uri(queue_uri)!r}")
    return StorageConnection(
        blob_service_uri=uri.rstrip("/"),
        credential=credential,
        client_id=client_id,
        queue_service_uri=queue_uri.rstrip("/"),
    )


def safe_uri(uri: str) -> str:
    """A URI for logs and the health answer: no query (a SAS token), fragment or user info."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<unparsable URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def service_client(conn: StorageConnection, **options: Any) -> Any:
    """The BlobServiceClient for a connection (azure imports happen here, on first use); `options` go to the
    client (e.g. `retry_total=0` for a quick look that must not hang)."""
    from azure.storage.blob import BlobServiceClient

    if conn.connection_string is not None:
        return BlobServiceClient.from_connection_string(conn.connection_string, **options)
    assert conn.blob_service_uri is not None  # parse_connection guarantees one of the two forms
    return BlobServiceClient(conn.blob_service_uri, credential=_credential(conn), **options)


def _credential(conn: StorageConnection) -> Any:
    if conn.credential:
        from azure.identity import ManagedIdentityCredential

        # Only client_id selects a user-assigned identity (local-tooling.md §5: other kwargs are ignored).
        return ManagedIdentityCredential(client_id=conn.client_id) if conn.client_id else ManagedIdentityCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def queue_service(conn: StorageConnection) -> Any:
    """The QueueServiceClient for a connection (no I/O)."""
    from azure.storage.queue import QueueServiceClient

    if conn.connection_string is not None:
        return QueueServiceClient.from_connection_string(conn.connection_string)
    assert conn.queue_service_uri is not None
    return QueueServiceClient(conn.queue_service_uri, credential=_credential(conn))


def base64_queue(service: Any, name: str) -> Any:
    """A QueueClient writing base64 messages, as the host's queue trigger reads them (host.json
    `messageEncoding`; the SDK's default is plain text, and the service client's policies do not reach the
    queue clients it makes)."""
    from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

    return service.get_queue_client(
        name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
    )


def ensure_containers(service: Any, names: Iterator[str] | list[str] | tuple[str, ...]) -> None:
    """Create containers that do not exist yet (local stack; in Azure the deployment creates them)."""
    from azure.core.exceptions import ResourceExistsError

    for n in names:
        try:
            service.create_container(n)
        except ResourceExistsError:
            pass


def create_if_missing(container: Any) -> None:
    """Create one container unless it exists (a store's first use; in Azure the deployment creates it)."""
    from azure.core.exceptions import ResourceExistsError

    try:
        container.create_container()
    except ResourceExistsError:
        pass


@dataclass(frozen=True)
class BlobInfo:
    container: str
    name: str
    etag: str
    size: int
    metadata: Mapping[str, str]


def blob_info(blob_client: Any) -> BlobInfo:
    """The blob's identity as the report records it: container, name, ETag, size, metadata."""
    props = blob_client.get_blob_properties()
    return BlobInfo(
        container=blob_client.container_name,
        name=blob_client.blob_name,
        etag=str(props.etag),
        size=int(props.size),
        metadata=dict(props.metadata or {}),
    )


class BlobStream(io.RawIOBase):
    """A read-only file object over one blob version, fetched in ranges of `chunk_size` bytes.

    Every range request is pinned with `etag` + `MatchConditions.IfNotModified`: if someone uploads
    a new version mid-read, the next request fails with 412 and `BlobChanged` is raised instead of
    mixing two versions in one report. Explicit ranges (rather than the client's own chunking, whose
    first request may fetch 32 MB) keep at most one chunk in memory whatever client we are handed.
    """

    def __init__(self, blob_client: Any, etag: str, size: int, *, chunk_size: int = BLOCK_BYTES) -> None:
        super().__init__()
        self._client = blob_client
        self._etag = etag
        self._size = size
        self._chunk_size = chunk_size
        self._offset = 0
        self._buf = memoryview(b"")
        self.requests = 0

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        if self._offset >= self._size:
            return b""
        length = min(self._chunk_size, self._size - self._offset)
        try:
            data = self._client.download_blob(
                offset=self._offset,
                length=length,
                etag=self._etag,
                match_condition=MatchConditions.IfNotModified,
                max_concurrency=1,
            ).readall()
        except ResourceModifiedError as e:
            raise BlobChanged(f"the blob changed while it was read (expected ETag {self._etag})") from e
        except ResourceNotFoundError as e:
            raise BlobChanged("the blob was deleted while it was read") from e
        self.requests += 1
        self._offset += len(data)
        if len(data) != length:
            raise BlobChanged(f"the blob ended early at byte {self._offset} of {self._size}")
        return data

    def readinto(self, b: Any) -> int:
        if not self._buf:
            chunk = self._next_chunk()
            if not chunk:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def open_blob(blob_client: Any, etag: str, size: int) -> io.BufferedReader:
    """A buffered binary stream over one version of a blob (see BlobStream)."""
    return io.BufferedReader(BlobStream(blob_client, etag, size), buffer_size=256 * 1024)


class ReportFiles:
    """The report streams of one run: text files spooled to disk when large, then uploaded.

    `json`, `csv` and `html` are the text streams a ReportWriter writes into (`html` as its `html_out`).
    `upload()` sends the CSV first, then the HTML page when one was written, and the JSON last
    (CONTRACT.md "Reports"; the JSON's presence marks a complete run), each in blocks straight from
    the spool file, so the report never has to fit in memory.
    """

    def __init__(self) -> None:
        self._json_raw = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        self._csv_raw = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        self._html_raw = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        # newline="" keeps the CSV writer's \r\n line ends as written.
        self.json: TextIO = io.TextIOWrapper(self._json_raw, encoding="utf-8", newline="")  # type: ignore[arg-type]
        self.csv: TextIO = io.TextIOWrapper(self._csv_raw, encoding="utf-8", newline="")  # type: ignore[arg-type]
        self.html: TextIO = io.TextIOWrapper(self._html_raw, encoding="utf-8", newline="")  # type: ignore[arg-type]

    def upload(
        self,
        container: Any,
        json_name: str,
        csv_name: str,
        *,
        metadata: Mapping[str, str] | None = None,
        html_name: str | None = None,
    ) -> None:
        """CSV, then the HTML page (if anything was written to `html`; named `html_name`, by default the JSON
        report's name ending `.html`), then the JSON report with `metadata`."""
        from azure.storage.blob import ContentSettings

        self.html.flush()
        files: list[tuple[TextIO, Any, str, str, Mapping[str, str] | None]] = [
            (self.csv, self._csv_raw, csv_name, "text/csv; charset=utf-8", None)
        ]
        if self._html_raw.tell():
            page = html_name or json_name.removesuffix(".json") + ".html"
            files.append((self.html, self._html_raw, page, "text/html; charset=utf-8", None))
        files.append((self.json, self._json_raw, json_name, "application/json; charset=utf-8", metadata))
        for text, raw, name, ctype, meta in files:
            text.flush()
            length = raw.tell()
            raw.seek(0)
            container.upload_blob(
                name,
                raw,
                length=length,
                overwrite=True,
                metadata=dict(meta) if meta else None,
                content_settings=ContentSettings(content_type=ctype),
                max_concurrency=1,
            )
            raw.seek(0, io.SEEK_END)

    def close(self) -> None:
        for f in (self.json, self.csv, self.html):
            try:
                f.close()
            except ValueError:
                pass

    def __enter__(self) -> ReportFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobReports:
    """One job's reports in the reports container (`pipeline.job.Reports`): spooled while the job writes
    them, then uploaded CSV first, the HTML page, and JSON last; `etag` (a blob input's) makes the JSON report
    the idempotency marker of that version (`already_done`)."""

    def __init__(self, container: Any, json_name: str, csv_name: str, *, etag: str | None = None) -> None:
        self.container = container
        self.json_name = json_name
        self.csv_name = csv_name
        self.etag = etag
        self._files: ReportFiles | None = None

    def already_done(self) -> bool:
        return self.etag is not None and has_complete_report(self.container, self.json_name, self.etag)

    @contextmanager
    def open(self) -> Iterator[tuple[TextIO, TextIO, TextIO]]:
        """Fresh spooled streams; kept after the block for `publish` (closed at once if the block raised)."""
        if self._files is not None:
            self._files.close()
        files = self._files = ReportFiles()
        try:
            yield files.json, files.csv, files.html
        except BaseException:
            files.close()
            self._files = None
            raise

    def publish(self) -> None:
        files = self._files
        if files is None:
            raise RuntimeError("no reports to publish: open() was not used")
        try:
            files.upload(self.container, self.json_name, self.csv_name, metadata=report_metadata(self.etag))
        finally:
            files.close()
            self._files = None


def _bare_etag(etag: str) -> str:
    # Metadata values are header values: store the ETag without its quotes.
    return etag.strip().strip('"')


def report_metadata(etag: str | None) -> dict[str, str]:
    return {REPORT_ETAG_KEY: _bare_etag(etag)} if etag else {}


def complete_report_etag(container: Any, json_name: str) -> str | None:
    """The input ETag a complete JSON report was written for, or None when there is no such report."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        props = container.get_blob_client(json_name).get_blob_properties()
    except ResourceNotFoundError:
        return None
    return (props.metadata or {}).get(REPORT_ETAG_KEY)


def has_complete_report(container: Any, json_name: str, etag: str) -> bool:
    """True when a complete report for exactly this blob version (ETag) already exists."""
    return complete_report_etag(container, json_name) == _bare_etag(etag)
