"""`POST /api/indicators/import` through the registered function, on Azurite and the emulators
(CONTRACT.md "HTTP API"): Defender-compatible answers, limits, messages, dry run, the tenant's turn."""

from __future__ import annotations

import asyncio
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
    resp = asyncio.run(functions["import_indicators"].get_user_function()(req, Ctx()))
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


def test_settings_of_the_synchronous_import_are_accepted_and_ignored(monkeypatch) -> None:
    """HTTP_DEADLINE_SECONDS, HTTP_LOCK_WAIT_SECONDS and BLOB_LOCK_WAIT_SECONDS meant nothing once imports
    are queued jobs: a deployment that sets them still starts, and health names them as ignored."""
    env = {"HTTP_DEADLINE_SECONDS": "200", "HTTP_LOCK_WAIT_SECONDS": "60"}
    env["IndicatorStorage"] = "UseDevelopmentStorage=true"
    options = runtime.AppOptions.from_env(env)
    assert options.ignored == ("HTTP_DEADLINE_SECONDS", "HTTP_LOCK_WAIT_SECONDS")
    answer = health.health_answer(env).body
    assert answer["ignoredSettings"] == ["HTTP_DEADLINE_SECONDS", "HTTP_LOCK_WAIT_SECONDS"]
    with pytest.raises(SettingsError, match="HTTP_SYNC_SECONDS"):
        runtime.AppOptions.from_env({"HTTP_SYNC_SECONDS": "61"})


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


def test_health_shows_the_reading_bounds() -> None:
    """Issue "Hostile and unlucky input": the bounds that keep memory and time in check are visible."""
    base = {"IndicatorStorage": "UseDevelopmentStorage=true"}
    answer = health.health_answer({**base, "MAX_VALUE_LENGTH": "4096", "DUPLICATE_INDEX_MAX_MB": "64"}).body
    assert answer["limits"] == {
        "maxValueLength": 4096,
        "maxGzipBytes": 2147483648,
        "maxGzipRatio": 200.0,
        "duplicateIndexMaxMB": 64,
    }
    bad = health.health_answer({**base, "MAX_GZIP_RATIO": "0.5"}).body
    assert bad["configurationComplete"] is False and any("MAX_GZIP_RATIO" in p for p in bad["problems"])
