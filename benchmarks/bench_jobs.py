"""A large HTTP import as a queued job: seconds to the first answer and to the final 200.

A 15,000-indicator POST on a real 60-second pacing window (30 import calls a minute) against the Defender
emulator whose import calls each take `--import-seconds` (4 by default: a slow Defender). The POST answers
`202` after HTTP_SYNC_SECONDS (goal: the first answer within 30 s, inside a Consumption Logic App's 120 s),
and the status route is polled until its `200` (goal: within 10% of what 30 calls a minute allow plus the
calls' own time). Runs the registered functions in-process, the queue worker driven by `localdev.host`, on
Azurite and the emulators.

    .venv/bin/python benchmarks/bench_jobs.py [--indicators 15000] [--import-seconds 4] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import azure.functions as func

from localdev.host import app_on_stack


class _Ctx:
    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--indicators", type=int, default=15000)
    ap.add_argument("--import-seconds", type=float, default=4.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = {"MAX_CALLS_PER_MINUTE": "30", "BATCH_SIZE": "500", "CAPACITY_RESERVE": "0"}  # all 15,000 fit
    with app_on_stack(**settings) as (function_app, _rt, stack, _host):
        stack.defender.admin.configure(import_seconds=args.import_seconds)
        values = [hashlib.sha256(f"bench-jobs-{i}".encode()).hexdigest() for i in range(args.indicators)]
        body = json.dumps({"Indicators": [{"indicatorValue": v, "action": "Audit"} for v in values]}).encode()
        req = func.HttpRequest(method="POST", url="http://127.0.0.1/api/indicators/import", params={}, body=body,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        t0 = time.monotonic()
        resp = asyncio.run(function_app.import_indicators(req, _Ctx()))
        first = time.monotonic() - t0
        first_status = resp.status_code
        location = resp.headers.get("Location", "")
        polls = 0
        while resp.status_code == 202:
            time.sleep(min(int(resp.headers.get("Retry-After", "5")), 5))
            polls += 1
            job_id = location.split("?", 1)[0].rsplit("/", 1)[-1]
            req = func.HttpRequest(method="GET", url=location, params={}, body=b"", headers={},
                                   route_params={"id": job_id})  # fmt: skip
            resp = asyncio.run(function_app.import_job_status(req))
        final = time.monotonic() - t0
        answer = json.loads(resp.get_body())
        calls = math.ceil(args.indicators / 500)
        # What the budget allows: `calls` calls of `import_seconds` each, one at a time, and at most 30 in any
        # 60 s — whichever is slower.
        allowed = max(calls * args.import_seconds, (math.ceil(calls / 30) - 1) * 60 + args.import_seconds)
        figures = {
            "indicators": args.indicators,
            "importSecondsPerCall": args.import_seconds,
            "firstAnswerStatus": first_status,
            "firstAnswerSeconds": round(first, 1),
            "finalStatus": resp.status_code,
            "finalSeconds": round(final, 1),
            "polls": polls,
            "importCalls": answer["summary"]["apiCalls"],
            "submitted": answer["summary"]["submitted"],
            "allowedSeconds": round(allowed, 1),
            "finalOverAllowed": round(final / allowed, 3),
        }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['indicators']} indicators, import calls of {args.import_seconds:g} s, 30 calls a minute:")
        print(f"  first answer: HTTP {first_status} after {figures['firstAnswerSeconds']} s (goal: at most 30 s)")
        print(f"  final answer: HTTP {figures['finalStatus']} after {figures['finalSeconds']} s, {polls} polls; "
              f"{figures['importCalls']} import calls, {figures['submitted']} submitted")  # fmt: skip
        print(f"  the budget allows {figures['allowedSeconds']} s: {figures['finalOverAllowed']:.1%} of it "
              "(goal: within 110%)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
