"""Core path throughput: read → validate → reports (JSON, CSV and the HTML page; validation only), one child
process per case.

Generates inputs in a temporary directory and runs `process_stream` with no submitter in a fresh child for
each, printing rows per second, the child's peak RSS (`ru_maxrss`, reported by the child) and two CPU figures:
`CPU s` (user + sys from `RUSAGE_CHILDREN` around the child, interpreter start and imports included) and
`run CPU` (the child's own `time.process_time()` around the run alone). On a shared machine the CPU figures
are the ones to compare: wall time grows with other load.

Formats (`--formats`):
- `csv`: `sha256,comment`, every field but the value left to the defaults (the issue's 1 M-row goal);
- `txt`: a bare list of SHA-256 hashes;
- `ndjson`: `{"indicatorValue", "indicatorType"}` per line;
- `portal`: a Defender portal CSV in the portal's import layout (IndicatorType, IndicatorValue, ExpirationTime,
  Action, Severity, Title, Description, RecommendedActions, RbacGroups, Category, MitreTechniques,
  GenerateAlert), with Action, Severity, Title and Description filled on every row, as analysts write them;
- `mixed`: a text list of defanged domains and URLs, public IPv4 addresses and hashes, with comments;
- `ndjson-fields`: NDJSON with Defender's field names (action, severity, title, description) on every line.

Two figures run beside `portal` at each size (`--no-extra` leaves them out):
- `csv.reader`: a bare `csv.reader` pass over the same portal file (the floor of any CSV path: decode, split,
  one list per record);
- `python -m shared validate`: the command line on the same file, as a user runs it (CPU s of the whole
  command, reports included); its ratio to the `csv.reader` pass is printed.

With `--repeat N` every case runs N times, interleaved (one round runs each case once), and the medians are
printed: run it this way to compare figures on a busy machine.

Goals (issue): a 1,000,000-row CSV of distinct hashes validated, reports written, in under 10 s on one core with
peak RSS under 200 MB; the 1,000,000-row portal CSV through `python -m shared validate` within 12× the bare
`csv.reader` pass over it.

    .venv/bin/python benchmarks/bench_core.py [--sizes 100000,1000000] [--formats csv,portal,...] [--repeat 3]
        [--profile] [--no-extra]
        [--no-html]   # JSON and CSV reports only, to see what the HTML page's aggregates cost
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORMATS = ("csv", "txt", "ndjson", "portal", "mixed", "ndjson-fields")
# File names: `bench_<rows>.<kind>` for the first three (as they always were), `bench_<rows>.<kind>.<ext>` else.
EXTENSIONS = {"portal": "csv", "mixed": "txt", "ndjson-fields": "ndjson"}

CHILD = r"""
import io, json, resource, sys, time
from datetime import UTC, datetime
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from shared.core.settings import Settings

path, out_dir, profile, html = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
settings = Settings()
t0, c0 = time.perf_counter(), time.process_time()
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
secs, run_cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": secs, "run_cpu": run_cpu, "total": r.summary.total, "skipped": r.summary.skipped,
                  "status": r.status, "format": r.format,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

