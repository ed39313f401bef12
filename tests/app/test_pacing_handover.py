"""Tenant-wide pacing across instances (CONTRACT.md "Defender calls": MAX_CALLS_PER_MINUTE for the whole
app): the tenant lock hands the holder's recent calls to the next holder through the lock blob's metadata.
Two Runtimes stand for two instances (each its own Defender client and pacers); Azurite's real leases;
the emulator on a 60x clock (a rate-limit minute lasts one second) limits imports to what the app allows."""

from __future__ import annotations

import time

from shared.defender.pacing import decode_calls
from shared.storage.tenant_lock import TenantLock
from tests.app.conftest import import_now
from tests.app.test_blob_import import hashes, import_calls, upload
from tests.client.pacing_helpers import max_in_window

WINDOW = 1.0  # 60 s at time_scale 60
LIMIT = 3


def test_the_next_holder_on_another_instance_waits_for_the_last_ones_calls(
    blob_service, app_env, make_runtime, defender, jobs_host
) -> None:
    defender.admin.configure(time_scale=60, limits={"import": [[LIMIT, 60]]})
    first = make_runtime(time_scale=60, BATCH_SIZE="1", MAX_CALLS_PER_MINUTE=str(LIMIT))
    second = make_runtime(time_scale=60, BATCH_SIZE="1", MAX_CALLS_PER_MINUTE=str(LIMIT))
    assert first.defender.pacer is not second.defender.pacer
    a = upload(blob_service, app_env["INDICATORS_CONTAINER"], "a.txt", "\n".join(hashes(LIMIT, "ho-a")).encode())
    b = upload(blob_service, app_env["INDICATORS_CONTAINER"], "b.txt", "\n".join(hashes(LIMIT, "ho-b")).encode())

    assert import_now(a, runtime=first, host=jobs_host).summary["submitted"] == LIMIT  # a full window of calls
    lock_blob = blob_service.get_blob_client(app_env["LOCK_CONTAINER"], "defender-tenant.lock")
    handed = decode_calls(lock_blob.get_blob_properties().metadata["pace_import"])
    assert list(handed) == [first.defender.pacer.uid] and len(handed[first.defender.pacer.uid]) == LIMIT
    run = import_now(b, runtime=second, host=jobs_host)  # at once, on "another instance"
    assert run.summary["submitted"] == LIMIT and run.summary["retries"] == 0

    calls = import_calls(defender)
    assert [c["status"] for c in calls] == [200] * (2 * LIMIT)  # never a 429
    times = [c["monotonic"] for c in calls]
    assert max_in_window(times, WINDOW) == LIMIT
    # The second instance's first call waited until the first instance's first call left the window.
    assert times[LIMIT] - times[0] >= WINDOW
    assert second.defender.pacer.waited_seconds > 0


def test_same_instance_again_does_not_count_its_calls_twice(
    blob_service, app_env, make_runtime, defender, jobs_host
) -> None:
    defender.admin.configure(time_scale=60)
    rt = make_runtime(time_scale=60, BATCH_SIZE="1", MAX_CALLS_PER_MINUTE=str(LIMIT))
    a = upload(blob_service, app_env["INDICATORS_CONTAINER"], "one.txt", "\n".join(hashes(2, "self-1")).encode())
    b = upload(blob_service, app_env["INDICATORS_CONTAINER"], "two.txt", "\n".join(hashes(1, "self-2")).encode())
    import_now(a, runtime=rt, host=jobs_host)
    import_now(b, runtime=rt, host=jobs_host)  # its own 2 calls come back in the handover: 3 fit, no wait
    assert rt.defender.pacer.waited_seconds == 0
    assert len(import_calls(defender)) == 3


def test_the_handover_is_published_while_held_and_read_on_acquire(blob_service, fresh_containers) -> None:
    container = blob_service.get_container_client(fresh_containers.locks)
    published = {"pace_import": "x:1"}
    seen: list[dict[str, str]] = []
    lock = TenantLock(container, renew_every=0.1, poll_interval=0.05)
    with lock.hold(timeout=5, publish=lambda: published) as handle:
        deadline = time.monotonic() + 5
        while handle.published == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for the renewal thread, not timing anything
        assert lock_metadata(container) == published  # written at a renewal, with the lease id
        published = {"pace_import": "x:2"}
    assert lock_metadata(container) == {"pace_import": "x:2"}  # and just before the release
    with TenantLock(container).hold(timeout=5, on_acquired=seen.append):
        pass
    assert seen == [{"pace_import": "x:2"}]


def test_a_failing_hook_never_fails_the_import(blob_service, fresh_containers) -> None:
    container = blob_service.get_container_client(fresh_containers.locks)

    def boom(*_a: object) -> dict[str, str]:
        raise RuntimeError("broken hook")

    lock = TenantLock(container)
    with lock.hold(timeout=5, on_acquired=boom, publish=boom):
        pass
    with lock.hold(timeout=1):  # released all the same
        pass


def lock_metadata(container) -> dict[str, str]:
    return dict(container.get_blob_client("defender-tenant.lock").get_blob_properties().metadata)
