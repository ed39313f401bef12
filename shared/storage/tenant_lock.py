"""The tenant lock: one import at a time per Defender tenant, across instances and invocations.

CONTRACT.md "Defender calls": a lease on a lock blob in the data storage account, outside the
watched container (LOCK_CONTAINER, default `indicator-locks`), renewed while held, released in
`finally`. The lease is taken for 60 seconds (the longest finite lease Azure grants) and renewed
every 20 seconds by a background thread, so a holder that crashes — and stops renewing — frees the
tenant within a minute. Waiting for the lock is bounded; `LockTimeout` says how long we waited.

The blob lock serialises imports; capacity checks and pacing are therefore tenant-wide. Pacing needs
one more step, because each process's pacer only knows its own calls: `hold(on_acquired=, publish=)`
hands the holder's recent calls over in the lock blob's metadata — written with the lease id at each
renewal and just before the release, read by the next holder right after it acquires
(`shared.defender.pacing.handover_metadata` / `seed_from_metadata`). A holder that crashes has
published its calls up to its last renewal (at most 20 s old).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

Publish = Callable[[], Mapping[str, str] | None]
OnAcquired = Callable[[Mapping[str, str]], None]

log = logging.getLogger(__name__)

DEFAULT_LOCK_CONTAINER = "indicator-locks"
DEFAULT_LOCK_BLOB = "defender-tenant.lock"
# Azure accepts 15..60 seconds or infinite (-1); infinite would never free a crashed holder's turn.
LEASE_SECONDS = 60
MIN_LEASE_SECONDS = 15


class LockTimeout(TimeoutError):
    """The tenant's turn could not be had within the bounded wait."""

    def __init__(self, waited: float, blob: str) -> None:
        super().__init__(f"another import holds the tenant lock ({blob}); gave up after {waited:.0f} s")
        self.waited = waited


class LockLost(RuntimeError):
    """The tenant lock's lease is gone while an import still runs: another holder may already have it."""


