"""What telemetry costs: the cold start (importing the app), the first queue invocation's one-time configuration,
and each Defender-call span, with telemetry off and on.

Each measurement runs in a fresh interpreter (module caches cold, as on a new instance). "On" configures the real
`configure_azure_monitor` with exporters pointed at a closed loopback port (statsbeat and the control plane off,
no offline storage): nothing leaves the machine, and export time is not part of these figures.

    python benchmarks/bench_telemetry.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"

SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import function_app
t1 = time.perf_counter()
from shared.app import telemetry, worker   # what the first doorbell imports anyway
t2 = time.perf_counter()
class Credential:  # never asked: the exporters' loopback endpoint is closed and the run ends before an export
    def get_token(self, *scopes, **kw): raise RuntimeError("no token in a benchmark")
telemetry.ensure(credential=Credential(), disable_offline_storage=True)
t3 = time.perf_counter()
from shared.core import telemetry as names
tel = names.current()
def spans(n):
    for i in range(n):
        with tel.defender_call(kind="import", method="POST", route="/api/indicators/import", attempt=1, wait=0.0) as c:
            c.answered(200)
t4 = time.perf_counter()
spans(1)
first_span = time.perf_counter() - t4
n = 200  # fewer than the batch processor queues before it exports
s = time.perf_counter()
spans(n)
per_call = (time.perf_counter() - s) / n
loaded = sum(1 for m in sys.modules if m.startswith(("opentelemetry", "azure.monitor")))
print(json.dumps({"first_span_ms": first_span * 1000, "import_app": t1 - t0, "first_call_imports": t2 - t1,
                  "configure": t3 - t2, "per_call_us": per_call * 1e6, "otel_modules": loaded, "enabled": tel.enabled}))
"""


def once(on: bool) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    env.pop("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", None)
    if on:
        env.update({
            "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION,
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
        })  # fmt: skip
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters per mode (median reported)")
    args = parser.parse_args(argv)
    print(f"{'':24} {'import app':>11} {'1st-call imports':>17} {'configure':>10} {'1st span':>9} {'per span':>9}"
          f" {'otel mods':>9}")  # fmt: skip
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.repeat):  # interleaved, so that a busy machine slows both modes alike
        for on in (False, True):
            results[on].append(once(on))
    for on in (False, True):
        runs = results[on]
        assert all(r["enabled"] is on for r in runs), "telemetry did not configure as expected"

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        label = "on (connection string)" if on else "off (no connection string)"
        first, configure = med("first_call_imports") * 1000, med("configure") * 1000
        print(f"{label:24} {med('import_app') * 1000:9.0f} ms {first:15.0f} ms {configure:8.0f} ms "
              f"{med('first_span_ms'):6.1f} ms {med('per_call_us'):6.1f} µs {int(med('otel_modules')):9d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
