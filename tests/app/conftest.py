"""App-test fixtures: the registered functions (read once per process), and a Runtime wired to the
real local stack — Azurite, the Defender and identity emulators — with per-test containers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from localdev.host import QueueHost, plain_queue
from localdev.stack import scaled_defender_factory
from shared.app import runtime
from shared.defender import CallPacer, client_policy, make_client

# The Defender emulator's default clock is real time; tests that need pacing scale both sides.


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    """`app.get_functions()` may be called once per app instance (local-tooling.md §4): cache it."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def app_env(azurite, fresh_containers, defender, identity_env, monkeypatch) -> dict[str, str]:
    """App settings pointing at Azurite and the emulators, set in os.environ for this test."""
    env = {
        "IndicatorStorage": azurite.connection_string,
        "INDICATORS_CONTAINER": fresh_containers.indicators,
        "REPORTS_CONTAINER": fresh_containers.reports,
        "LOCK_CONTAINER": fresh_containers.locks,
        "DEFENDER_API_URL": defender.base_url,
        "HTTP_LOCK_WAIT_SECONDS": "5",
        "BLOB_LOCK_WAIT_SECONDS": "60",
        "DEFENDER_MAX_ATTEMPTS": "2",
        # Each test its own job queue and container, so no doorbell of one test reaches another's worker.
        "JOBS_QUEUE": f"jobs-{uuid.uuid4().hex[:20]}",
        "JOBS_CONTAINER": f"jobs-{uuid.uuid4().hex[:20]}",
        # and its own tenant mirror (a mirror left by another test would describe another emulated tenant).
        "STATE_CONTAINER": f"state-{uuid.uuid4().hex[:20]}",
        "JOB_RETRY_SCHEDULE_MINUTES": "0.02",  # 1.2 s between retries, so retry paths finish in a test
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DRY_RUN", raising=False)
    return env


def fast_defender_factory(settings: Any) -> Any:
    """Real pacing window, but retries back off in milliseconds (tests of failure paths stay quick)."""
    return make_client(
        settings,
        pacer=CallPacer(settings.max_calls_per_minute, 60.0),
        policy=client_policy(settings, backoff_factor=0.01, backoff_max=0.05),
    )


@pytest.fixture
def jobs_host(app_env, functions) -> Iterator[QueueHost]:
    """The host stand-in driving `run_import_jobs` from this test's job queue, in the background."""
    queue = plain_queue(app_env["IndicatorStorage"], app_env["JOBS_QUEUE"])
    try:
        queue.create_queue()
    except ResourceExistsError:
        pass
    host = QueueHost(queue, functions["run_import_jobs"].get_user_function(), visibility_timeout=0.5,
                     hold_seconds=10).start()  # fmt: skip
    ACTIVE_HOSTS.append(host)
    yield host
    ACTIVE_HOSTS.remove(host)
    host.stop()


ACTIVE_HOSTS: list[QueueHost] = []


def active_host() -> QueueHost:
    """This test's host stand-in (for helpers that deliver an event and then wait for its job)."""
    assert ACTIVE_HOSTS, "the test needs the jobs_host fixture (make_runtime brings it)"
    return ACTIVE_HOSTS[-1]


@pytest.fixture
def make_runtime(app_env, jobs_host) -> Iterator[Callable[..., runtime.Runtime]]:
    """Build a Runtime from os.environ (plus overrides) and install it as the process runtime; its job queue
    is served by `jobs_host`."""

    def build(*, time_scale: float | None = None, **overrides: str) -> runtime.Runtime:
        env = dict(os.environ)
        env.update(overrides)
        factory = scaled_defender_factory(time_scale) if time_scale else fast_defender_factory
        rt = runtime.Runtime.from_env(env, defender_factory=factory)
        runtime.set_runtime(rt)
        return rt

    yield build
    runtime.set_runtime(None)


def import_now(blob_client: Any, *, runtime: runtime.Runtime, host: QueueHost, timeout: float = 60.0) -> Any:
    """Drop handling as the host does it, then the queued job run to its end: the BlobRun with the job's
    final status and summary (read from its record and report)."""
    import json

    from shared.app import blob_import
    from shared.app.runtime import set_runtime

    set_runtime(runtime)  # the worker serves doorbells with the process runtime: this one ("this instance")
    run = blob_import.handle_blob(blob_client, runtime=runtime)
    host.drain(timeout)
    if run.job is None or run.already_done:
        return run
    found = runtime.jobs.get(run.job)
    assert found is not None, "the job record is missing"
    record = found[0]
    run.status = record.status
    doc = json.loads(runtime.reports.download_blob(record.report).readall())
    run.summary = doc["summary"]
    run.source = doc["source"]
    return run
