"""The function app as the host indexes it (azure-functions-conventions.md #19, P11): names, triggers,
connections, routes and auth levels from CONTRACT.md "Function names"; and a light import."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.conftest import REPO


def bindings(fn: Any) -> list[dict[str, Any]]:
    return json.loads(fn.get_function_json())["bindings"]


def test_expected_functions_only(functions: dict[str, Any]) -> None:
    assert set(functions) == {
        "import_dropped_file", "run_import_jobs", "import_indicators", "import_job_status", "health"
    }  # fmt: skip


def test_blob_trigger_is_event_grid_sourced(functions: dict[str, Any]) -> None:
    (trigger,) = bindings(functions["import_dropped_file"])
    assert trigger["type"] == "blobTrigger"
    assert trigger["source"] == "EventGrid"  # Flex Consumption has no polling blob trigger
    assert trigger["path"] == "%INDICATORS_CONTAINER%/{name}"
    assert trigger["connection"] == "IndicatorStorage"
    assert trigger["direction"] == "IN"


def test_blob_parameter_is_the_sdk_blob_client(functions: dict[str, Any]) -> None:
    """The SDK-type binding: the worker hands over a BlobClient, not the blob's bytes."""
    import typing

    import azurefunctions.extensions.bindings.blob as blob

    hints = typing.get_type_hints(functions["import_dropped_file"].get_user_function())
    assert hints["client"] is blob.BlobClient


def test_http_import_route(functions: dict[str, Any]) -> None:
    trigger, out = bindings(functions["import_indicators"])
    assert trigger["type"] == "httpTrigger"
    assert trigger["route"] == "indicators/import"
    assert trigger["methods"] == ["POST"]
    assert trigger["authLevel"] == "FUNCTION"
    assert out["type"] == "http"


def test_queue_worker_and_status_route(functions: dict[str, Any]) -> None:
    (trigger,) = bindings(functions["run_import_jobs"])
    assert (trigger["type"], trigger["queueName"], trigger["connection"]) == ("queueTrigger", "%JOBS_QUEUE%",
                                                                                "IndicatorStorage")  # fmt: skip
    trigger, _out = bindings(functions["import_job_status"])
    assert (trigger["route"], trigger["methods"], trigger["authLevel"]) == (
        "indicators/import/jobs/{id}", ["GET"], "FUNCTION")  # fmt: skip


def test_health_route(functions: dict[str, Any]) -> None:
    trigger, _ = bindings(functions["health"])
    assert (trigger["route"], trigger["methods"], trigger["authLevel"]) == ("health", ["GET"], "FUNCTION")


def test_importing_the_app_loads_nothing_but_the_bindings() -> None:
    """function_app imports azure.functions and the blob binding extension only (issue "Triggers").

    The extension itself pulls in azure.storage.blob, azure.identity and requests (its BlobClient
    subclasses the SDK's, and the worker needs that class when it indexes the app), so the check is
    that importing function_app adds nothing beyond those two imports: no pipeline, no readers, no
    Defender client.
    """
    code = (
        "import sys, json\n"
        "import azure.functions, azurefunctions.extensions.bindings.blob\n"
        "before = set(sys.modules)\n"
        "import function_app\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    added = json.loads(out.stdout)
    assert added == ["function_app"]


def test_importing_the_app_does_not_load_the_pipeline() -> None:
    code = "import sys, json, function_app; print(json.dumps(sorted(m for m in sys.modules if m.startswith('shared'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
