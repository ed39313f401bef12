"""The tenant mirror: how many List calls the app makes, against Defender's 1,500 an hour.

Two runs of the whole app (function entry points, the queue worker driven by `localdev.host`) on Azurite and the
Defender and identity emulators, with the emulator's documented limits on (List 100 a minute and 1,500 an hour;
BatchDelete 30 and 1,500; import 30 a minute):

1. `posts`: 40 one-indicator POSTs, one after the other (each answered before the next), against a tenant of
   12,000 indicators: every POST is a drain of its own.
2. `hour`: one compressed hour (the emulator and the app's pacers on a 60x clock: an hour lasts a minute, and
   TENANT_REFRESH_MINUTES 1 is its 60 minutes): 600 small POSTs (1-3 indicators, spread over the hour, each
   waiting for its answer as a playbook does, HTTP_SYNC_SECONDS 60) and 3 drops of a 5,000-indicator feed file
   (its whole state, `feeds/bench/`; the second changes 10% of the rows, the third swaps 5% for new ones) against
   a tenant of 2,000 analysts' indicators.

Prints List calls (and full listings), the most List calls in any (compressed) hour, import calls, delete calls
(BatchDelete and DELETE) and the 429s by API. Goal: a handful of List calls, no 429 from an hourly window.

    .venv/bin/python benchmarks/bench_mirror.py [--run posts|hour|both] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import azure.functions as func

from localdev.host import QueueHost, app_on_stack
from localdev.ratelimit import max_in_window
from localdev.stack import blob_created_event, deliver_blob_created

TIME_SCALE = 60.0  # the emulator and the app's pacers: a rate-limit minute lasts one second, an hour a minute
HOUR = 3600.0 / TIME_SCALE  # one compressed hour, in real seconds


class _Ctx:
    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


def app(**settings: str) -> contextlib.AbstractContextManager[tuple[Any, Any, Any, QueueHost]]:
    """The function app on a fresh local stack, paced on the emulator's clock (`localdev.host.app_on_stack`)."""
    return app_on_stack(time_scale=TIME_SCALE, paced_on_stack_clock=True, **settings)


