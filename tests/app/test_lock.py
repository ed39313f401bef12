"""The tenant lock on Azurite's real leases (CONTRACT.md "Defender calls": one import at a time per
tenant, renewed while held, released in finally, a crashed holder's lease expires within a minute)."""

from __future__ import annotations

import threading
import time

import pytest
from azure.storage.blob import BlobLeaseClient

from shared.storage.tenant_lock import LockHandle, LockLost, LockTimeout, TenantLock


def _lock(blob_service, containers, **kw) -> TenantLock:
    return TenantLock(blob_service.get_container_client(containers.locks), poll_interval=0.05, **kw)


def test_second_holder_waits_for_the_first(blob_service, fresh_containers) -> None:
    first, second = _lock(blob_service, fresh_containers), _lock(blob_service, fresh_containers)
    order: list[str] = []
    released = threading.Event()
    with first.hold(timeout=5):
        t = threading.Thread(target=lambda: _take(second, order, released))
        t.start()
        with pytest.raises(LockTimeout, match="another import holds the tenant lock"):
            second.acquire(timeout=0)
        order.append("first-done")
    t.join(10)
    assert order == ["first-done", "second-in"]
    assert released.is_set()


def _take(lock: TenantLock, order: list[str], released: threading.Event) -> None:
    with lock.hold(timeout=10):
        order.append("second-in")
    released.set()


def test_released_in_finally_on_error(blob_service, fresh_containers) -> None:
    lock = _lock(blob_service, fresh_containers)
    with pytest.raises(RuntimeError), lock.hold(timeout=5):
        raise RuntimeError("boom")
    assert lock.try_acquire() is not None  # free again at once


def test_lease_is_renewed_while_held(blob_service, fresh_containers) -> None:
    lock = _lock(blob_service, fresh_containers, lease_seconds=15, renew_every=0.1)
    with lock.hold(timeout=5) as handle:
        deadline = time.monotonic() + 10
        while handle.renewals < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert handle.renewals >= 2
        assert not handle.lost


def test_bounded_wait_uses_the_clock(blob_service, fresh_containers) -> None:
    """The wait is bounded by the injected clock: sleeps add up to the timeout, then LockTimeout."""
    holder = _lock(blob_service, fresh_containers)
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    waiter = TenantLock(
        blob_service.get_container_client(fresh_containers.locks), poll_interval=2.0, clock=lambda: now[0], sleep=sleep
    )
    with holder.hold(timeout=5), pytest.raises(LockTimeout) as info:
        waiter.acquire(timeout=5)
    assert waits == [2.0, 2.0, 1.0]
    assert info.value.waited == 5.0


def test_lease_duration_limits() -> None:
    with pytest.raises(ValueError, match="15 to 60"):
        TenantLock(object(), lease_seconds=5)


def test_crashed_holders_lease_expires(blob_service, fresh_containers) -> None:
    """A holder that dies stops renewing; its lease (Azure's shortest, 15 s here) frees the tenant."""
    lock = _lock(blob_service, fresh_containers)
    lock._prepare()
    crashed = BlobLeaseClient(blob_service.get_blob_client(fresh_containers.locks, "defender-tenant.lock"))
    crashed.acquire(lease_duration=15)  # never renewed, never released
    with pytest.raises(LockTimeout):
        lock.acquire(timeout=0)
    lease = lock.acquire(timeout=40)
    assert lease.id != crashed.id
    lease.release()


class _Refused(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class _FailingLease:
    """renew() fails with `status`, once; then the renewal loop is told to stop."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.handle: LockHandle | None = None

    def renew(self) -> None:
        assert self.handle is not None
        self.handle._stop.set()
        raise _Refused(self.status)


def _run_one_failed_renewal(status: int, now: list[float]) -> LockHandle:
    lease = _FailingLease(status)
    handle = LockHandle(lease, 0, "c/b", lease_seconds=60, clock=lambda: now[0])
    lease.handle = handle
    handle._run()  # the loop body once, on this thread
    assert handle.renew_failures == 1
    return handle


def test_broken_lease_is_lost_and_check_raises(blob_service, fresh_containers) -> None:
    """A lease someone broke (or took) cannot be renewed: the holder knows it lost the turn."""
    lock = _lock(blob_service, fresh_containers, lease_seconds=60, renew_every=0.05)
    with lock.hold(timeout=5) as handle:
        BlobLeaseClient(blob_service.get_blob_client(fresh_containers.locks, "defender-tenant.lock")).break_lease(0)
        deadline = time.monotonic() + 10
        while not handle.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert handle.lost and handle.renew_failures >= 1
        with pytest.raises(LockLost, match="was lost"):
            handle.check()


def test_renewal_refused_with_409_is_a_loss_at_once() -> None:
    handle = _run_one_failed_renewal(409, [0.0])
    assert handle.lost


def test_transient_renewal_failure_is_not_a_loss_until_the_lease_ran_out() -> None:
    now = [0.0]
    handle = _run_one_failed_renewal(503, now)
    now[0] = 59.0
    assert not handle.lost  # the 60 s lease still holds; the next renewal may succeed
    handle.check()
    now[0] = 60.0
    assert handle.lost
    with pytest.raises(LockLost):
        handle.check()


def test_lease_checked_client_checks_before_every_change_to_the_tenant() -> None:
    """The same lock check runs before each import batch and before the steward's deletes; Lists pass."""
    from shared.pipeline.job import LeaseChecked

    class Lost(Exception):
        pass

    class Lease:
        lost = False

        def check(self) -> None:
            if self.lost:
                raise Lost

    class Client:
        api_calls = retries = list_calls = delete_calls = 0

        def __init__(self) -> None:
            self.calls: list[str] = []

        def submit(self, batch):
            self.calls.append("submit")
            return list(batch)

        def list_indicators(self, filter=None, page_size=10000):
            self.calls.append("list")
            return iter(())

        def batch_delete(self, ids):
            self.calls.append("batch_delete")

        def delete(self, id):
            self.calls.append("delete")

        def identity_ids(self):
            return ()

    lease, client = Lease(), Client()
    checked = LeaseChecked(client, lease)
    checked.submit([])
    checked.batch_delete(["1"])
    checked.delete("1")
    lease.lost = True
    list(checked.list_indicators())  # read-only: no check needed
    for call in (lambda: checked.submit([]), lambda: checked.batch_delete(["1"]), lambda: checked.delete("1")):
        with pytest.raises(Lost):
            call()
    assert client.calls == ["submit", "batch_delete", "delete", "list"]
