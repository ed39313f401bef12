"""Coalesced batches: 100 concurrent 2-indicator POSTs against a Defender whose import calls take 1 s.

Prints the import calls (goal: 3 or fewer), the List calls (at most one per drain), the seconds to each POST's
answer (p50, p95, max; goal: every answer within 30 s), and the seconds until all 100 jobs are final. The
`async def` handlers run on one event loop, their storage calls on a thread pool of `--pool` threads, the
queue worker driven by `localdev.host`, on Azurite and the emulators.

    .venv/bin/python benchmarks/bench_coalesce.py [--requests 100] [--import-seconds 1] [--pool 16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import azure.functions as func

from localdev.host import app_on_stack


class _Ctx:
    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--import-seconds", type=float, default=1.0)
    ap.add_argument("--pool", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with app_on_stack(MAX_CALLS_PER_MINUTE="30", BATCH_SIZE="500") as (function_app, _rt, stack, host):
        stack.defender.admin.configure(import_seconds=args.import_seconds)

        async def one(i: int) -> tuple[int, float]:
            values = [hashlib.sha256(f"coalesce-{i}-{k}".encode()).hexdigest() for k in range(2)]
            body = json.dumps({"Indicators": [{"indicatorValue": v, "action": "Audit"} for v in values]}).encode()
            req = func.HttpRequest(method="POST", url="http://127.0.0.1/api/indicators/import", params={},
                                   body=body, headers={"Content-Type": "application/json"})  # fmt: skip
            t0 = time.monotonic()
            resp = await function_app.import_indicators(req, _Ctx())
            return resp.status_code, time.monotonic() - t0

        async def all_of() -> list[tuple[int, float]]:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(args.pool))
            return await asyncio.gather(*(one(i) for i in range(args.requests)))

        t0 = time.monotonic()
        answers = asyncio.run(all_of())
        host.drain(300)
        all_final = time.monotonic() - t0
        calls = stack.defender.admin.calls()
        imports = [c for c in calls if c["path"].lower() == "/api/indicators/import"]
        lists = [c for c in calls if c["path"].lower() == "/api/indicators" and c["method"] == "GET"]
        times = sorted(t for _, t in answers)
        figures = {
            "requests": args.requests,
            "answers200": sum(1 for s, _ in answers if s == 200),
            "importCalls": len(imports),
            "entriesSent": sum(c["items"] or 0 for c in imports),
            "listCalls": len(lists),
            "answerSecondsP50": round(statistics.median(times), 2),
            "answerSecondsP95": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
            "answerSecondsMax": round(times[-1], 2),
            "allFinalSeconds": round(all_final, 2),
        }
    if args.json:
        print(json.dumps(figures))
    else:
        f = figures
        print(f"{f['requests']} concurrent 2-indicator POSTs, import calls of {args.import_seconds:g} s:")
        print(f"  import calls: {f['importCalls']} carrying {f['entriesSent']} entries (goal: 3 or fewer); "
              f"List calls: {f['listCalls']}")  # fmt: skip
        print(f"  answers: {f['answers200']} x 200; seconds to the answer p50 {f['answerSecondsP50']}, "
              f"p95 {f['answerSecondsP95']}, max {f['answerSecondsMax']} (goal: all within 30 s)")  # fmt: skip
        print(f"  all jobs final after {f['allFinalSeconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
