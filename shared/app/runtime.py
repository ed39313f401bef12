"""The process-wide composition root: settings, the storage service, the tenant lock and the lazy Defender
client, built once per process on the first invocation and reused by every invocation after it
(azure-functions-conventions.md P12). The constructor does no I/O.

Pacing across instances: the tenant lock hands each holder's recent Defender calls to the next holder
(`Runtime.hold`, `shared.storage.tenant_lock`, `shared.defender.pacing`), so MAX_CALLS_PER_MINUTE holds
tenant-wide.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.core.jobs import DEFAULT_TENANT, parse_schedule
from shared.core.settings import Settings, SettingsError
from shared.defender.pacing import handover_metadata, seed_from_metadata
from shared.storage.blobs import base64_queue, parse_connection, queue_service, service_client
from shared.storage.jobs import JobQueue, JobStore
from shared.storage.mirror import DEFAULT_STATE_CONTAINER, MirrorBlob
from shared.storage.tenant_lock import LockHandle, TenantLock
from shared.tenant.mirrored import Lister, MirrorCache, TenantMirror

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from shared.defender.client import DefenderClient
    from shared.pipeline.job import TenantTurn

log = logging.getLogger(__name__)

DefenderFactory = Callable[[Settings], "DefenderClient"]
LockFactory = Callable[..., TenantLock]  # (container client[, lock blob name]) → TenantLock

DEFAULT_LOCK_CONTAINER = "indicator-locks"
DEFAULT_JOBS = "indicator-jobs"  # JOBS_QUEUE and JOBS_CONTAINER
RETRY_AFTER_SECONDS = 30  # the holder renews every 20 s; a crashed one frees the lock within 60 s
# Settings of the synchronous HTTP import that queued jobs made moot: still accepted (a deployment that sets
# them keeps starting), ignored, and named by the health answer.
IGNORED_SETTINGS = ("HTTP_DEADLINE_SECONDS", "HTTP_LOCK_WAIT_SECONDS", "BLOB_LOCK_WAIT_SECONDS")
# host.json's `extensions.queues.maxDequeueCount`, and the app setting that overrides it (the host's own rule).
MAX_DEQUEUE_OVERRIDE = "AzureFunctionsJobHost__extensions__queues__maxDequeueCount"
HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"


def host_max_dequeue_count(env: Mapping[str, str], host_json: Path = HOST_JSON) -> int:
    """The effective maxDequeueCount: the app setting override, else host.json, else the host's default 5."""
    raw = (env.get(MAX_DEQUEUE_OVERRIDE) or "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        doc = json.loads(host_json.read_text())
        value = doc["extensions"]["queues"]["maxDequeueCount"]
        return int(value) if int(value) > 0 else 5
    except (OSError, ValueError, KeyError, TypeError):
        return 5


@dataclass(frozen=True)
class AppOptions:
    """App settings of the function app itself (not of the pipeline): where the lock, the tenant mirror and the
    jobs live, how long a POST waits for its job, and how a job that met an unavailable Defender is retried."""

    lock_container: str = DEFAULT_LOCK_CONTAINER
    state_container: str = DEFAULT_STATE_CONTAINER
    jobs_queue: str = DEFAULT_JOBS
    jobs_container: str = DEFAULT_JOBS
    job_result_days: int = 7
    http_sync_seconds: float = 25.0
    retry_schedule_minutes: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0)
    retry_max_hours: float = 6.0
    access_denied_retry_hours: float = 2.0
    max_dequeue_count: int = 5
    drain_max_jobs: int = 200
    drain_max_seconds: float = 600.0
    coalesce_window_seconds: float = 2.0
    ignored: tuple[str, ...] = ()  # IGNORED_SETTINGS that are set

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AppOptions:
        errors: list[str] = []
        kw: dict[str, object] = {}

        def take(name: str, attr: str, conv: Callable[[str], object], check: Callable[[float], bool] | None = None,
                 rule: str = "") -> None:  # fmt: skip
            raw = (env.get(name) or "").strip()
            if not raw:
                return
            try:
                val = conv(raw)
            except ValueError as e:
                errors.append(f"{name}: {e}")
                return
            if check is not None and isinstance(val, int | float) and not check(val):
                errors.append(f"{name}: {rule}")
            else:
                kw[attr] = val

        take("LOCK_CONTAINER", "lock_container", str)
        take("STATE_CONTAINER", "state_container", str)
        take("JOBS_QUEUE", "jobs_queue", str)
        take("JOBS_CONTAINER", "jobs_container", str)
        take("JOB_RESULT_DAYS", "job_result_days", int, lambda v: 1 <= v <= 365, "must be 1 to 365")
        take("HTTP_SYNC_SECONDS", "http_sync_seconds", float, lambda v: 0 <= v <= 60, "must be 0 to 60")
        take("JOB_RETRY_SCHEDULE_MINUTES", "retry_schedule_minutes", parse_schedule)
        take("JOB_RETRY_MAX_HOURS", "retry_max_hours", float, lambda v: 0 < v <= 168, "must be above 0, at most 168")
        take("ACCESS_DENIED_RETRY_HOURS", "access_denied_retry_hours", float, lambda v: 0 <= v <= 168,
             "must be 0 to 168")  # fmt: skip
        take("DRAIN_MAX_JOBS", "drain_max_jobs", int, lambda v: 1 <= v <= 1000, "must be 1 to 1000")
        take("DRAIN_MAX_SECONDS", "drain_max_seconds", float, lambda v: 1 <= v <= 1500, "must be 1 to 1500")
        take("COALESCE_WINDOW_SECONDS", "coalesce_window_seconds", float, lambda v: 0 <= v <= 30, "must be 0 to 30")
        for name in IGNORED_SETTINGS:
            take(name, "_", float)  # still a number, as before; the value is not used
        kw.pop("_", None)
        if errors:
            raise SettingsError("invalid settings: " + "; ".join(errors))
        kw["ignored"] = tuple(n for n in IGNORED_SETTINGS if (env.get(n) or "").strip())
        kw["max_dequeue_count"] = host_max_dequeue_count(env)
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
        queues: QueueServiceClient | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.service = service
        self.reports = service.get_container_client(settings.reports_container)
        self._lock_factory = lock_factory or TenantLock
        self.lock = self._lock_factory(service.get_container_client(options.lock_container))
        self._tenant_locks: dict[str, TenantLock] = {DEFAULT_TENANT: self.lock}
        self.jobs = JobStore(service.get_container_client(options.jobs_container))
        self._queues = queues
        self._queue: JobQueue | None = None
        self._defender_factory = defender_factory
        self._defender: DefenderClient | None = None
        self._defender_lock = threading.Lock()
        self.mirrors = MirrorCache()  # the tenant mirror this process last read or wrote, per tenant key

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
        conn = parse_connection(env)
        return cls(
            settings,
            options,
            service_client(conn),
            defender_factory=defender_factory,
            lock_factory=lock_factory,
            queues=queue_service(conn),
        )

    @property
    def queue(self) -> JobQueue:
        """The job queue's doorbells (JOBS_QUEUE in the data account; the client is built on first use)."""
        if self._queue is None:
            if self._queues is None:
                raise SettingsError("no queue service: build the Runtime with from_env or pass queues=")
            self._queue = JobQueue(base64_queue(self._queues, self.options.jobs_queue))
        return self._queue

    def turn_for(self, tenant: str) -> TenantTurn:
        """The tenant's turn for a tenant key: its own lock blob, so two tenants never wait for each other."""
        if tenant == DEFAULT_TENANT:
            return self
        lock = self._tenant_locks.get(tenant)
        if lock is None:
            name = f"defender-tenant-{tenant}.lock"
            lock = self._tenant_locks[tenant] = self._lock_factory(
                self.service.get_container_client(self.options.lock_container), name
            )
        return _OtherTenant(lock)

    def mirror_for(self, tenant: str, client: Lister) -> TenantMirror:
        """The tenant mirror of a tenant key for one turn of its lock (`indicator-state/<tenant key>/mirror…`),
        listing through `client` when it will not do. Builds no connection of its own."""
        store = MirrorBlob(self.service.get_container_client(self.options.state_container), tenant)
        return TenantMirror(client, store, tenant=tenant, settings=self.settings, cache=self.mirrors)

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


class _OtherTenant:
    """The turn of a tenant key other than the default: its lock, without the default client's pacers."""

    def __init__(self, lock: TenantLock) -> None:
        self._lock = lock

    def hold(self, timeout: float) -> AbstractContextManager[LockHandle]:
        return self._lock.hold(timeout)


def lock_container_problem(settings: Settings, options: AppOptions) -> str | None:
    """The lock blob must live outside the watched and the report containers (CONTRACT.md "Defender calls")."""
    if options.lock_container in (settings.indicators_container, settings.reports_container):
        return "invalid settings: LOCK_CONTAINER must differ from the indicator and report containers"
    if options.jobs_container in (settings.indicators_container, settings.reports_container):
        return "invalid settings: JOBS_CONTAINER must differ from the indicator and report containers"
    if options.state_container in (settings.indicators_container, settings.reports_container):
        return "invalid settings: STATE_CONTAINER must differ from the indicator and report containers"
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
