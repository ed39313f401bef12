"""The tenant lock: one import at a time per Defender tenant, across instances and invocations.

CONTRACT.md "Defender calls": a lease on a lock blob in the data storage account, outside the
watched container (LOCK_CONTAINER, default `indicator-locks`), renewed while held, released in
`finally`. The lease is taken for 60 seconds (the longest finite lease Azure grants) and renewed
every 20 seconds by a background thread, so a holder that crashes — and stops renewing — frees the
tenant within a minute. Waiting for the lock is bounded; `LockTimeout` says how long we waited.

The blob lock serialises imports; capacity checks and pacing are therefore tenant-wide.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
    def hold(self, timeout: float) -> Iterator[LockHandle]:
        """Hold the tenant lock for the `with` block: renewed in the background, released in `finally`."""
        lease = self.acquire(timeout)
        handle = LockHandle(lease, self._renew_every, self.name)
        handle.start()
        try:
            yield handle
        finally:
            handle.stop()
            try:
                lease.release()
            except Exception as e:  # the lease may have expired; it frees itself then
                log.warning("could not release tenant lock %s: %s", self.name, e)


class LockHandle:
    """The held lease plus its renewal thread. `lost` turns true if a renewal failed."""

    def __init__(self, lease: Any, renew_every: float, name: str) -> None:
        self.lease = lease
        self._renew_every = renew_every
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tenant-lock-renewal", daemon=True)
        self.renewals = 0
        self.lost = False

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._renew_every):
            try:
                self.lease.renew()
                self.renewals += 1
            except Exception as e:
                # Keep trying: a transient storage error is not yet a lost lease (it lasts 60 s).
                self.lost = True
                log.warning("renewing tenant lock %s failed: %s", self._name, e)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
