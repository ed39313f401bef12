"""The process-wide composition root: settings, the storage service, the tenant lock and the lazy Defender
client, built once per process on the first invocation and reused by every invocation after it
(azure-functions-conventions.md P12). The constructor does no I/O.

Pacing across instances: the tenant lock hands each holder's recent Defender calls to the next holder
(`Runtime.hold`, `shared.storage.tenant_lock`, `shared.defender.pacing`), so MAX_CALLS_PER_MINUTE holds
tenant-wide.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.core.settings import Settings, SettingsError
from shared.defender.pacing import handover_metadata, seed_from_metadata
from shared.storage.blobs import parse_connection, service_client
from shared.storage.tenant_lock import LockHandle, TenantLock

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, ContainerClient

    from shared.defender.client import DefenderClient

log = logging.getLogger(__name__)

DefenderFactory = Callable[[Settings], "DefenderClient"]
LockFactory = Callable[["ContainerClient"], TenantLock]

DEFAULT_LOCK_CONTAINER = "indicator-locks"
DEFAULT_HTTP_LOCK_WAIT = 60.0  # HTTP answers must come well inside the 230-second limit
# The Functions host answers 504 itself after 230 s of an HTTP invocation, whatever functionTimeout says
# (azure-functions-conventions.md); the default leaves half a minute for the report upload and the answer.
DEFAULT_HTTP_DEADLINE = 200.0
HTTP_DEADLINE_BOUNDS = (10.0, 225.0)
DEFAULT_BLOB_LOCK_WAIT = 900.0  # well inside host.json's functionTimeout (30 min)
RETRY_AFTER_SECONDS = 30  # the holder renews every 20 s; a crashed one frees the lock within 60 s


@dataclass(frozen=True)
class AppOptions:
    """App settings of the function app itself (not of the pipeline): where the lock lives, wait bounds."""

    lock_container: str = DEFAULT_LOCK_CONTAINER
    http_lock_wait: float = DEFAULT_HTTP_LOCK_WAIT
    blob_lock_wait: float = DEFAULT_BLOB_LOCK_WAIT
    http_deadline: float = DEFAULT_HTTP_DEADLINE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AppOptions:
        errors: list[str] = []
        kw: dict[str, float | str] = {}

        def take(
            name: str,
            attr: str,
            conv: Callable[[str], float | str],
            check: Callable[[float], str | None] | None = None,
        ) -> None:
            raw = (env.get(name) or "").strip()
            if not raw:
                return
            try:
                val = conv(raw)
            except ValueError as e:
                errors.append(f"{name}: {e}")
                return
            problem = check(val) if check and isinstance(val, float) else None
            if problem:
                errors.append(f"{name}: {problem}")
            else:
                kw[attr] = val

        take("LOCK_CONTAINER", "lock_container", str)
        take("HTTP_LOCK_WAIT_SECONDS", "http_lock_wait", float, lambda v: None if 0 <= v <= 180 else "must be 0 to 180")
        take("BLOB_LOCK_WAIT_SECONDS", "blob_lock_wait", float, lambda v: None if v >= 0 else "must be 0 or more")
        low, high = HTTP_DEADLINE_BOUNDS
        take("HTTP_DEADLINE_SECONDS", "http_deadline", float,
             lambda v: None if low <= v <= high else f"must be {low:g} to {high:g}")  # fmt: skip
        if errors:
            raise SettingsError("invalid settings: " + "; ".join(errors))
        return cls(**kw)  # type: ignore[arg-type]  # each attr got the type its field has


class Runtime:
    """Everything an invocation needs, built once per process. The constructor does no I/O.

    It is also the tenant's turn of every job (`hold`, a `pipeline.job.TenantTurn`): the lock, with the pacing
    handover between holders.
    """

    def __init__(
        self,
        settings: Settings,
        options: AppOptions,
        service: BlobServiceClient,
        *,
        defender_factory: DefenderFactory | None = None,
        lock_factory: LockFactory | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.service = service
        self.reports = service.get_container_client(settings.reports_container)
        self.lock = (lock_factory or TenantLock)(service.get_container_client(options.lock_container))
        self._defender_factory = defender_factory
        self._defender: DefenderClient | None = None
        self._defender_lock = threading.Lock()

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        defender_factory: DefenderFactory | None = None,
        lock_factory: LockFactory | None = None,
    ) -> Runtime:
        """Build from app settings; raises SettingsError / ConnectionSettingsError naming every bad one."""
        settings = Settings.from_env(env)
        options = AppOptions.from_env(env)
        problem = lock_container_problem(settings, options)
        if problem:
            raise SettingsError(problem)
        service = service_client(parse_connection(env))
        return cls(settings, options, service, defender_factory=defender_factory, lock_factory=lock_factory)

    @property
    def defender(self) -> DefenderClient:
        """The Defender client (one per process: its token cache and pacer are shared by invocations)."""
        with self._defender_lock:
            if self._defender is None:
                if self._defender_factory is not None:
                    self._defender = self._defender_factory(self.settings)
                else:
                    from shared.defender import make_client

                    self._defender = make_client(self.settings)
            return self._defender

    def hold(self, timeout: float) -> AbstractContextManager[LockHandle]:
        """The tenant's turn: the lock, with the pacing handover between holders (see `shared.storage.tenant_lock`)."""
        return self.lock.hold(timeout, on_acquired=self._seed_pacers, publish=self._pacing_handover)

    def _seed_pacers(self, metadata: Mapping[str, str]) -> None:
        booked = seed_from_metadata(self.defender.pacers(), metadata, time.time())
        if booked:
            log.info("tenant lock: %d Defender calls of the last holder booked into this instance's pacers", booked)

    def _pacing_handover(self) -> dict[str, str] | None:
        if self._defender is None:  # never built: nothing to hand over (and the last handover stays)
            return None
        return handover_metadata(self._defender.pacers(), time.time())


def lock_container_problem(settings: Settings, options: AppOptions) -> str | None:
    """The lock blob must live outside the watched and the report containers (CONTRACT.md "Defender calls")."""
    if options.lock_container in (settings.indicators_container, settings.reports_container):
        return "invalid settings: LOCK_CONTAINER must differ from the indicator and report containers"
    return None


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide Runtime, built from os.environ on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime.from_env(os.environ)
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install a Runtime (the demo, tests) or forget it so the next call rebuilds from os.environ."""
    global _runtime
    with _runtime_lock:
        _runtime = runtime
