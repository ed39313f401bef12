"""Imports as queued jobs (CONTRACT.md "HTTP API" [jobs]): 200 or 202 + Location and polling, scheduled
retries of an unavailable Defender or identity, a crash redelivered and resumed, poison made final, tenant keys
with their own locks. Through the registered functions, the host stand-in (`localdev.host`), Azurite and the
Defender and identity emulators.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import azure.functions as func
import pytest

from shared.app import attempt, runtime
from shared.core.jobs import JobState
from tests.app.test_http_import import Ctx, import_calls
from tests.conftest import REPO
from tests.support.stack import hex_value, make_indicator

URL = "https://ioc-app.example.net/api/indicators/import"


def request(functions: dict[str, Any], body: bytes, *, headers: dict[str, str] | None = None,
            **params: str) -> tuple[int, dict[str, Any], dict[str, str], float]:  # fmt: skip
    req = func.HttpRequest(method="POST", url=URL, params=params, body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})  # fmt: skip
    started = time.monotonic()
    resp = asyncio.run(functions["import_indicators"].get_user_function()(req, Ctx()))
    return resp.status_code, json.loads(resp.get_body()), dict(resp.headers), time.monotonic() - started


def status(functions: dict[str, Any], location: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(location)
    job_id = parts.path.rsplit("/", 1)[-1]
    req = func.HttpRequest(method="GET", url=location, params=dict(parse_qsl(parts.query)), body=b"",
                           headers={}, route_params={"id": job_id})  # fmt: skip
    resp = asyncio.run(functions["import_job_status"].get_user_function()(req))
    return resp.status_code, json.loads(resp.get_body()), dict(resp.headers)


def poll(functions: dict[str, Any], location: str, timeout: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        code, body, headers = status(functions, location)
        if code == 200:
            return body
        assert code == 202 and 5 <= int(headers["Retry-After"]) <= 60
        time.sleep(0.2)
    raise AssertionError("the job did not finish")


def body_of(values: list[str]) -> bytes:
    return json.dumps({"Indicators": [make_indicator(v) for v in values]}).encode()


def test_small_post_answers_200_with_todays_body(functions, make_runtime, defender):
    make_runtime()
    values = [hex_value(f"small-{i}") for i in range(3)]
    code, body, _, _ = request(functions, body_of(values))
    assert code == 200
    assert set(body) == {"value", "summary", "report", "status"}
    assert [v["indicator"] for v in body["value"]] == values and body["status"] == "completed"
    assert body["report"].startswith("http/") and body["report"].endswith(".report.json")


def test_large_post_answers_202_then_the_status_route_200_with_every_entry_in_order(
    functions, make_runtime, defender, blob_service, app_env
):
    defender.admin.configure(import_seconds=1.0)  # a slow Defender: 3 calls take 3 s, the POST waits 1 s
    make_runtime(HTTP_SYNC_SECONDS="1")
    values = [hex_value(f"large-{i}") for i in range(1200)]
    code, pending, headers, elapsed = request(functions, body_of(values), code="the-key")
    assert code == 202 and elapsed < 5
    assert set(pending) == {"id", "state", "entries", "ahead", "attempt", "nextAttemptAt"}
    assert pending["state"] in ("queued", "running") and pending["entries"]["total"] == 1200
    location = headers["Location"]
    assert location == f"https://ioc-app.example.net/api/indicators/import/jobs/{pending['id']}?code=the-key"
    assert 5 <= int(headers["Retry-After"]) <= 60
    final = poll(functions, location)
    assert [v["indicator"] for v in final["value"]] == values
    assert all(v["isFailed"] is False and v["id"] for v in final["value"])
    assert final["summary"]["submitted"] == 1200 and final["summary"]["apiCalls"] == 3
    report = blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], final["report"])
    assert json.loads(report.download_blob().readall())["summary"]["submitted"] == 1200
    assert status(functions, location)[1] == final  # the same 200 again, until JOB_RESULT_DAYS


def test_location_carries_no_key_when_the_request_had_none(functions, make_runtime, defender):
    make_runtime()
    code, _body, headers, _ = request(functions, body_of([hex_value("nokey")]), headers={"Prefer": "respond-async"})
    assert code == 202 and "code=" not in headers["Location"]


def test_prefer_respond_async_answers_202_at_once(functions, make_runtime, defender):
    defender.admin.configure(import_seconds=2.0)
    make_runtime()
    code, _pending, headers, elapsed = request(
        functions, body_of([hex_value("async")]), headers={"Prefer": "respond-async, wait=100"}
    )
    assert code == 202 and elapsed < 1.5
    final = poll(functions, headers["Location"])
    assert final["summary"]["submitted"] == 1


def test_unknown_job_is_404(functions, make_runtime):
    make_runtime()
    for job_id in (uuid.uuid4().hex, "not-a-job", "../records/x"):
        code, body, _ = status(functions, f"https://h.example/api/indicators/import/jobs/{job_id}")
        assert code == 404 and body["error"]["code"]


def test_a_short_outage_is_imported_on_a_scheduled_retry(functions, make_runtime, defender, jobs_host):
    """Defender answers 503 for a while: the job is `retrying` with its next attempt, nobody acts, and a later
    attempt imports it; no redelivery is used (the dequeue count measures crashes only)."""
    make_runtime(HTTP_SYNC_SECONDS="0")
    defender.admin.add_fault(kind="status", status=503, count=1000, path="/api/indicators/import")
    values = [hex_value(f"outage-{i}") for i in range(5)]
    code, _pending, headers, _ = request(functions, body_of(values))
    assert code == 202
    end = time.monotonic() + 20
    while time.monotonic() < end:
        code, body, _ = status(functions, headers["Location"])
        if body.get("state") == "retrying":
            break
        time.sleep(0.1)
    assert body.get("state") == "retrying" and body["attempt"] >= 1 and body["nextAttemptAt"], body
    defender.admin.clear_faults()  # the outage ends
    final = poll(functions, headers["Location"])
    assert final["summary"]["submitted"] == 5 and final["status"] == "completed"
    assert jobs_host.failures == 0 and jobs_host.poisoned == 0


def test_403_for_a_while_is_imported_once_the_role_works(functions, make_runtime, defender, identity):
    make_runtime(HTTP_SYNC_SECONDS="0")
    identity.configure(roles=["Ti.Read.All"])  # the grant has not reached tokens yet
    _, _pending, headers, _ = request(functions, body_of([hex_value("denied")]))
    end = time.monotonic() + 20
    while time.monotonic() < end:
        _code, body, _ = status(functions, headers["Location"])
        if body.get("state") == "retrying":
            break
        time.sleep(0.1)
    assert body["state"] == "retrying"
    identity.configure(roles=["Ti.ReadWrite.All"])
    final = poll(functions, headers["Location"])
    assert final["summary"]["submitted"] == 1


def test_403_past_its_retry_window_is_final_with_the_reason(functions, make_runtime, defender, identity):
    make_runtime(HTTP_SYNC_SECONDS="0", ACCESS_DENIED_RETRY_HOURS="0.0003")
    identity.configure(roles=["Ti.Read.All"])
    _code, _pending, headers, _ = request(functions, body_of([hex_value("denied-for-good")]))
    final = poll(functions, headers["Location"])
    assert final["status"] == "failed"
    (entry,) = final["value"]
    assert entry["isFailed"] is True and "Ti.ReadWrite.All" in entry["failureReason"]
    assert "retries given up" in entry["failureReason"]


def test_poison_makes_the_job_final_failed_at_the_status_route(functions, make_runtime, defender, jobs_host,
                                                               monkeypatch):  # fmt: skip
    """A job that crashes on every delivery: on the last one (maxDequeueCount) it is made final before the
    host poisons the message, so its status route answers 200, never an eternal 202."""
    make_runtime(HTTP_SYNC_SECONDS="0", AzureFunctionsJobHost__extensions__queues__maxDequeueCount="3")
    jobs_host.max_dequeue_count = 3
    real = attempt.run_job

    def crashing(job: Any, **kw: Any) -> Any:
        if kw.get("client") is not None and not isinstance(kw["client"], attempt.Refusing):
            raise RuntimeError("a bug on this input")
        return real(job, **kw)

    monkeypatch.setattr(attempt, "run_job", crashing)
    values = [hex_value(f"poison-{i}") for i in range(2)]
    _code, _pending, headers, _ = request(functions, body_of(values))
    final = poll(functions, headers["Location"])
    assert final["status"] == "failed"
    assert [v["isFailed"] for v in final["value"]] == [True, True]
    assert all("failed unexpectedly (RuntimeError)" in v["failureReason"] for v in final["value"])
    jobs_host.drain()
    assert jobs_host.failures == 3 and jobs_host.poisoned == 1
    assert import_calls(defender) == []


def test_lease_lost_mid_job_is_redelivered_and_resumed(functions, app_env, defender, blob_service, jobs_host):
    """The lease is broken after the first batch: no call without the tenant's turn; the invocation fails, the
    host redelivers, and the job resumes after its checkpoint — every entry one final status."""
    import contextlib

    from azure.storage.blob import BlobLeaseClient

    from shared.storage.tenant_lock import TenantLock
    from tests.app.conftest import fast_defender_factory

    handles: list[Any] = []
    broken = []

    class RecordingLock(TenantLock):
        @contextlib.contextmanager
        def hold(self, *a: Any, **kw: Any) -> Any:
            with super().hold(*a, **kw) as handle:
                handles.append(handle)
                yield handle

    def factory(settings: Any) -> Any:
        client = fast_defender_factory(settings)
        real = client.submit

        def submit(batch: Any) -> Any:
            out = real(batch)
            if client.api_calls == 1 and not broken:  # after the first batch: someone breaks the lease
                broken.append(True)
                lock_blob = blob_service.get_blob_client(app_env["LOCK_CONTAINER"], "defender-tenant.lock")
                BlobLeaseClient(lock_blob).break_lease(0)
                deadline = time.monotonic() + 10
                while not handles[-1].lost and time.monotonic() < deadline:
                    time.sleep(0.02)
            return out

        client.submit = submit
        return client

    env = dict(os.environ, BATCH_SIZE="1", HTTP_SYNC_SECONDS="0")
    rt = runtime.Runtime.from_env(env, defender_factory=factory,
                                  lock_factory=lambda c, *n: RecordingLock(c, *n, renew_every=0.05))  # fmt: skip
    runtime.set_runtime(rt)
    try:
        values = [f"lost{i}.example.com" for i in range(3)]
        _code, _pending, headers, _ = request(functions, json.dumps(values).encode())
        final = poll(functions, headers["Location"])
    finally:
        runtime.set_runtime(None)
    assert [v["indicator"] for v in final["value"]] == values
    assert all(v["isFailed"] is False for v in final["value"])
    assert jobs_host.failures == 1  # the lost lease: one redelivery
    assert len(import_calls(defender)) == 3  # the first batch was confirmed and logged: not sent again


def test_two_tenant_keys_never_share_a_lock(make_runtime):
    rt = make_runtime()
    with rt.turn_for("default").hold(0), rt.turn_for("tenant-b").hold(0):
        pass  # both held at once
    from shared.storage.tenant_lock import LockTimeout

    with rt.turn_for("tenant-b").hold(0), pytest.raises(LockTimeout):
        with rt.turn_for("tenant-b").hold(0):
            pass


def test_worker_killed_mid_job_resumes_after_its_checkpoint(app_env, defender, blob_service):
    """kill -9 of the worker process mid-job: its message reappears once the host's hold runs out, a second
    worker resumes after the checkpoint; each entry one final status, import calls at most one batch over
    the minimum."""
    defender.admin.configure(import_seconds=0.4)
    rt = runtime.Runtime.from_env(dict(os.environ, BATCH_SIZE="10"))  # no worker in this process: only the two below
    values = [hex_value(f"kill-{i}") for i in range(100)]
    bc = blob_service.get_blob_client(app_env["INDICATORS_CONTAINER"], "killed.txt")
    bc.upload_blob(("\n".join(values) + "\n").encode())
    from shared.app import blob_import

    run = blob_import.handle_blob(bc, runtime=rt)
    env = dict(os.environ, PYTHONPATH=str(REPO), BATCH_SIZE="10")
    first = subprocess.Popen([sys.executable, "-m", "localdev.host", "--hold-seconds", "3"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and len(import_calls(defender)) < 3:
            time.sleep(0.05)
        assert len(import_calls(defender)) >= 3
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # A crashed holder's lease runs out within 60 s (CONTRACT.md "Defender calls"): compressed here.
        from azure.storage.blob import BlobLeaseClient

        lock = blob_service.get_blob_client(app_env["LOCK_CONTAINER"], "defender-tenant.lock")
        BlobLeaseClient(lock).break_lease(0)
        record = rt.jobs.get(run.job)[0]
        assert record.state is JobState.running and 0 < record.checkpoint < 100
    finally:
        if first.poll() is None:
            first.kill()
    second = subprocess.Popen([sys.executable, "-m", "localdev.host", "--hold-seconds", "3"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and not rt.jobs.get(run.job)[0].final:
            time.sleep(0.2)
    finally:
        second.kill()
        second.wait(10)
    record = rt.jobs.get(run.job)[0]
    assert record.state is JobState.completed and record.status == "completed"
    doc = json.loads(blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], "killed.txt.report.json")
                     .download_blob().readall())  # fmt: skip
    assert [e["indicatorValue"] for e in doc["indicators"]] == values
    # The batch in flight at the kill reached Defender: the resumed job finds it in the tenant (`unchanged`).
    assert {e["status"] for e in doc["indicators"]} <= {"submitted", "unchanged"}
    assert doc["summary"]["submitted"] + doc["summary"]["unchanged"] == 100
    assert 10 <= len(import_calls(defender)) <= 11  # the minimum, plus at most the batch in flight
