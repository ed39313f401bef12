"""`POST /api/indicators/import` through the registered function, on Azurite and the emulators
(CONTRACT.md "HTTP API"): Defender-compatible answers, limits, messages, dry run, the tenant's turn."""

from __future__ import annotations

import json
import uuid
from typing import Any

import azure.functions as func
import pytest

from shared.app import health, runtime
from shared.core.settings import SettingsError
from tests.support.stack import hex_value, make_indicator


class Ctx:
    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


def post(functions: dict[str, Any], body: bytes, *, ctype: str = "application/json", **params: str) -> Any:
    req = func.HttpRequest(
        method="POST",
        url="http://127.0.0.1/api/indicators/import",
        headers={"Content-Type": ctype, "Content-Length": str(len(body))},
        params=params,
        body=body,
    )
    resp = functions["import_indicators"].get_user_function()(req, Ctx())
    return resp.status_code, json.loads(resp.get_body()), dict(resp.headers)


def import_calls(defender: Any) -> list[dict[str, Any]]:
    return [c for c in defender.admin.calls() if c["path"].lower() == "/api/indicators/import"]


def test_1200_indicators_three_calls_and_1200_values_in_order(functions, make_runtime, defender, blob_service, app_env):
    make_runtime()
    values = [hex_value(f"http-{i}") for i in range(1200)]
    body = json.dumps({"Indicators": [make_indicator(v) for v in values]}).encode()
    status, answer, _ = post(functions, body)
    assert status == 200
    assert [v["indicator"] for v in answer["value"]] == values
    assert all(v["isFailed"] is False and v["id"] for v in answer["value"])
    assert len(import_calls(defender)) == 3
    assert answer["summary"]["submitted"] == 1200 and answer["summary"]["apiCalls"] == 3
    assert answer["report"].startswith("http/") and answer["report"].endswith(".report.json")
    report = json.loads(
        blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], answer["report"]).download_blob().readall()
    )
    assert report["summary"]["total"] == 1200
    # [html] `http/<ts>-<id>.report.html` beside it.
    page = blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], answer["report"][: -len("json")] + "html")
    assert page.get_blob_properties().content_settings.content_type == "text/html; charset=utf-8"
    assert '<span class="n">1,200</span><span class="k">submitted</span>' in page.download_blob().readall().decode()


def test_bare_array_of_strings_csv_and_text_bodies(functions, make_runtime, defender):
    make_runtime()
    status, answer, _ = post(functions, json.dumps(["evil-one.example.com", hex_value("s", 40)]).encode())
    assert status == 200 and [v["isFailed"] for v in answer["value"]] == [False, False]
    csv_body = b"IndicatorType,IndicatorValue,Action\r\nDomainName,evil-two.example.com,Block\r\nUrl,nope,Block\r\n"
    status, answer, _ = post(functions, csv_body, ctype="text/csv")
    assert status == 200
    assert answer["value"][0]["isFailed"] is False
    assert answer["value"][1]["isFailed"] is True and answer["value"][1]["failureReason"].startswith("invalid: ")
    status, answer, _ = post(functions, b"# list\nevil-three[.]example[.]com\n", ctype="text/plain")
    assert status == 200 and answer["value"][0]["indicator"] == "evil-three.example.com"


def test_duplicates_and_invalid_entries_follow_the_status_table(functions, make_runtime, defender):
    make_runtime()
    body = json.dumps(
        {
            "Indicators": [
                make_indicator("dup.example.com"),
                {"indicatorType": "DomainName", "title": "no value"},  # missing indicatorValue: invalid, not 400
                make_indicator("dup.example.com"),
            ]
        },
        indent=1,
    ).encode()
    status, answer, _ = post(functions, body)
    assert status == 200
    first, missing, dup = answer["value"]
    assert first["isFailed"] is False
    assert missing["isFailed"] is True and missing["failureReason"].startswith("invalid: ")
    assert dup["id"] == first["id"] and dup["isFailed"] is False
    assert dup["failureReason"].startswith("duplicate of ")


def test_dry_run_makes_no_call(functions, make_runtime, defender):
    make_runtime()
    status, answer, _ = post(functions, json.dumps([make_indicator("dry.example.com")]).encode(), dryRun="true")
    assert status == 200
    assert answer["value"][0]["failureReason"] == "skipped: dry run"
    assert import_calls(defender) == []


def test_json_lines_body(functions, make_runtime, defender):
    """An `application/x-ndjson` body is read like an .ndjson file: a bad line is one invalid entry."""
    make_runtime()
    body = b'{"indicatorValue": "lines.example.com", "action": "Block"}\nnot json\n"lines2.example.com"\n'
    status, answer, _ = post(functions, body, ctype="application/x-ndjson")
    assert status == 200
    assert [v["indicator"] for v in answer["value"]][::2] == ["lines.example.com", "lines2.example.com"]
    assert [v["isFailed"] for v in answer["value"]] == [False, True, False]
    assert answer["value"][1]["failureReason"].startswith("invalid: ")
    assert len(import_calls(defender)) == 1


