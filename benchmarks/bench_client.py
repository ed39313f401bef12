"""Figures for the Defender client: calls made and achieved call rate against the emulator.

Submits N valid indicators in batches of 500 through the real client (azure-identity credential,
`requests`) against the Defender and identity emulators on loopback, with a scaled rate window
(default 30 calls per 3 s instead of per 60 s, so 100,000 indicators span about 7 windows). On a 1 s
window the run is bound by the work per call (about 30 ms for 500 indicators here, client and emulator
together), not by the pacer: 30 calls alone nearly fill the window, so the ratio measures the machine.

Printed per scenario:
- calls made versus the minimum (ceil(N / 500)) and retries: with injected faults, calls = minimum + retries;
- the achieved rate as a ratio to the limit, over whole windows: call k may start no earlier than
  floor(k / max_calls) windows after the first, so the first m * max_calls calls need m windows at best;
- the largest number of calls the emulator saw in any window (must not exceed the limit), and 429s.

Run: `python benchmarks/bench_client.py [--indicators 100000] [--calls 30] [--window 1.0] [--faults]`.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localdev.admin import DefenderAdmin  # noqa: E402 - after the path set-up above
from localdev.identity_emulator import IdentityEmulator  # noqa: E402 - after the path set-up above
from localdev.ratelimit import max_in_window  # noqa: E402 - after the path set-up above
from localdev.stack import stop_process  # noqa: E402 - after the path set-up above
from shared.core.batching import batches  # noqa: E402 - after the path set-up above
from shared.core.model import Action, Indicator, IndicatorType, Outcome, Status  # noqa: E402 - after the path set-up above
from shared.core.settings import Settings  # noqa: E402 - after the path set-up above
from shared.defender import CallPacer, client_policy, make_client  # noqa: E402 - after the path set-up above

IMPORT = "/api/indicators/import"
BATCH = 500


def outcomes(n: int) -> list[Outcome]:
    out = []
    for i in range(n):
        value = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
        ind = Indicator(
            indicatorValue=value,
            indicatorType=IndicatorType.FileSha256,
            action=Action.Block,
            title="Benchmark",
            description="Benchmark indicator",
        )
        out.append(Outcome(line=i + 1, value=value, type="FileSha256", action="Block", status=None, indicator=ind))
    return out


def start_defender(window: float) -> tuple[subprocess.Popen[str], str]:
    """The Defender emulator in its own process, so that its work does not share the client's GIL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localdev.defender_emulator",
            "--port",
            "0",
            "--time-scale",
            str(60.0 / window),
            "--tenant-cap",
            str(10**7),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        stop_process(proc)
        raise RuntimeError(f"the Defender emulator did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def run(n: int, max_calls: int, window: float, faults: bool) -> dict[str, Any]:
    identity = IdentityEmulator()
    identity.start()
    proc, url = start_defender(window)
    admin = DefenderAdmin(url)
    saved = {k: os.environ.get(k) for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")}
    os.environ["IDENTITY_ENDPOINT"] = identity.endpoint
    os.environ["IDENTITY_HEADER"] = identity.identity_header
    try:
        settings = Settings(defender_api_url=url, max_calls_per_minute=max_calls, request_timeout_seconds=5)
        client = make_client(
            settings,
            pacer=CallPacer(max_calls, window),
            policy=client_policy(settings, backoff_factor=0.05, backoff_max=0.2, backoff_jitter=0.05),
        )
        list(client.list_indicators(page_size=1))  # warm up: imports, token, connection (not an import call)
        if faults:
            admin.add_fault("status", count=3, status=503, path=IMPORT)
            admin.add_fault("reset", count=1, path=IMPORT)
            admin.add_fault("malformed_json", count=1, path=IMPORT)
        items = outcomes(n)
        started = time.perf_counter()
        done = 0
        submitted = 0
        for batch in batches(items, BATCH):
            got = client.submit(batch)
            done += len(got)
            submitted += sum(1 for o in got if o.status is Status.submitted)
            if faults and client.api_calls == 40:  # a throttle in the middle of the run
                admin.add_fault("throttle", retry_after=1, path=IMPORT)
        elapsed = time.perf_counter() - started
        calls = admin.calls(IMPORT)
        client.close()
    finally:
        stop_process(proc)
        identity.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    starts = sorted(c["monotonic"] for c in calls)
    # Sustained rate over the full windows: call k may start no earlier than floor(k / limit) windows in.
    full = ((len(starts) - 1) // max_calls) * max_calls
    span = starts[full] - starts[0]
    return {
        "indicators": n,
        "settled": done,
        "submitted": submitted,
        "minimum_calls": math.ceil(n / BATCH),
        "calls": len(calls),
        "client_api_calls": client.api_calls,
        "retries": client.retries,
        "status_429": sum(1 for c in calls if c["status"] == 429),
        "max_in_window": max_in_window(starts, window),
        "limit": max_calls,
        "window_s": window,
        "full_calls": full,
        "ideal_s": full / max_calls * window,
        "actual_s": span,
        "rate_ratio": (full / max_calls * window) / span if span else 1.0,
        "wall_s": elapsed,
    }


def show(title: str, r: dict[str, Any]) -> None:
    print(f"== {title}")
    print(
        f"  indicators {r['indicators']:,}: settled {r['settled']:,}, submitted {r['submitted']:,}\n"
        f"  calls {r['calls']} = minimum {r['minimum_calls']} + retries {r['retries']}"
        f" (client counted {r['client_api_calls']}); 429s {r['status_429']}\n"
        f"  most calls in any {r['window_s']:g} s window: {r['max_in_window']} (limit {r['limit']})\n"
        f"  first {r['full_calls']} calls (whole windows) took {r['actual_s']:.2f} s; the limit allows"
        f" {r['ideal_s']:.2f} s: achieved rate {r['rate_ratio']:.1%} of the limit; wall {r['wall_s']:.2f} s"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--indicators", type=int, default=100_000)
    p.add_argument("--calls", type=int, default=30, help="calls allowed per window")
    p.add_argument("--window", type=float, default=3.0, help="window length in seconds (60 in production)")
    p.add_argument("--faults", action="store_true", help="also run with injected 503s, a reset, bad JSON, a 429")
    args = p.parse_args(argv)
    show("clean run", run(args.indicators, args.calls, args.window, faults=False))
    if args.faults:
        show("with injected faults", run(args.indicators, args.calls, args.window, faults=True))


if __name__ == "__main__":
    main()
