"""Core path throughput: read → validate → reports (JSON, CSV and the HTML page; validation only), one child
process per case.

Generates inputs in a temporary directory (CSV of distinct SHA-256 hashes, a plain list, NDJSON),
runs `process_stream` with no submitter in a fresh child for each, and prints indicators per second
the child's peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, reported by the child), and its CPU
seconds (user + sys from `RUSAGE_CHILDREN` around the run, interpreter start and imports included). On a
shared machine the CPU seconds are the figure to compare: wall time grows with other load.

Goal (issue): a 1,000,000-row CSV of distinct hashes validated, reports written, in under 10 s on one
core with peak RSS under 200 MB.

    .venv/bin/python benchmarks/bench_core.py [--sizes 100000,1000000] [--formats csv,txt,ndjson] [--profile]
        [--no-html]   # JSON and CSV reports only, to see what the HTML page's aggregates cost
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import io, json, resource, sys, time
from datetime import UTC, datetime
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from shared.core.settings import Settings

path, out_dir, profile, html = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
settings = Settings()
t0 = time.perf_counter()
def run():
    with open(path, "rb") as f, open(out_dir + "/r.json", "w", encoding="utf-8") as j, \
            open(out_dir + "/r.csv", "w", encoding="utf-8", newline="") as c, \
            open(out_dir + "/r.html", "w", encoding="utf-8") as h:
        w = ReportWriter(j, c, source={"name": path}, started_at=datetime.now(UTC), dry_run=True,
                         **({"html_out": h} if html else {}))
        return process_stream(f, path.rsplit("/", 1)[-1], settings=settings, submitter=None, reports=w, source=path)
if profile:
    import cProfile, pstats
    pr = cProfile.Profile(); pr.enable(); r = run(); pr.disable()
    pstats.Stats(pr, stream=sys.stderr).sort_stats("tottime").print_stats(25)
else:
    r = run()
secs = time.perf_counter() - t0
print(json.dumps({"seconds": secs, "total": r.summary.total, "skipped": r.summary.skipped, "status": r.status,
                  "format": r.format, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def sha256(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "little")).hexdigest()


def generate(kind: str, n: int, directory: Path) -> Path:
    path = directory / f"bench_{n}.{kind}"
    with path.open("w", encoding="utf-8", newline="") as f:
        if kind == "csv":
            f.write("sha256,comment\n")
            f.writelines(f"{sha256(i)},row {i}\n" for i in range(n))
        elif kind == "txt":
            f.write("# bench list\n")
            f.writelines(f"{sha256(i)}\n" for i in range(n))
        elif kind == "ndjson":
            f.writelines(
                json.dumps({"indicatorValue": sha256(i), "indicatorType": "FileSha256"}) + "\n" for i in range(n)
            )
        else:
            raise ValueError(kind)
    return path


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_case(path: Path, out_dir: Path, profile: bool, html: bool = True) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cpu0 = _children_cpu()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(out_dir), "1" if profile else "0", "1" if html else "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"case {path.name} failed:\n{proc.stderr}")
    if profile:
        print(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["cpu"] = _children_cpu() - cpu0
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--formats", default="csv,txt,ndjson")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of each case (slower)")
    ap.add_argument("--no-html", action="store_true", help="write the JSON and CSV reports only (no HTML page)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_core_") as tmp:
        d = Path(tmp)
        head = f"{'case':<22} {'rows':>9} {'wall s':>8} {'CPU s':>7} {'rows/s':>10} {'rows/CPU s':>10} {'RSS MB':>7}"
        print(head + "  status")
        for kind in args.formats.split(","):
            for n in sizes:
                path = generate(kind, n, d)
                r = run_case(path, d, args.profile, html=not args.no_html)
                assert r["total"] == n == r["skipped"], r
                print(
                    f"{path.name:<22} {n:>9} {r['seconds']:>8.2f} {r['cpu']:>7.2f} {n / r['seconds']:>10.0f} "
                    f"{n / r['cpu']:>10.0f} {r['maxrss_kb'] / 1024:>7.1f}  {r['status']} ({r['format']})"
                )
                path.unlink()


if __name__ == "__main__":
    main()
