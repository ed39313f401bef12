"""Core modules never load azure.*, requests or urllib3 (STYLE.md module map): checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = ["model", "settings", "normalise", "rules", "validate", "batching", "reports", "process", "readers"]


def test_core_imports_stay_light():
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE!r}: importlib.import_module('shared.' + m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in ("azure", "requests", "urllib3")]
    assert heavy == []
    assert all(f"shared.{m}" in loaded for m in CORE)