# A bare csv.reader pass: the floor for any CSV path (decode, split, one list per record).
CSV_READER = r"""
import csv, json, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
n = 0
with open(sys.argv[1], encoding="utf-8", newline="") as f:
    for _ in csv.reader(f):
        n += 1
print(json.dumps({"seconds": time.perf_counter() - t0, "run_cpu": time.process_time() - c0, "total": n - 1,
                  "skipped": n - 1, "status": "read", "format": "csv.reader",
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_ACTIONS = ("Audit", "Block", "Warn", "BlockAndRemediate", "Allowed")
_SEVERITIES = ("Informational", "Low", "Medium", "High")
_CAMPAIGNS = ("Emotet", "QakBot", "IcedID", "Cobalt Strike", "AgentTesla", "Formbook", "Lumma", "Remcos")
# The portal's import template (CONTRACT.md "Inputs": Defender portal CSV).
_PORTAL_HEADER = (
    "IndicatorType,IndicatorValue,ExpirationTime,Action,Severity,Title,Description,RecommendedActions,RbacGroups,"
    "Category,MitreTechniques,GenerateAlert\n"
)


def sha256(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "little")).hexdigest()


def _portal_row(i: int) -> str:
    action, severity = _ACTIONS[i % len(_ACTIONS)], _SEVERITIES[i % 3 + 1]
    title = _CAMPAIGNS[i % len(_CAMPAIGNS)]
    description = f"IR-{i // 250} dropper"
    return f"FileSha256,{sha256(i)},,{action},{severity},{title},{description},,,,,\n"


def _mixed_line(i: int) -> str:
    """Distinct, valid values of every network type and hashes, defanged as reports write them."""
    k = i % 4
    if k == 0:
        return f"host{i}[.]example-{i % 97}[.]com\n"
    if k == 1:
        return f"hxxps://cdn{i}.example-{i % 89}[.]net/download/{i}/payload.bin  # stage two\n"
    if k == 2:
        return f"45.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n"
    return f"{sha256(i)} // dropper\n"


def _fields_line(i: int) -> str:
    return (
        json.dumps(
            {
                "indicatorValue": sha256(i),
                "indicatorType": "FileSha256",
                "action": _ACTIONS[i % len(_ACTIONS)],
                "severity": _SEVERITIES[i % 3 + 1],
                "title": _CAMPAIGNS[i % len(_CAMPAIGNS)],
                "description": f"IR-{i // 250} dropper",
            }
        )
        + "\n"
    )


def generate(kind: str, n: int, directory: Path) -> Path:
    ext = EXTENSIONS.get(kind)
    path = directory / (f"bench_{n}.{kind}.{ext}" if ext else f"bench_{n}.{kind}")
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
        elif kind == "portal":
            f.write(_PORTAL_HEADER)
            f.writelines(_portal_row(i) for i in range(n))
        elif kind == "mixed":
            f.write("# indicators from the weekly report (defanged)\n")
            f.writelines(_mixed_line(i) for i in range(n))
        elif kind == "ndjson-fields":
            f.writelines(_fields_line(i) for i in range(n))
        else:
            raise ValueError(kind)
    return path


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _child(args: list[str], name: str, profile: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cpu0 = _children_cpu()
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{proc.stderr}")
    if profile:
        print(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["cpu"] = _children_cpu() - cpu0
    return result


def run_case(path: Path, out_dir: Path, profile: bool, html: bool = True) -> dict:
    args = ["-c", CHILD, str(path), str(out_dir), "1" if profile else "0", "1" if html else "0"]
    return _child(args, path.name, profile)


def run_csv_reader(path: Path) -> dict:
    return _child(["-c", CSV_READER, str(path)], "csv.reader")


def run_cli(path: Path, out_dir: Path) -> dict:
    """`python -m shared validate FILE --json`: the whole command, as a user runs it (reports included)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "shared", "validate", str(path), "--report-dir", str(out_dir), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"python -m shared validate {path.name} failed:\n{proc.stdout}\n{proc.stderr}")
    entry = json.loads(proc.stdout)["files"][0]
    s = entry["summary"]
    return {
        "seconds": seconds,
        "cpu": cpu,
        "run_cpu": cpu,  # the whole command: interpreter start and imports included
        "total": s["total"],
        "skipped": s["skipped"],
        "status": entry["status"],
        "format": entry["format"],
        "maxrss_kb": None,  # RUSAGE_CHILDREN only knows the largest child so far
    }


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def _print_ratios(paths: list[Path], runs: dict[str, list[dict]]) -> None:
    for path in paths:
        base = runs.get(f"{path.name} csv.reader")
        if not base:
            continue
        floor = _median(base, "run_cpu")
        pipeline = _median(runs[path.name], "run_cpu")
        cli = _median(runs[f"{path.name} python -m shared"], "cpu")
        print(
            f"{path.name}: python -m shared validate (whole command) {cli / floor:.1f}× the csv.reader pass "
            f"({cli:.2f} / {floor:.2f} CPU s); pipeline run CPU {pipeline / floor:.1f}×"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every case, interleaved; medians are printed")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of each case (slower)")
    ap.add_argument("--no-extra", action="store_true", help="leave out the csv.reader and command-line figures")
    ap.add_argument("--no-html", action="store_true", help="write the JSON and CSV reports only (no HTML page)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.formats.split(",")
    with tempfile.TemporaryDirectory(prefix="bench_core_") as tmp:
        d = Path(tmp)
        head = (
            f"{'case':<40} {'rows':>9} {'wall s':>8} {'CPU s':>7} {'run CPU':>8} {'rows/s':>10} "
            f"{'rows/CPU s':>10} {'RSS MB':>7}"
        )
        print(head + "  status" + (f"  (medians of {args.repeat} interleaved runs)" if args.repeat > 1 else ""))
        for n in sizes:
            cases: list[tuple[str, Callable[[], dict]]] = []
            paths = []
            for kind in kinds:
                path = generate(kind, n, d)
                paths.append(path)
                cases.append((path.name, lambda p=path: run_case(p, d, args.profile, html=not args.no_html)))
                if kind == "portal" and not args.no_extra:
                    cases.append((f"{path.name} csv.reader", lambda p=path: run_csv_reader(p)))
                    cases.append((f"{path.name} python -m shared", lambda p=path: run_cli(p, d)))
            runs: dict[str, list[dict]] = {name: [] for name, _ in cases}
            for _ in range(args.repeat):
                for name, case in cases:
                    r = case()
                    assert r["total"] == n == r["skipped"], (name, r)
                    runs[name].append(r)
            for name, results in runs.items():
                wall, cpu, run_cpu = (_median(results, k) for k in ("seconds", "cpu", "run_cpu"))
                last = results[-1]
                rss = f"{_median(results, 'maxrss_kb') / 1024:>7.1f}" if last["maxrss_kb"] is not None else f"{'-':>7}"
                print(
                    f"{name:<40} {n:>9} {wall:>8.2f} {cpu:>7.2f} {run_cpu:>8.2f} {n / wall:>10.0f} "
                    f"{n / cpu:>10.0f} {rss}  {last['status']} ({last['format']})",
                    flush=True,
                )
            _print_ratios(paths, runs)
            for path in paths:
                path.unlink()


if __name__ == "__main__":
    main()
