"""Coalesced batches end to end (CONTRACT.md "Settings" [coalesce]): many small POSTs close together share
import calls and one List of the tenant; each keeps its own answer, report and options. Through the registered
functions on a thread pool, the host stand-in, Azurite and the emulators (import calls of 1 s)."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func

from tests.app.test_http_import import Ctx
from tests.app.test_jobs import URL, body_of, poll
from tests.support.stack import hex_value

POOL = 16  # the threads the handlers' storage calls run on (the async handlers themselves hold none)


def post_all(functions: dict[str, Any], bodies: list[bytes], params: list[dict[str, str]] | None = None
             ) -> list[tuple[int, dict[str, Any], dict[str, str], float]]:  # fmt: skip
    """The POSTs at once, on one event loop, as the worker runs `async def` handlers; per POST its answer
    and the seconds to it."""
    handler = functions["import_indicators"].get_user_function()

    async def one(body: bytes, query: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str], float]:
        req = func.HttpRequest(method="POST", url=URL, params=query, body=body,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        started = time.monotonic()
        resp = await handler(req, Ctx())
        return resp.status_code, json.loads(resp.get_body()), dict(resp.headers), time.monotonic() - started

    async def all_of() -> list[tuple[int, dict[str, Any], dict[str, str], float]]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(POOL))
        return await asyncio.gather(*(one(b, q) for b, q in zip(bodies, params or [{}] * len(bodies), strict=True)))

    return asyncio.run(all_of())


def list_calls(defender: Any) -> list[dict[str, Any]]:
    return [c for c in defender.admin.calls() if c["path"].lower() == "/api/indicators" and c["method"] == "GET"]


def import_calls(defender: Any) -> list[dict[str, Any]]:
    return [c for c in defender.admin.calls() if c["path"].lower() == "/api/indicators/import"]


def test_a_hundred_small_posts_share_a_few_import_calls(functions, make_runtime, defender, blob_service, app_env):
    defender.admin.configure(import_seconds=1.0)
    make_runtime()
    bodies = [[hex_value(f"burst-{i}-a"), hex_value(f"burst-{i}-b")] for i in range(100)]
    answers = post_all(functions, [body_of(v) for v in bodies])
    finals = []
    for (code, body, headers, _), values in zip(answers, bodies, strict=True):
        final = body if code == 200 else poll(functions, headers["Location"])
        assert [v["indicator"] for v in final["value"]] == values  # its own entries, in its own order
        finals.append(final)
    assert all(v["isFailed"] is False for f in finals for v in f["value"])
    calls = import_calls(defender)
    # Shared: far fewer calls than requests (benchmarks/bench_coalesce.py prints the figure; goal: 3 or fewer).
    assert len(calls) <= 10
    assert sum(c["items"] for c in calls) == 200  # every entry sent once
    assert sum(f["summary"]["submitted"] for f in finals) == 200
    assert len(list_calls(defender)) <= len(calls)  # at most one List per drain
    report = json.loads(blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], finals[-1]["report"])
                        .download_blob().readall())  # fmt: skip
    assert report["drain"]["sharedCalls"] >= 1 and report["summary"]["apiCalls"] >= 1


def test_identical_entries_of_two_posts_go_once(functions, make_runtime, defender):
    defender.admin.configure(import_seconds=1.0)
    make_runtime(COALESCE_WINDOW_SECONDS="3")
    value = hex_value("twice-in-a-drain")
    answers = post_all(functions, [body_of([value])] * 2)
    finals = [b if c == 200 else poll(functions, h["Location"]) for c, b, h, _ in answers]
    ids = {f["value"][0]["id"] for f in finals}
    assert len(ids) == 1 and all(f["value"][0]["isFailed"] is False for f in finals)
    assert len(import_calls(defender)) == 1
    statuses = sorted((f["summary"]["submitted"], f["summary"]["unchanged"]) for f in finals)
    assert statuses == [(0, 1), (1, 0)]


def test_a_dry_run_beside_real_ones_is_never_coalesced(functions, make_runtime, defender):
    make_runtime()
    answers = post_all(functions, [body_of([hex_value("real-1")]), body_of([hex_value("dry-1")]),
                                   body_of([hex_value("real-2")])], [{}, {"dryRun": "true"}, {}])  # fmt: skip
    finals = [b if c == 200 else poll(functions, h["Location"]) for c, b, h, _ in answers]
    assert finals[1]["value"][0]["failureReason"] == "skipped: dry run"
    sent = [v for c in import_calls(defender) for v in json.dumps(c)]
    assert hex_value("dry-1") not in "".join(sent)
    assert finals[0]["summary"]["submitted"] == finals[2]["summary"]["submitted"] == 1
    time.sleep(0)  # nothing left running
