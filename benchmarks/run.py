"""Run every benchmark and print its figures (`make bench`).

Figures, not tests: nothing here asserts a speed. Each script can also be run on its own with `--help`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ("core pipeline: read, validate, reports: JSON, CSV, HTML page (validation only)", ["bench_core.py"]),
    ("Defender client: calls and achieved rate against the emulator", ["bench_client.py"]),
    ("Defender client with injected faults", ["bench_client.py", "--faults"]),
    ("quota stewardship: 10,000-row feed resubmitted with 1% changes", ["bench_quota.py"]),
    ("telemetry: cold start, first-call configuration and per-span cost, off and on", ["bench_telemetry.py"]),
    ("a 15,000-indicator POST as a queued job, 4-s import calls, real 60-s window (about 2 minutes)",
     ["bench_jobs.py"]),
    ("coalesced batches: 100 concurrent 2-indicator POSTs, 1-s import calls", ["bench_coalesce.py"]),
    ("tenant mirror: List calls of 40 POSTs in a row, and of a compressed hour of 600 POSTs and 3 feed drops",
     ["bench_mirror.py"]),
]


def main() -> int:
    worst = 0
    for title, args in RUNS:
        print(f"\n== {title}", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE.parent)
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())