@pytest.mark.parametrize(
    ("body", "ctype", "params", "status", "message"),
    [
        (
            b'{"Indicators": [\n  {"indicatorValue": "a.example.com",}\n]}',
            "application/json",
            {},
            400,
            "line 2, column",
        ),
        (b'{"Items": []}', "application/json", {}, 400, "missing key 'Indicators'"),
        (b"<Indicators/>", "application/xml", {}, 415, "unsupported content type"),
        (b"[]", "application/json", {"severity": "Severe"}, 400, "severity"),
        (json.dumps(["a.example.com"] * 4).encode(), "application/json", {}, 413, "MAX_HTTP_INDICATORS"),
        (b"a.example.com\nb.example.com\nc.example.com\nd.example.com\n", "text/plain", {}, 413, "holds 4 indicators"),
        (b'["' + b"a" * 300 + b'"]', "application/json", {}, 413, "MAX_HTTP_BODY_BYTES"),
        (b'["a.example.com"]', "application/json", {"dry-run": "true"}, 400, "unknown query parameter 'dry-run'"),
    ],
)
def test_refused_requests(functions, make_runtime, defender, body, ctype, params, status, message):
    make_runtime(MAX_HTTP_INDICATORS="3", MAX_HTTP_BODY_BYTES="200")
    got, answer, _ = post(functions, body, ctype=ctype, **params)
    assert got == status
    assert message in answer["error"]["message"]
    assert import_calls(defender) == []


def test_503_with_retry_after_when_the_tenant_is_busy(functions, make_runtime, defender, app_env):
    rt = make_runtime(HTTP_LOCK_WAIT_SECONDS="0")
    other = runtime.Runtime.from_env(app_env)
    with other.lock.hold(timeout=5):
        status, answer, headers = post(functions, json.dumps(["busy.example.com"]).encode())
    assert status == 503
    assert int(headers["Retry-After"]) > 0
    assert "another import holds the tenant lock" in answer["error"]["message"]
    assert import_calls(defender) == []
    assert rt.lock.try_acquire() is not None  # nothing left held


def test_lease_lost_mid_import_stops_before_the_next_call(functions, app_env, defender, blob_service):
    """Renewals refused (the lease was broken): no further Defender call without the tenant's turn; 503."""
    import contextlib
    import os
    import time

    from azure.storage.blob import BlobLeaseClient

    from shared.storage.tenant_lock import TenantLock
    from tests.app.conftest import fast_defender_factory

    handles: list[Any] = []

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
            if client.api_calls == 1:  # after the first batch: someone breaks the lease
                lock_blob = blob_service.get_blob_client(app_env["LOCK_CONTAINER"], "defender-tenant.lock")
                BlobLeaseClient(lock_blob).break_lease(0)
                deadline = time.monotonic() + 10
                while not handles[-1].lost and time.monotonic() < deadline:
                    time.sleep(0.02)
            return out

        client.submit = submit
        return client

    env = dict(os.environ, BATCH_SIZE="1")
    rt = runtime.Runtime.from_env(
        env, defender_factory=factory, lock_factory=lambda c: RecordingLock(c, renew_every=0.05)
    )
    runtime.set_runtime(rt)
    try:
        status, answer, headers = post(functions, json.dumps([f"lost{i}.example.com" for i in range(3)]).encode())
    finally:
        runtime.set_runtime(None)
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert "tenant lock" in answer["error"]["message"] and "was lost" in answer["error"]["message"]
    assert len(import_calls(defender)) == 1


def test_503_when_defender_refuses_the_identity(functions, make_runtime, defender, identity):
    make_runtime()
    identity.configure(roles=["Ti.Read.All"])  # the token lacks Ti.ReadWrite.All
    status, answer, _ = post(functions, json.dumps(["denied.example.com"]).encode())
    assert status == 503
    assert "Ti.ReadWrite.All" in answer["error"]["message"]
    assert answer["report"].startswith("http/")


IMPORT_PATH = "/api/indicators/import"
DEADLINE_REASON = "stopped before the HTTP time limit (HTTP_DEADLINE_SECONDS = 10 s)"


def throttled_from_call(n: int, defender: Any) -> Any:
    """A Defender client factory whose n-th import call (1-based) is answered 429 with `Retry-After: 60`."""
    from tests.app.conftest import fast_defender_factory

    def factory(settings: Any) -> Any:
        client = fast_defender_factory(settings)
        real = client.submit
        armed = False

        def submit(batch: Any) -> Any:
            nonlocal armed
            if not armed and client.api_calls == n - 1:
                armed = True
                defender.admin.add_fault("throttle", retry_after=60, path=IMPORT_PATH)
            return real(batch)

        client.submit = submit
        return client

    return factory


