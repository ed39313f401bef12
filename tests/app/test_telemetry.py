"""Telemetry (CONTRACT.md [telemetry]; README "Telemetry"): metrics and traces through OpenTelemetry, configured by
the app on its first queue invocation when APPLICATIONINSIGHTS_CONNECTION_STRING is set, with the app's managed
identity; off, nothing of OpenTelemetry is loaded.

The run test goes through the real triggers on Azurite and the Defender and identity emulators, with the real
`configure_azure_monitor` whose exporters point at a closed loopback port (nothing leaves the machine: statsbeat
and the control plane are off, offline storage too); what the app records is read from opentelemetry-sdk's
in-memory span exporter and metric reader.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from shared.app import telemetry
from shared.core import telemetry as names
from shared.tenant import ownership
from tests.app.test_blob_import import deliver, report, upload
from tests.conftest import REPO
from tests.support.stack import hex_value, public_ip

# A closed port on loopback: the Azure Monitor exporters fail there quietly, and never reach anything else.
LOOPBACK_CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
QUIET_SDK = {"APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true"}


def run_python(code: str, env: dict[str, str] | None = None) -> Any:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "PYTHON_APPLICATION"))}
    full.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=full)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ off, and once


def test_off_loads_no_opentelemetry_and_keeps_no_tally() -> None:
    """No connection string: a whole validation run through the job pipeline and a doorbell's telemetry setup
    import nothing of OpenTelemetry or the Azure Monitor exporter, and the run keeps no tally."""
    code = (
        "import json, sys\n"
        "import function_app\n"
        "from shared.app import telemetry, worker\n"
        "from shared.app.cli import main\n"
        "from shared.core import telemetry as names\n"
        "import tempfile\n"
        "out = tempfile.mkdtemp()\n"
        "t = telemetry.ensure()\n"
        "rc = main(['validate', 'samples/c2-list.txt', '--report-dir', out])\n"
        "from shared.pipeline.process import process_stream\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor')))\n"
        "noop = t is names.NO_TELEMETRY\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'noop': noop, 'seconds': telemetry.configure_seconds}))\n"
    )
    got = run_python(code)
    assert got == {"rc": 0, "heavy": [], "noop": True, "seconds": None}


def test_configured_once_per_process_lazily() -> None:
    """Importing the app configures nothing; the first doorbell's `ensure` configures once, however many threads
    call it at the same time; later calls return the same telemetry."""
    code = (
        "import json, sys, threading\n"
        "import function_app, shared.app.worker\n"
        "before = any(m.startswith('opentelemetry') for m in sys.modules)\n"
        "from shared.app import telemetry\n"
        "calls = []\n"
        "def fake(**kw): calls.append(sorted(kw))\n"
        "got = []\n"
        "ts = [threading.Thread(target=lambda: got.append(telemetry.ensure(configure_fn=fake, credential=object())))"
        " for _ in range(8)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "again = telemetry.ensure(configure_fn=fake)\n"
        "print(json.dumps({'before': before, 'calls': len(calls), 'same': len({id(g) for g in got + [again]}) == 1,\n"
        "  'enabled': again.enabled, 'seconds': telemetry.configure_seconds is not None}))\n"
    )
    got = run_python(code, {"APPLICATIONINSIGHTS_CONNECTION_STRING": LOOPBACK_CONNECTION, **QUIET_SDK})
    assert got == {"before": False, "calls": 1, "same": True, "enabled": True, "seconds": True}


def test_configuration_uses_the_managed_identity_and_sends_metrics_and_traces_only(monkeypatch) -> None:
    """`ManagedIdentityCredential(client_id=AZURE_CLIENT_ID)`; no log pipeline (the host sends the logs); no
    automatic HTTP or Azure SDK instrumentation; no live metrics or performance counters."""
    import azure.identity

    made: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, **kw: Any) -> None:
            made.append(kw)

    monkeypatch.setattr(azure.identity, "ManagedIdentityCredential", Recorder)
    seen: dict[str, Any] = {}
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": LOOPBACK_CONNECTION, "AZURE_CLIENT_ID": "1111-uami"}
    telemetry.configure(env, configure_fn=lambda **kw: seen.update(kw))
    assert made == [{"client_id": "1111-uami"}]
    assert isinstance(seen["credential"], Recorder)
    assert seen["connection_string"] == LOOPBACK_CONNECTION
    assert seen["disable_logging"] is True
    assert (seen["enable_live_metrics"], seen["enable_performance_counters"]) == (False, False)
    off = seen["instrumentation_options"]
    assert {k for k, v in off.items() if v == {"enabled": False}} >= {"azure_sdk", "requests", "urllib", "urllib3"}


def test_the_workers_own_switch_is_not_configured_twice(caplog) -> None:
    """PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true: the worker called configure_azure_monitor already; the
    app does not call it again and says why the setting should go."""
    called: list[object] = []
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": LOOPBACK_CONNECTION, telemetry.WORKER_SWITCH: "true"}
    with caplog.at_level("WARNING"):
        t = telemetry.configure(env, configure_fn=lambda **kw: called.append(kw))
    assert called == [] and t.enabled
    assert telemetry.WORKER_SWITCH in caplog.text and "second time" in caplog.text


# ------------------------------------------------------------------------------------------ a run, recorded

_REAL: dict[str, Any] = {}


@pytest.fixture
def otel(monkeypatch, identity_env) -> Iterator[dict[str, Any]]:
    """The real distro, configured once for this process (OpenTelemetry's global providers are set once), with an
    in-memory span exporter and metric reader beside its own exporters; installed for one test."""
    from opentelemetry.sdk.metrics import Counter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    for k, v in QUIET_SDK.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", LOOPBACK_CONNECTION)
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kw: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost"):
            raise OSError(f"telemetry test: no network beyond loopback ({host!r})")
        return real_getaddrinfo(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    telemetry.reset_for_tests()
    if not _REAL:
        _REAL["spans"] = InMemorySpanExporter()
        # Delta counters (as the Azure Monitor exporter sends them): each read gives what was counted since the last.
        _REAL["metrics"] = InMemoryMetricReader(preferred_temporality={Counter: AggregationTemporality.DELTA})
        t = telemetry.ensure(span_processors=[SimpleSpanProcessor(_REAL["spans"])],
                             metric_readers=[_REAL["metrics"]], disable_offline_storage=True)  # fmt: skip
        assert t.enabled, "the distro did not configure"
        _REAL["telemetry"] = t
    else:
        names.install(_REAL["telemetry"])
        telemetry._done = True
    _REAL["spans"].clear()
    _REAL["metrics"].get_metrics_data()  # what earlier tests counted is read off here
    yield _REAL
    telemetry.reset_for_tests()


def metric_points(reader: Any) -> dict[str, list[tuple[dict[str, Any], float]]]:
    out: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    out.setdefault(m.name, []).append((dict(p.attributes or {}), p.value))
    return out


def total(points: list[tuple[dict[str, Any], float]], **match: Any) -> float:
    return sum(v for a, v in points if all(a.get(k) == want for k, want in match.items()))


def test_a_run_with_a_retry_a_filtered_list_and_a_delete_records_names_and_numbers_only(
    otel, blob_service, app_env, make_runtime, defender, identity_env
) -> None:
    """Feed `acme` imported (the first import call answered 429, then retried), re-dropped with one row gone
    (List, then a delete of the stale one), and a List with an OData `$filter` naming a value: the spans and
    metrics say what happened — counts by status and type, calls by kind and status, the 429 and the retry,
    the jobs by outcome, the tenant's count and room — and no attribute holds a value, a URL query, a token,
    a key or the identity header."""
    rt = make_runtime()
    values = [hex_value(f"tel-{i}") for i in range(4)]
    ip = public_ip(77)
    defender.admin.add_fault(kind="status", status=429, count=1, path="/api/indicators/import", retry_after=0)
    name, container = "feeds/acme/list.txt", app_env["INDICATORS_CONTAINER"]
    bc = upload(blob_service, container, name, ("\n".join([*values, ip]) + "\n").encode())
    deliver(bc, app_env)
    first = report(blob_service, app_env, name)
    assert first["summary"]["submitted"] == 5 and first["summary"]["retries"] == 1
    bc = upload(blob_service, container, name, ("\n".join(values) + "\n").encode())
    deliver(bc, app_env)
    second = report(blob_service, app_env, name)
    assert second["tenant"]["deleted"] == 1 and second["summary"]["deleteCalls"] == 1
    in_jobs = len(otel["spans"].get_finished_spans())
    listed = list(rt.defender.list_indicators(filter=f"indicatorValue eq '{values[0]}'"))
    assert [r["indicatorValue"] for r in listed] == [values[0]]

    spans = otel["spans"].get_finished_spans()
    calls = [s for s in spans if s.name == names.DEFENDER_CALL_SPAN]
    jobs = [s for s in spans if s.name == names.JOB_SPAN]
    assert len(jobs) == 2 and {s.attributes[names.OUTCOME] for s in jobs} == {names.COMPLETED}
    imports = [dict(s.attributes) for s in calls if s.attributes[names.KIND] == "import"]
    assert [(a[names.ATTEMPT], a[names.STATUS_CODE]) for a in imports] == [(1, 429), (2, 200)]
    assert {(s.attributes[names.METHOD], s.attributes[names.ROUTE]) for s in calls} >= {
        ("POST", "/api/indicators/import"), ("GET", "/api/indicators")}  # fmt: skip
    assert any(s.attributes[names.KIND] == "delete" for s in calls)
    # Each Defender call of a job is a child of its job span; the filtered List above ran outside any job.
    job_ids = {s.context.span_id for s in jobs}
    inside = [s for s in spans[:in_jobs] if s.name == names.DEFENDER_CALL_SPAN]
    assert inside and all(s.parent is not None and s.parent.span_id in job_ids for s in inside)
    outside = [s for s in spans[in_jobs:] if s.name == names.DEFENDER_CALL_SPAN]
    assert outside and all(s.parent is None and s.attributes[names.KIND] == "list" for s in outside)

    points = metric_points(otel["metrics"])
    ind = points[names.INDICATORS]
    assert total(ind, status="submitted") == 5 and total(ind, status="submitted", type="FileSha256") == 4
    assert total(ind, status="submitted", type="IpAddress", code="submitted") == 1
    assert total(ind, status="unchanged") == 4
    assert total(points[names.DEFENDER_CALLS], kind="import", status_code=429) == 1
    assert total(points[names.DEFENDER_THROTTLED], kind="import") == 1
    assert total(points[names.DEFENDER_RETRIES], kind="import") == 1
    assert total(points[names.DEFENDER_CALLS], kind="list") >= 3
    assert total(points[names.DEFENDER_CALLS], kind="delete") == 1
    assert total(points[names.JOBS], outcome="completed", kind="blob") == 2
    (active,) = [v for a, v in points[names.TENANT_ACTIVE] if a == {"tenant": "default"}]
    (room,) = [v for a, v in points[names.TENANT_ROOM] if a == {"tenant": "default"}]
    (cap,) = [v for a, v in points[names.TENANT_CAP] if a == {"tenant": "default"}]
    assert (active, cap) == (4, 15000) and room == 15000 - 500 - 4

    # Nothing secret or sensitive, in any attribute of any span, event, resource or metric point.
    texts = []
    for s in spans:
        texts += [f"{k}: {v}" for k, v in (s.attributes or {}).items()]
        texts += [f"{k}: {v}" for e in s.events for k, v in (e.attributes or {}).items()]
        texts += [f"{k}: {v}" for k, v in s.resource.attributes.items()]
        texts.append(s.name)
    for name, pts in points.items():
        texts += [f"{name} {k}: {v}" for a, _ in pts for k, v in a.items()]
    blob = "\n".join(texts)
    forbidden = [*values, ip, "?", "$filter", "filter=", "code=", "Bearer", "eyJ", identity_env.identity_header,
                 ownership.feed_mark("acme", "FileSha256", values[0]), defender.base_url]  # fmt: skip
    assert [f for f in forbidden if f and f in blob] == []
    assert not any(k in ("url.full", "http.url", "http.target", "url.query") for s in spans for k in s.attributes)
    # Every name used is one of the names the queries may use (core/telemetry.py).
    assert set(points) <= set(names.COUNTERS + names.GAUGES)
    for s in calls + jobs:  # plus the sampler's own `_MS.sampleRate`
        assert set(s.attributes) - {"_MS.sampleRate"} <= set(names.SPAN_ATTRIBUTES[s.name])
    for metric, pts in points.items():
        assert all(set(a) <= set(names.METRIC_ATTRIBUTES[metric]) for a, _ in pts), metric


def test_jobs_are_counted_by_outcome_retried_poisoned_and_failed(
    otel, functions, make_runtime, defender, identity, jobs_host, monkeypatch
) -> None:
    """A job that crashes on every delivery: `retried` for each redelivery, `poisoned` on the last one (the app's
    own count, whatever becomes of the poison queue); a 403 past its retry window: `retried`, then `failed`, the
    403s counted by status code."""
    from shared.app import attempt
    from tests.app.test_jobs import body_of, poll, request

    make_runtime(HTTP_SYNC_SECONDS="0", AzureFunctionsJobHost__extensions__queues__maxDequeueCount="3",
                 ACCESS_DENIED_RETRY_HOURS="0.0003")  # fmt: skip
    jobs_host.max_dequeue_count = 3
    real = attempt.run_job

    def crashing(job: Any, **kw: Any) -> Any:
        if kw.get("client") is not None and not isinstance(kw["client"], attempt.Refusing):
            raise RuntimeError("a bug on this input")
        return real(job, **kw)

    identity.configure(roles=["Ti.Read.All"])  # every token of this test lacks the import role
    monkeypatch.setattr(attempt, "run_job", crashing)
    _code, _pending, headers, _ = request(functions, body_of([hex_value("poisoned")]))
    assert poll(functions, headers["Location"])["status"] == "failed"
    jobs_host.drain()
    monkeypatch.setattr(attempt, "run_job", real)
    _code, _pending, headers, _ = request(functions, body_of([hex_value("denied")]))
    assert poll(functions, headers["Location"])["status"] == "failed"
    jobs_host.drain()  # the record is final a moment before the invocation that wrote it has counted it

    points = metric_points(otel["metrics"])
    jobs = points[names.JOBS]
    assert total(jobs, outcome="retried", kind="http") >= 3  # two crashes, at least one 403 retry
    assert total(jobs, outcome="poisoned", kind="http", status="failed") == 1
    assert total(jobs, outcome="failed", kind="http", status="failed") == 1
    assert total(jobs, outcome="completed") == 0
    calls = points[names.DEFENDER_CALLS]
    assert total(calls, kind="import", status_code=403) >= 1  # Ti.Read.All may list, not import
    spans = [s for s in otel["spans"].get_finished_spans() if s.name == names.JOB_SPAN]
    assert {s.attributes.get(names.OUTCOME) for s in spans} == {"retried", "poisoned", "failed"}
    assert {s.attributes.get(names.ERROR) for s in spans} >= {"RuntimeError", "AccessDenied"}


def test_the_queue_functions_context_is_annotated_as_the_worker_requires(functions) -> None:
    """The Python worker loads a function with a `context` parameter only when its annotation is a type named
    `Context` (azure_functions_worker/functions.py); a union would leave the app with no functions (P11)."""
    import typing

    import azure.functions as func

    hints = typing.get_type_hints(functions["run_import_jobs"].get_user_function())
    assert hints["context"] is func.Context