class TenantLock:
    """A blob-lease mutex. Constructing it does no I/O; `hold()` does.

    `container` is an azure.storage.blob ContainerClient. `clock`/`sleep` are injectable so the
    waiting logic can be tested without waiting.
    """

    def __init__(
        self,
        container: Any,
        blob_name: str = DEFAULT_LOCK_BLOB,
        *,
        lease_seconds: int = LEASE_SECONDS,
        renew_every: float | None = None,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not MIN_LEASE_SECONDS <= lease_seconds <= LEASE_SECONDS:
            raise ValueError(f"lease_seconds must be {MIN_LEASE_SECONDS} to {LEASE_SECONDS}, got {lease_seconds}")
        self._container = container
        self._blob_name = blob_name
        self._lease_seconds = lease_seconds
        self._renew_every = renew_every if renew_every is not None else lease_seconds / 3
        self._poll = poll_interval
        self._clock = clock
        self._sleep = sleep
        self._prepared = False

    @property
    def name(self) -> str:
        return f"{self._container.container_name}/{self._blob_name}"

    def _prepare(self) -> None:
        """Create the container and the empty lock blob once (both may already exist)."""
        if self._prepared:
            return
        from azure.core.exceptions import ResourceExistsError

        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        try:
            self._container.upload_blob(self._blob_name, b"", overwrite=False)
        except ResourceExistsError:
            pass  # exists already, possibly leased by another holder
        self._prepared = True

    def try_acquire(self) -> Any | None:
        """One attempt: the BlobLeaseClient when we got the lease, None when someone else holds it."""
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import BlobLeaseClient

        self._prepare()
        lease = BlobLeaseClient(self._container.get_blob_client(self._blob_name))
        try:
            lease.acquire(lease_duration=self._lease_seconds)
        except HttpResponseError as e:
            if e.status_code == 409:  # LeaseAlreadyPresent
                return None
            raise
        return lease

    def acquire(self, timeout: float) -> Any:
        """Wait up to `timeout` seconds for the lease; raise LockTimeout when it cannot be had."""
        start = self._clock()
        while True:
            lease = self.try_acquire()
            if lease is not None:
                log.debug("tenant lock %s acquired after %.1f s", self.name, self._clock() - start)
                return lease
            waited = self._clock() - start
            if waited >= timeout:
                raise LockTimeout(waited, self.name)
            self._sleep(min(self._poll, max(timeout - waited, 0.0)))

    @contextmanager
    def hold(
        self, timeout: float, *, on_acquired: OnAcquired | None = None, publish: Publish | None = None
    ) -> Iterator[LockHandle]:
        """Hold the tenant lock for the `with` block: renewed in the background, released in `finally`.

        `on_acquired(metadata)`: called once with the lock blob's metadata (what the last holder
        published). `publish()`: metadata to write on the lock blob at each renewal and before the
        release (None: write nothing). Neither hook can fail the import: errors are logged.
        """
        lease = self.acquire(timeout)
        blob = self._container.get_blob_client(self._blob_name)
        handle = LockHandle(
            lease,
            self._renew_every,
            self.name,
            blob=blob,
            publish=publish,
            lease_seconds=self._lease_seconds,
            clock=self._clock,
        )
        try:
            if on_acquired is not None:
                try:
                    on_acquired(dict(blob.get_blob_properties().metadata or {}))
                except Exception as e:
                    log.warning("tenant lock %s: reading the last holder's handover failed: %s", self.name, e)
            handle.start()
            yield handle
        finally:
            handle.stop()
            handle.publish()
            try:
                lease.release()
            except Exception as e:  # the lease may have expired; it frees itself then
                log.warning("could not release tenant lock %s: %s", self.name, e)


class LockHandle:
    """The held lease plus its renewal thread.

    `lost` turns true when the lease is gone for sure: a renewal refused with 409 (the lease was lost or
    another holder took it), or no renewal succeeded for a whole lease period (it has expired). A transient
    renewal failure alone is not a loss: the lease lasts 60 s and the next renewal may succeed. `check()`
    raises LockLost then; the import calls it before each Defender call so that it never calls on without
    the tenant's turn (CONTRACT.md "Defender calls": one import at a time per tenant).
    """

    def __init__(
        self,
        lease: Any,
        renew_every: float,
        name: str,
        *,
        blob: Any = None,
        publish: Publish | None = None,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._renewed_at = clock()  # acquired just now
        self._refused = False
        self._blob = blob
        self._publish = publish
        self._renew_every = renew_every
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tenant-lock-renewal", daemon=True)
        self.renewals = 0
        self.published = 0
        self.renew_failures = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._renew_every):
            try:
                self.lease.renew()
                self.renewals += 1
                self._renewed_at = self._clock()
            except Exception as e:
                # Keep trying: a transient storage error is not yet a lost lease (it lasts 60 s). A 409 is:
                # the lease id no longer matches (LeaseLost, LeaseIdMismatchWithLeaseOperation).
                self.renew_failures += 1
                if getattr(e, "status_code", None) == 409:
                    self._refused = True
                log.warning("renewing tenant lock %s failed: %s", self._name, e)
                continue
            self.publish()

    @property
    def lost(self) -> bool:
        """True when the lease is gone for sure (see the class docstring)."""
        return self._refused or self._clock() - self._renewed_at >= self._lease_seconds

    def check(self) -> None:
        """Raise LockLost when the lease is gone: the caller must not call Defender on."""
        if self.lost:
            raise LockLost(
                f"the tenant lock {self._name} was lost during the import (its lease could not be renewed);"
                " another import may hold the tenant's turn now"
            )

    def publish(self) -> None:
        """Write `publish()`'s metadata on the lock blob, with the lease id (only the holder may)."""
        if self._publish is None or self._blob is None:
            return
        try:
            metadata = self._publish()
            if metadata is not None:
                self._blob.set_blob_metadata(dict(metadata), lease=self.lease)
                self.published += 1
        except Exception as e:  # advice for the next holder, never a reason to fail this import
            log.warning("tenant lock %s: publishing the pacing handover failed: %s", self._name, e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)
