"""The CLI writes its reports to temporary files and renames them (issue "Hostile and unlucky input"): a killed
run leaves no half-written JSON at the final path, and an earlier complete report stays as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.app.cli import LocalReports
from tests.conftest import REPO


def test_an_interrupted_write_leaves_nothing_at_the_final_names(tmp_path: Path):
    reports = LocalReports(str(tmp_path / "a.report.json"), str(tmp_path / "a.report.csv"))
    with pytest.raises(KeyboardInterrupt), reports.open() as (j, _c, _h):
        j.write('{"schemaVersion": 1, "indicators": [')
        raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == []
    with reports.open() as (j, c, _h):
        j.write("{}")
        c.write("line\r\n")
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(n) + f".tmp-{os.getpid()}" for n in (
        reports.json_name, reports.csv_name, reports.html_name))  # fmt: skip
    reports.publish()
    assert sorted(os.listdir(tmp_path)) == ["a.report.csv", "a.report.html", "a.report.json"] and reports.opened


def test_a_killed_run_leaves_the_earlier_complete_report(tmp_path: Path):
    data = tmp_path / "big.txt"
    data.write_text("".join(f"h{i}.example.com\n" for i in range(400_000)))
    final = tmp_path / "big.txt.report.json"
    final.write_text('{"complete": true}')
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared", "validate", str(data), "--report-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(".tmp-" in p.name for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(final.read_text()) == {"complete": True}
