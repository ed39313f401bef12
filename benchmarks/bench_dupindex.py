"""The duplicate index at scale: memory and time for N distinct indicators (default 12,000,000), in memory only
and with the DUPLICATE_INDEX_MAX_MB ceiling (default 256), each in a fresh child process.

Prints, per case: distinct keys, spills, seconds, the child's peak RSS and the RSS growth over the start.
Not run by `make test` (it takes minutes at 12M).

    .venv/bin/python benchmarks/bench_dupindex.py [--n 12000000] [--max-mb 256,0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
from shared.checks.validate import DuplicateIndex
from shared.core.model import IndicatorType
n, max_mb = int(sys.argv[1]), float(sys.argv[2])
start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
index = DuplicateIndex(max_mb=max_mb if max_mb > 0 else 10**9)
t = IndicatorType.FileSha256
t0 = time.perf_counter()
first = index.first_line
for i in range(n):
    first(t, "%064x" % i, i + 1)
dupes = sum(1 for i in range(0, n, 1000) if first(t, "%064x" % i, n + i) is not None)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"distinct": len(index), "spills": index.spills, "dupes_found": dupes, "seconds": round(seconds, 1),
                  "peak_rss_mb": round(peak / 1024), "rss_growth_mb": round((peak - start_rss) / 1024)}))
index.close()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12_000_000)
    ap.add_argument("--max-mb", default="256,0", help="ceilings to try; 0 = no ceiling (memory only)")
    args = ap.parse_args()
    for max_mb in args.max_mb.split(","):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.n), max_mb], cwd=REPO, capture_output=True, text=True, check=True
        )
        doc = json.loads(out.stdout)
        label = f"DUPLICATE_INDEX_MAX_MB={max_mb}" if float(max_mb) > 0 else "no ceiling"
        print(f"{args.n:>11,} distinct, {label:<28} {json.dumps(doc)}")


if __name__ == "__main__":
    main()
