"""Quota stewardship figures (issue 6): a 10,000-row feed, then the same feed resubmitted with 1% changes.

Runs the real pipeline (process_stream + Steward + DefenderClient) against the Defender emulator on a free
loopback port, in-process. Prints import calls and List calls for both runs (goal for the resubmission:
only what the changes need, i.e. one import call) and the wall-clock seconds of each phase.

    .venv/bin/python benchmarks/bench_quota.py [--rows 10000] [--changed 0.01] [--json]
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azure.core.credentials import AccessToken

from localdev.defender_emulator import DefenderEmulator
from localdev.tokens import mint
from shared.checks.validate import validate
from shared.core.model import FIELD_SEVERITY, FIELD_VALUE, RawRow
from shared.core.settings import Settings
from shared.defender import make_client
from shared.defender.pacing import CallPacer
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from shared.tenant.steward import Steward, prepare

RESOURCE = "https://api.securitycenter.microsoft.com"


class _Credential:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(mint(key=self.key, resource=RESOURCE)[0], int(time.time()) + 3600)


def feed(rows: int, changed: int) -> list[RawRow]:
    """`rows` public IPs and hashes; the first `changed` of them with severity High instead of the default."""
    out = []
    for i in range(rows):
        value = str(ipaddress.IPv4Address("20.0.0.0") + i) if i % 2 else f"{i:064x}"
        fields = {FIELD_VALUE: value}
        if i < changed:
            fields[FIELD_SEVERITY] = "High"
        out.append(RawRow(i + 1, fields))
    return out


def run(settings: Settings, client: Any, raw: list[RawRow]) -> dict[str, Any]:
    """One input the way the function app runs it under the tenant lock."""
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    steward = Steward(client, settings)
    prepare(
        steward,
        entries_at_most=len(raw),
        second_pass=lambda: validate(iter(raw), settings, source="feed.txt", now=now),
    )
    t_load = time.perf_counter() - t0
    writer = ReportWriter(io.StringIO(), io.StringIO(), source={"name": "feed.txt"}, started_at=now, dry_run=False)
    result = process_stream(
        io.BytesIO(b""),
        "feed.txt",
        settings=settings,
        submitter=client,
        reports=writer,
        source="feed.txt",
        now=now,
        reader=lambda _s, _n: iter(raw),
        steward=steward,
    )
    s = result.summary
    return {
        "rows": len(raw),
        "submitted": s.submitted,
        "unchanged": s.unchanged,
        "skipped": s.skipped,
        "failed": s.failed,
        "importCalls": s.apiCalls,
        "listCalls": s.listCalls,
        "deleteCalls": s.deleteCalls,
        "loadSeconds": round(t_load, 3),
        "totalSeconds": round(time.perf_counter() - t0, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--changed", type=float, default=0.01, help="fraction of rows changed in the resubmission")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    # A rate-limit "minute" lasts a second in the emulator and in our pacer alike: 20 import calls
    # for the first load would otherwise wait on the 30-a-minute window for nothing.
    with DefenderEmulator(time_scale=60) as emulator:
        settings = replace(Settings(), defender_api_url=emulator.base_url, max_calls_per_minute=30)

        def client() -> Any:
            return make_client(settings, credential=_Credential(emulator.signing_key), pacer=CallPacer(30, 1.0))

        first = run(settings, client(), feed(args.rows, 0))
        again = run(settings, client(), feed(args.rows, int(args.rows * args.changed)))
    figures = {"initial": first, "resubmitted": again}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, f in figures.items():
            print(f"{name:12} " + "  ".join(f"{k}={v}" for k, v in f.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
