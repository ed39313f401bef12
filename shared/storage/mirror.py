"""The tenant mirror's blob: `<state container>/<tenant key>/mirror.ndjson.gz` in the data account
(STATE_CONTAINER, default `indicator-state`; CONTRACT.md "Settings" [mirror]).

Bytes only: the lines are `tenant.mirror`'s (NDJSON), gzip-compressed here, streamed both ways through a
spooled temporary file, so a 15,000-indicator mirror is never one large string. Every write is conditional on
the blob's ETag (If-Match; If-None-Match when there is no mirror yet). Nothing here raises for a storage
problem on the way out: the mirror is advice, and a failed write is answered None (the caller then deletes
the mirror, so the next turn lists the tenant). A mirror that cannot be read raises ValueError.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from shared.storage.blobs import create_if_missing

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

log = logging.getLogger(__name__)

DEFAULT_STATE_CONTAINER = "indicator-state"
MIRROR_NAME = "mirror.ndjson.gz"
SPOOL_BYTES = 4 * 1024 * 1024  # in memory up to this size, then a private temporary file


class MirrorBlob:
    """One tenant key's mirror blob. Constructing it does no I/O."""

    def __init__(self, container: ContainerClient, tenant: str) -> None:
        self.container = container
        self.name = f"{tenant}/{MIRROR_NAME}"
        self._ready = False

    def _prepare(self) -> None:
        if not self._ready:
            create_if_missing(self.container)
            self._ready = True

    def read(self, known_etag: str | None = None) -> tuple[str, Mapping[str, str], Iterator[bytes] | None] | None:
        """(ETag, metadata, lines) of the mirror, None when there is none; ValueError when it cannot be read.

        `known_etag`: the ETag of a mirror the caller holds already; when the blob still has it (If-None-Match,
        `304`), nothing is downloaded and the answer is (that ETag, {}, None).
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            AzureError,
            ResourceModifiedError,
            ResourceNotFoundError,
            ResourceNotModifiedError,
        )

        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # closed by the line reader, or below
        try:
            if known_etag is not None:
                download = self.container.download_blob(
                    self.name, etag=known_etag, match_condition=MatchConditions.IfModified
                )
            else:
                download = self.container.download_blob(self.name)
            download.readinto(spool)
        except (ResourceNotModifiedError, ResourceModifiedError):
            # 304 to If-None-Match (the SDK names it "ConditionNotMet"): the blob is still at `known_etag`.
            spool.close()
            if known_etag is None:
                raise ValueError("the mirror blob answered a condition that was not asked") from None
            return known_etag, {}, None
        except ResourceNotFoundError:
            spool.close()
            return None
        except AzureError as e:
            spool.close()
            raise ValueError(f"the mirror blob could not be read: {type(e).__name__}: {_first_line(e)}") from e
        props = download.properties
        spool.seek(0)
        return str(props.etag), dict(props.metadata or {}), _lines(spool)

    def mark(self, etag: str, metadata: Mapping[str, str]) -> str | None:
        """Set the blob's metadata if its ETag is still `etag`: the new ETag, or None."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        try:
            done = self.container.get_blob_client(self.name).set_blob_metadata(
                dict(metadata), etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except AzureError as e:
            log.warning("tenant mirror %s: setting its metadata failed: %s", self.name, _first_line(e))
            return None
        return str(done["etag"])

    def write(self, lines: Iterable[bytes], *, etag: str | None, metadata: Mapping[str, str]) -> str | None:
        """Replace the mirror with `lines`, gzip-compressed, if its ETag is still `etag` (None: only if there is
        no mirror): the new ETag, or None when the condition failed or the upload did."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError
        from azure.storage.blob import ContentSettings

        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            with gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=6, mtime=0) as gz:
                for line in lines:
                    gz.write(line)
            size = spool.tell()
            spool.seek(0)
            blob = self.container.get_blob_client(self.name)
            # If-Match the ETag read (or marked); If-None-Match * when there was no mirror to read.
            match = MatchConditions.IfNotModified if etag is not None else MatchConditions.IfMissing
            conditional: dict[str, Any] = {"etag": etag} if etag is not None else {}
            try:
                self._prepare()
                done = blob.upload_blob(
                    spool,
                    length=size,
                    overwrite=True,
                    metadata=dict(metadata),
                    content_settings=ContentSettings(content_type="application/gzip"),  # no Content-Encoding
                    match_condition=match,
                    **conditional,
                )
            except AzureError as e:
                log.warning("tenant mirror %s: writing it failed: %s", self.name, _first_line(e))
                return None
        return str(done["etag"])

    def forget(self) -> None:
        """Delete the mirror (the next turn lists the tenant); gone already is just as good."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self.container.delete_blob(self.name)
        except ResourceNotFoundError:
            pass
        except AzureError as e:
            log.warning("tenant mirror %s: deleting it failed: %s", self.name, _first_line(e))


def _lines(spool: IO[bytes]) -> Iterator[bytes]:
    """The lines of the gzip in `spool`; a bad gzip is a ValueError. Closes the spool at the end."""
    try:
        with gzip.GzipFile(fileobj=spool, mode="rb") as gz:
            yield from gz
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"the mirror blob is not a whole gzip stream: {e}") from e
    finally:
        spool.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
