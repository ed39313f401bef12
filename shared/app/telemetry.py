"""Metrics and traces to Application Insights through OpenTelemetry (`azure-monitor-opentelemetry`), configured by
the app itself, once per process, on the first invocation (README "Telemetry").

- Off unless `APPLICATIONINSIGHTS_CONNECTION_STRING` is set: then nothing here imports opentelemetry and every
  layer calls the no-op of `shared.core.telemetry`.
- On: `configure_azure_monitor` with an Entra credential — `ManagedIdentityCredential(client_id=AZURE_CLIENT_ID)`
  (the system-assigned identity without it). Application Insights refuses key-only telemetry in both IaC stacks
  (`DisableLocalAuth` / `local_authentication_disabled`); the identity holds Monitoring Metrics Publisher on it.
- Metrics and traces only. Logs stay with the Functions host, which already forwards the worker's `logging`
  records to Application Insights (AppTraces): an OpenTelemetry log handler as well would send every line twice.
- The automatic HTTP and Azure SDK instrumentations are off: their spans carry the full URL (`url.full`,
  `http.url`), and a List call's OData `$filter` holds indicator values. The app's own spans stand in for them:
  one per job and one per Defender call, with the route template and never the URL.
- The worker's own switch, `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`, makes the Python worker call
  `configure_azure_monitor` itself when it starts (Azure/azure-functions-python-worker PR #1621; its maintainers:
  use the setting *or* call it in code, never both). The IaC leaves it unset. If it is set anyway, the app does
  not configure a second time: it uses the worker's providers, turns the HTTP and Azure SDK instrumentations back
  off and says so in a warning (the worker's log handler then duplicates the host's log lines: unset it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from shared.core import telemetry as names
from shared.core.telemetry import CallSpan, JobSpan, RunTally, Telemetry, install

log = logging.getLogger(__name__)

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
WORKER_SWITCH = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
SERVICE_NAME = "defender-ioc-importer"
# The distro's instrumentations, all off (see the module docstring); those not installed cost nothing either way.
INSTRUMENTATIONS_OFF = {
    name: {"enabled": False}
    for name in ("azure_sdk", "requests", "urllib", "urllib3", "httpx", "django", "fastapi", "flask", "psycopg2")
}

_lock = threading.Lock()
_done = False
# How long the one configuration took (seconds), for the health answer and the benchmark; None when off.
configure_seconds: float | None = None


def ensure(env: Mapping[str, str] | None = None, **options: Any) -> Telemetry:
    """The process's telemetry, configured on the first call (thread-safe, once per process).

    No connection string: the no-op, and no opentelemetry module is imported. A failure to configure is logged
    and leaves the no-op: telemetry never stops an import. `options` go to `configure` (tests pass in-memory
    readers and processors).
    """
    global _done, configure_seconds
    if _done:
        return names.current()
    with _lock:
        if _done:
            return names.current()
        env = os.environ if env is None else env
        if (env.get(CONNECTION_STRING) or "").strip():
            started = time.perf_counter()
            try:
                install(configure(env, **options))
            except Exception:
                log.exception("telemetry could not be configured; the app goes on without it")
            else:
                configure_seconds = time.perf_counter() - started
                log.info("telemetry configured in %.2f s (metrics and traces to Application Insights)",
                         configure_seconds)  # fmt: skip
        _done = True
        return names.current()


def reset_for_tests() -> None:
    """Forget the configuration so that the next `ensure` runs again (the global providers stay)."""
    global _done, configure_seconds
    with _lock:
        _done = False
        configure_seconds = None
        install(None)


def configure(
    env: Mapping[str, str],
    *,
    credential: Any = None,
    span_processors: Sequence[Any] = (),
    metric_readers: Sequence[Any] = (),
    configure_fn: Callable[..., None] | None = None,
    **distro_options: Any,
) -> OtelTelemetry:
    """Configure the distro (or adopt the worker's configuration) and return the OpenTelemetry-backed telemetry."""
    if (env.get(WORKER_SWITCH) or "").strip().lower() == "true":
        log.warning(
            "%s=true: the Python worker configured OpenTelemetry itself; the app uses its providers and turns"
            " the HTTP instrumentations off (their spans carry full URLs), but the worker's log handler sends"
            " every log line a second time next to the host's: leave %s unset",
            WORKER_SWITCH,
            WORKER_SWITCH,
        )
        _instrumentations_off()
        return OtelTelemetry()
    if configure_fn is None:
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_fn = configure_azure_monitor
    from opentelemetry.sdk.resources import Resource

    if credential is None:
        from azure.identity import ManagedIdentityCredential

        client_id = (env.get("AZURE_CLIENT_ID") or "").strip() or None
        credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    options: dict[str, Any] = {
        "connection_string": env[CONNECTION_STRING].strip(),
        "credential": credential,
        "disable_logging": True,  # the host sends the logs (module docstring)
        "enable_live_metrics": False,
        "enable_performance_counters": False,
        # A few spans a minute: keep them all (the distro's default samples at 5 traces a second).
        "sampling_ratio": 1.0,
        "instrumentation_options": INSTRUMENTATIONS_OFF,
        "resource": Resource.create({"service.name": SERVICE_NAME}),
        "span_processors": list(span_processors),
        "metric_readers": list(metric_readers),
    }
    options.update(distro_options)
    configure_fn(**options)
    return OtelTelemetry()


def _instrumentations_off() -> None:
    """Undo what the worker's own configuration instrumented: the HTTP clients and azure-core's tracing."""
    for module, cls in (
        ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
        ("opentelemetry.instrumentation.urllib3", "URLLib3Instrumentor"),
        ("opentelemetry.instrumentation.urllib", "URLLibInstrumentor"),
    ):
        try:
            instrumentor = getattr(__import__(module, fromlist=[cls]), cls)()
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        except Exception:  # not installed, or an API change: nothing instrumented that way
            log.debug("could not uninstrument %s", module, exc_info=True)
    try:
        from azure.core.settings import settings

        settings.tracing_implementation = None
    except Exception:
        log.debug("could not turn azure-core tracing off", exc_info=True)


class _CallSpan(CallSpan):
    __slots__ = ("span", "status_code")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.status_code = 0

    def answered(self, status_code: int) -> None:
        self.status_code = status_code
        self.span.set_attribute(names.STATUS_CODE, status_code)


class _JobSpan(JobSpan):
    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def ended(self, outcome: str, *, status: str | None = None, error: str | None = None) -> None:
        self.span.set_attribute(names.OUTCOME, outcome)
        if status:
            self.span.set_attribute(names.STATUS, status)
        if error:
            self.span.set_attribute(names.ERROR, error)


class _Instruments:
    """The process's instruments, made once: OpenTelemetry keeps the first instrument of a name (a second gauge
    of the same name would never be observed), so every OtelTelemetry shares these."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.metrics import Observation

        self.tracer = trace.get_tracer("shared.app.telemetry")
        meter = metrics.get_meter("shared.app.telemetry")
        counter = meter.create_counter
        self.indicators = counter(names.INDICATORS, unit="1", description="Indicator entries by final status")
        self.calls = counter(names.DEFENDER_CALLS, unit="1", description="HTTP attempts sent to Defender")
        self.retries = counter(names.DEFENDER_RETRIES, unit="1", description="Defender attempts beyond the first")
        self.throttled = counter(names.DEFENDER_THROTTLED, unit="1", description="429 answers from Defender")
        self.jobs = counter(names.JOBS, unit="1", description="Job attempts by outcome")
        self.tenants: dict[str, tuple[int, int, int]] = {}  # tenant key -> (active, room, cap)
        self.tenants_lock = threading.Lock()

        def observe(index: int) -> Callable[[Any], Iterator[Any]]:
            def callback(_options: Any) -> Iterator[Any]:
                with self.tenants_lock:
                    items = list(self.tenants.items())
                for tenant, values in items:
                    yield Observation(values[index], {names.TENANT: tenant})

            return callback

        gauge = meter.create_observable_gauge
        gauge(names.TENANT_ACTIVE, callbacks=[observe(0)], unit="1", description="Active indicators after the last job")
        gauge(names.TENANT_ROOM, callbacks=[observe(1)], unit="1", description="Room left under the cap and reserve")
        gauge(names.TENANT_CAP, callbacks=[observe(2)], unit="1", description="MAX_TENANT_INDICATORS")


_instruments: _Instruments | None = None
_instruments_lock = threading.Lock()


def _the_instruments() -> _Instruments:
    global _instruments
    with _instruments_lock:
        if _instruments is None:
            _instruments = _Instruments()
        return _instruments


class OtelTelemetry(Telemetry):
    """The instruments of `shared.core.telemetry`, on the global OpenTelemetry providers."""

    enabled = True

    def __init__(self) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._SpanKind, self._Status, self._StatusCode = SpanKind, Status, StatusCode
        i = self._i = _the_instruments()
        self.tracer = i.tracer
        self.calls, self.retries, self.throttled, self.jobs = i.calls, i.retries, i.throttled, i.jobs
        self.indicators_counter = i.indicators
        self._propagator: Any = None

    @contextmanager
    def defender_call(self, *, kind: str, method: str, route: str, attempt: int, wait: float) -> Iterator[CallSpan]:
        attrs: dict[str, Any] = {names.KIND: kind, names.METHOD: method, names.ROUTE: route, names.ATTEMPT: attempt,
                 names.WAIT: round(wait, 3)}  # fmt: skip
        with self.tracer.start_as_current_span(
            names.DEFENDER_CALL_SPAN, kind=self._SpanKind.CLIENT, attributes=attrs,
            record_exception=False, set_status_on_exception=False,  # an exception's text may hold the URL
        ) as span:  # fmt: skip
            call = _CallSpan(span)
            try:
                yield call
            except BaseException as e:
                span.set_attribute(names.ERROR, type(e).__name__)
                span.set_status(self._Status(self._StatusCode.ERROR))
                raise
            finally:
                self.calls.add(1, {names.KIND: kind, names.STATUS_CODE: call.status_code})
                if attempt > 1:
                    self.retries.add(1, {names.KIND: kind})
                if call.status_code == 429:
                    self.throttled.add(1, {names.KIND: kind})
                if call.status_code >= 400:
                    span.set_status(self._Status(self._StatusCode.ERROR))

    @contextmanager
    def job(
        self, *, job_id: str, kind: str, tenant: str, attempt: int, traceparent: str | None = None
    ) -> Iterator[JobSpan]:
        parent = None
        if traceparent:
            if self._propagator is None:
                from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

                self._propagator = TraceContextTextMapPropagator()
            parent = self._propagator.extract({"traceparent": traceparent})
        attrs: dict[str, Any] = {names.JOB_ID: job_id, names.KIND: kind, names.TENANT: tenant, names.ATTEMPT: attempt}
        with self.tracer.start_as_current_span(
            names.JOB_SPAN, context=parent, attributes=attrs, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield _JobSpan(span)
            except BaseException as e:
                span.set_attribute(names.ERROR, type(e).__name__)
                span.set_status(self._Status(self._StatusCode.ERROR))
                raise

    def job_outcome(self, outcome: str, *, kind: str, status: str | None = None) -> None:
        self.jobs.add(1, {names.OUTCOME: outcome, names.KIND: kind, names.STATUS: status or "none"})

    def indicators(self, tally: RunTally) -> None:
        for (status, type_, code), n in tally.labelled().items():
            self.indicators_counter.add(n, {names.STATUS: status, names.TYPE: type_, names.CODE: code})

    def tenant(self, tenant: str, section: Mapping[str, object] | None) -> None:
        if not section:
            return
        active, room, cap = section.get("countAfter"), section.get("roomLeft"), section.get("max")
        if isinstance(active, int) and isinstance(room, int) and isinstance(cap, int):
            with self._i.tenants_lock:
                self._i.tenants[tenant] = (active, room, cap)
