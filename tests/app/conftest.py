"""App-test fixtures: the registered functions (read once per process), and a Runtime wired to the
real local stack — Azurite, the Defender and identity emulators — with per-test containers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
def make_runtime(app_env) -> Iterator[Callable[..., runtime.Runtime]]:
    """Build a Runtime from os.environ (plus overrides) and install it as the process runtime."""

    def build(*, time_scale: float | None = None, **overrides: str) -> runtime.Runtime:
        env = dict(os.environ)
        env.update(overrides)
        factory = scaled_defender_factory(time_scale) if time_scale else fast_defender_factory
        rt = runtime.Runtime.from_env(env, defender_factory=factory)
        runtime.set_runtime(rt)
        return rt

    yield build
    runtime.set_runtime(None)