def test_a_throttled_batch_past_the_time_limit_fails_the_rest_with_a_200(functions, app_env, defender, blob_service):
    """The Functions host cuts HTTP answers at 230 s: the client stops instead of waiting 60 s for a slot, and
    the caller gets its `value` list — the first batch submitted, the rest failed with a reason to resend."""
    import os
    import time

    env = dict(os.environ, HTTP_DEADLINE_SECONDS="10")
    runtime.set_runtime(runtime.Runtime.from_env(env, defender_factory=throttled_from_call(2, defender)))
    values = [hex_value(f"late-{i}") for i in range(1200)]
    body = json.dumps({"Indicators": [make_indicator(v) for v in values]}).encode()
    try:
        started = time.monotonic()
        status, answer, _ = post(functions, body)
        elapsed = time.monotonic() - started
    finally:
        runtime.set_runtime(None)
    assert status == 200 and elapsed < 10
    assert [v["indicator"] for v in answer["value"]] == values
    first, rest = answer["value"][:500], answer["value"][500:]
    assert all(v["isFailed"] is False and v["id"] for v in first)
    assert all(v["isFailed"] is True and v["id"] is None for v in rest)
    reasons = {v["failureReason"] for v in rest}
    assert len(reasons) == 1
    (reason,) = reasons
    assert reason.startswith(DEADLINE_REASON) and "asked to wait 60 s (HTTP 429, Retry-After)" in reason
    assert reason.endswith("not submitted: resend it")
    calls = import_calls(defender)
    assert [c["status"] for c in calls] == [200, 429]  # no retry of the throttled batch, no third batch
    assert answer["summary"]["submitted"] == 500 and answer["summary"]["failed"] == 700
    assert answer["summary"]["apiCalls"] == 2 and answer["status"] == "completed_with_errors"
    report = json.loads(
        blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], answer["report"]).download_blob().readall()
    )
    assert report["summary"]["failed"] == 700


def test_503_with_retry_after_when_the_time_limit_stops_the_first_batch(functions, app_env, defender):
    import os

    env = dict(os.environ, HTTP_DEADLINE_SECONDS="10")
    runtime.set_runtime(runtime.Runtime.from_env(env, defender_factory=throttled_from_call(1, defender)))
    try:
        status, answer, headers = post(functions, json.dumps([f"slow{i}.example.com" for i in range(3)]).encode())
    finally:
        runtime.set_runtime(None)
    assert status == 503 and headers["Retry-After"] == "60"
    message = answer["error"]["message"]
    assert message.startswith(DEADLINE_REASON) and "None of the 3 indicators was submitted" in message
    assert answer["report"].startswith("http/") and answer["summary"]["failed"] == 3
    assert [c["status"] for c in import_calls(defender)] == [429]


@pytest.mark.parametrize(("value", "ok"), [("10", True), ("225", True), ("9", False), ("226", False), ("x", False)])
def test_http_deadline_setting_bounds(value: str, ok: bool) -> None:
    env = {"HTTP_DEADLINE_SECONDS": value}
    if ok:
        assert runtime.AppOptions.from_env(env).http_deadline == float(value)
    else:
        with pytest.raises(SettingsError, match="HTTP_DEADLINE_SECONDS"):
            runtime.AppOptions.from_env(env)
    assert runtime.AppOptions.from_env({}).http_deadline == 200.0


def test_health_reports_configuration_without_secrets(functions, make_runtime, app_env, monkeypatch):
    req = func.HttpRequest(method="GET", url="http://127.0.0.1/api/health", headers={}, params={}, body=b"")
    resp = functions["health"].get_user_function()(req)
    answer = json.loads(resp.get_body())
    assert resp.status_code == 200 and answer["configurationComplete"] is True
    assert "AccountKey" not in resp.get_body().decode()
    monkeypatch.setenv("BATCH_SIZE", "900")
    monkeypatch.delenv("IndicatorStorage")
    answer = json.loads(functions["health"].get_user_function()(req).get_body())
    assert answer["configurationComplete"] is False
    assert any("BATCH_SIZE" in p for p in answer["problems"])
    assert any("IndicatorStorage is not set" in p for p in answer["problems"])


def test_health_flags_what_would_break_every_import() -> None:
    """What Runtime.from_env refuses (LOCK_CONTAINER = a data container) must not pass as complete; a
    CAPACITY_RESERVE at or above the cap would skip every new indicator for capacity."""
    base = {"IndicatorStorage": "UseDevelopmentStorage=true"}
    answer = health.health_answer({**base, "LOCK_CONTAINER": "indicators"}).body
    assert answer["configurationComplete"] is False
    assert any("LOCK_CONTAINER" in p for p in answer["problems"])
    with pytest.raises(SettingsError, match="LOCK_CONTAINER"):
        runtime.Runtime.from_env({**base, "LOCK_CONTAINER": "indicators"})
    answer = health.health_answer({**base, "MAX_TENANT_INDICATORS": "100", "CAPACITY_RESERVE": "500"}).body
    assert answer["configurationComplete"] is False
    assert any("CAPACITY_RESERVE" in p and "MAX_TENANT_INDICATORS" in p for p in answer["problems"])
    assert health.health_answer(base).body["configurationComplete"] is True