def sha256(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def seed_tenant(stack: Any, n: int) -> None:
    """`n` analysts' indicators, made in the portal (the emulator's admin seed)."""
    for start in range(0, n, 2000):
        records = [
            {"indicatorValue": sha256(f"analyst-{i}"), "indicatorType": "FileSha256", "action": "Block"}
            for i in range(start, min(n, start + 2000))
        ]
        stack.defender.admin.seed(*records)


def request(values: list[str], *, respond_async: bool) -> func.HttpRequest:
    body = json.dumps({"Indicators": [{"indicatorValue": v, "action": "Audit"} for v in values]}).encode()
    headers = {"Content-Type": "application/json"}
    if respond_async:
        headers["Prefer"] = "respond-async"
    return func.HttpRequest(method="POST", url="http://127.0.0.1/api/indicators/import", params={}, body=body,
                            headers=headers)  # fmt: skip


def figures(stack: Any, started: float) -> dict[str, Any]:
    """What the emulator saw: calls by API, 429s, and the busiest (compressed) hour of List calls."""
    calls = [c for c in stack.defender.admin.calls() if c["monotonic"] >= started]

    def of(method: str, path: str) -> list[dict[str, Any]]:
        return [c for c in calls if c["method"] == method and c["path"].lower() == path]

    lists = of("GET", "/api/indicators")
    imports = of("POST", "/api/indicators/import")
    batch_deletes = of("POST", "/api/indicators/batchdelete")
    deletes = [c for c in calls if c["method"] == "DELETE"]
    # A full listing starts with `$skip=0` and no `$filter` (look-ups by value filter).
    listings = [c for c in lists if c["query"].get("$skip") in (None, "0") and "$filter" not in c["query"]]
    throttled = {
        "list": sum(1 for c in lists if c["status"] == 429),
        "import": sum(1 for c in imports if c["status"] == 429),
        "delete": sum(1 for c in batch_deletes + deletes if c["status"] == 429),
    }
    return {
        "listCalls": len(lists),
        "fullListings": len(listings),
        "lookupListCalls": sum(1 for c in lists if "$filter" in c["query"]),
        "mostListCallsInAnyHour": max_in_window([c["monotonic"] for c in lists], HOUR) if lists else 0,
        "importCalls": len(imports),
        "batchDeleteCalls": len(batch_deletes),
        "deleteCalls": len(deletes),
        "throttled429": throttled,
    }


def run_posts(posts: int = 40, tenant: int = 12_000) -> dict[str, Any]:
    """`posts` one-indicator POSTs in a row against a tenant of `tenant` indicators."""
    with app() as (function_app, _rt, stack, _host):
        seed_tenant(stack, tenant)
        started = time.monotonic()
        answers = []
        for i in range(posts):
            resp = asyncio.run(function_app.import_indicators(request([sha256(f"post-{i}")], respond_async=False),
                                                              _Ctx()))  # fmt: skip
            answers.append(resp.status_code)
        out = {"posts": posts, "tenant": tenant, "answers200": answers.count(200), **figures(stack, started),
               "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    return out


def feed_file(version: int, rows: int = 5000) -> bytes:
    """The feed's whole state: v1; v2 with 10% of the rows High; v3 as v2 with 5% of the rows new."""
    values = [sha256(f"feed-{i}") for i in range(rows)]
    if version >= 3:
        swap = rows // 20
        values = values[swap:] + [sha256(f"feed-new-{i}") for i in range(swap)]
    lines = ["IndicatorValue,Severity"]
    for i, v in enumerate(values):
        lines.append(f"{v},{'High' if version >= 2 and i % 10 == 0 else 'Medium'}")
    return ("\r\n".join(lines) + "\r\n").encode()


def run_hour(jobs: int = 600, drops: int = 3, tenant: int = 2000, *, pool: int = 64) -> dict[str, Any]:
    """One compressed hour: `jobs` small POSTs and `drops` drops of the feed file, spread over it."""
    # POSTs wait for their 200 (HTTP_SYNC_SECONDS 60): a 202's `ahead` reads every job record, which at hundreds
    # of jobs costs more than the drain itself.
    with app(TENANT_REFRESH_MINUTES=str(60 / TIME_SCALE), HTTP_SYNC_SECONDS="60") as (function_app, rt, stack, host):
        seed_tenant(stack, tenant)
        rng = random.Random(13)
        sizes = [rng.randint(1, 3) for _ in range(jobs)]
        posts_at = sorted(rng.uniform(0, HOUR) for _ in range(jobs))
        drops_at = [HOUR * (k + 0.5) / drops for k in range(drops)]
        started = time.monotonic()
        container = rt.service.get_container_client(rt.settings.indicators_container)

        def drop(version: int) -> None:
            # Each version under a name of its own in the feed's folder (each is the feed's whole state): a version
            # dropped over the one still being read would make that one's import stop ("the blob changed").
            name = f"feeds/bench/state-{version}.csv"
            blob = container.upload_blob(name, feed_file(version), overwrite=True)
            props = blob.get_blob_properties()
            event = blob_created_event(container.container_name, name, etag=props.etag, size=props.size,
                                       url=blob.url, content_type="text/csv")  # fmt: skip
            deliver_blob_created(event, os.environ["IndicatorStorage"], watched_container=container.container_name)

        async def post(i: int) -> int:
            await asyncio.sleep(max(0.0, posts_at[i] - (time.monotonic() - started)))
            values = [sha256(f"playbook-{i}-{k}") for k in range(sizes[i])]
            resp = await function_app.import_indicators(request(values, respond_async=False), _Ctx())
            return resp.status_code

        async def dropping(k: int) -> None:
            await asyncio.sleep(max(0.0, drops_at[k] - (time.monotonic() - started)))
            await asyncio.get_running_loop().run_in_executor(None, drop, k + 1)

        async def hour() -> list[int]:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(pool))
            got = await asyncio.gather(*(post(i) for i in range(jobs)), *(dropping(k) for k in range(drops)))
            return [g for g in got if isinstance(g, int)]

        answers = asyncio.run(hour())
        posted = time.monotonic() - started
        host.drain(1800)
        finished = time.monotonic() - started
        reports = [b.name for b in rt.reports.list_blobs() if b.name.endswith(".report.json")]
        out = {"jobs": jobs, "drops": drops, "tenant": tenant, "answers200": answers.count(200),
               "reports": len(reports), **figures(stack, started), "postedSeconds": round(posted, 1),
               "allFinalSeconds": round(finished, 1)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", choices=("posts", "hour", "both"), default="both")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results: dict[str, Any] = {}
    if args.run in ("posts", "both"):
        results["posts"] = run_posts()
    if args.run in ("hour", "both"):
        results["hour"] = run_hour()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if "posts" in results:
        f = results["posts"]
        print(f"{f['posts']} one-indicator POSTs in a row against a {f['tenant']:,}-indicator tenant "
              f"({f['answers200']} answered 200, {f['seconds']} s):")  # fmt: skip
        print(f"  List calls: {f['listCalls']} ({f['fullListings']} full listings); import calls: {f['importCalls']};"
              f" 429s: {f['throttled429']}")  # fmt: skip
    if "hour" in results:
        f = results["hour"]
        print(f"one compressed hour: {f['jobs']} small POSTs and {f['drops']} drops of a 5,000-indicator feed "
              f"against a {f['tenant']:,}-indicator tenant ({f['reports']} reports; posted in {f['postedSeconds']} s,"
              f" all final after {f['allFinalSeconds']} s):")  # fmt: skip
        print(f"  List calls: {f['listCalls']} ({f['fullListings']} full listings, {f['lookupListCalls']} look-ups by"
              f" value); most in any hour: {f['mostListCallsInAnyHour']} of 1,500")  # fmt: skip
        print(f"  import calls: {f['importCalls']}; BatchDelete calls: {f['batchDeleteCalls']}; DELETE calls:"
              f" {f['deleteCalls']}; 429s: {f['throttled429']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
