"""Command line (CONTRACT.md "Command line"): `python -m shared validate FILE... [--report-dir DIR] [--json]`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from shared.app.cli import SHOW_REJECTED, Tally, main, run_files
from shared.core.model import Outcome, Status
from shared.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def cli(argv, env=None):
    out: list[str] = []
    code = main(argv, env=env or {}, printer=out.append)
    return code, "\n".join(out)


def test_validate_writes_reports_and_prints_counts(tmp_path):
    f = write(tmp_path / "iocs.txt", f"# list\n{SHA256}\nevil[.]example[.]com\n10.0.0.1\nevil.example.com\n")
    code, out = cli(["validate", str(f), "--report-dir", str(tmp_path / "r")])
    assert code == 0
    doc = json.loads((tmp_path / "r" / "iocs.txt.report.json").read_text(encoding="utf-8"))
    assert [e["status"] for e in doc["indicators"]] == ["skipped", "skipped", "invalid", "duplicate"]
    assert doc["indicators"][0]["reason"] == "validation only" and doc["dryRun"] is True
    rows = list(csv.reader((tmp_path / "r" / "iocs.txt.report.csv").open(encoding="utf-8", newline="")))
    assert rows[0] == ["line", "status", "indicatorType", "indicatorValue", "action", "id", "reason"]
    assert len(rows) == 5
    assert "by status: duplicate 1, invalid 1, skipped 2" in out
    assert "DomainName 2" in out and "FileSha256 1" in out
    assert "line 4: invalid: '10.0.0.1'" in out
    # [html] the page beside them, named like them, with the same counts.
    page = (tmp_path / "r" / "iocs.txt.report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "iocs.txt" in page
    assert 'id="count-skipped" title="not submitted on purpose"><span class="n">2</span>' in page
    assert str(tmp_path / "r" / "iocs.txt.report.html") in out


def test_json_output_is_machine_readable(tmp_path):
    f = write(tmp_path / "a.csv", "value,type\n8.8.8.8,ip\nnot a thing,domain\n")
    code, out = cli(["validate", str(f), "--report-dir", str(tmp_path), "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["exitCode"] == 0
    (entry,) = doc["files"]
    assert entry["summary"]["total"] == 2 and entry["byStatus"] == {"skipped": 1, "invalid": 1}
    assert entry["rejected"][0]["line"] == 3
    assert entry["reports"]["html"] == str(tmp_path / "a.csv.report.html")


def test_same_file_name_twice_is_refused_before_processing(tmp_path):
    (tmp_path / "x").mkdir()
    a = write(tmp_path / "a.txt", "8.8.8.8\n")
    b = write(tmp_path / "x" / "a.txt", "8.8.4.4\n")
    code, out = cli(["validate", str(a), str(b), "--report-dir", str(tmp_path / "r")])
    assert code == 2 and "same file name" in out
    assert not (tmp_path / "r").exists()


def test_missing_file_exits_1_but_others_are_processed(tmp_path):
    good = write(tmp_path / "good.txt", "8.8.8.8\n")
    code, out = cli(["validate", str(tmp_path / "missing.txt"), str(good), "--report-dir", str(tmp_path)])
    assert code == 1 and "cannot be processed" in out
    assert (tmp_path / "good.txt.report.json").exists()


def test_json_output_names_no_reports_for_a_file_that_could_not_be_opened(tmp_path):
    good = write(tmp_path / "good.txt", "8.8.8.8\n")
    code, out = cli(["validate", str(tmp_path / "missing.txt"), str(good), "--report-dir", str(tmp_path), "--json"])
    missing, ok = json.loads(out)["files"]
    assert code == 1 and missing["status"] == "failed" and "reports" not in missing
    assert not (tmp_path / "missing.txt.report.json").exists()
    assert Path(ok["reports"]["json"]).exists()


def test_unreadable_format_exits_1(tmp_path):
    f = tmp_path / "doc.pdf"
    f.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    code, _ = cli(["validate", str(f), "--report-dir", str(tmp_path)])
    assert code == 1
    assert json.loads((tmp_path / "doc.pdf.report.json").read_text())["status"] == "failed"


def test_bad_settings_exit_2(tmp_path):
    f = write(tmp_path / "a.txt", "8.8.8.8\n")
    code, out = cli(["validate", str(f)], env={"BATCH_SIZE": "9000"})
    assert code == 2 and "BATCH_SIZE" in out


def test_usage_errors_exit_2():
    assert cli(["validate"])[0] == 2
    assert cli(["frobnicate", "x"])[0] == 2


def test_run_files_with_a_client_factory(tmp_path):
    class Sub:
        """A Defender client stand-in: an empty tenant, every import accepted."""

        api_calls = retries = list_calls = delete_calls = 0

        def submit(self, batch):
            self.api_calls += 1
            return [o.final(Status.submitted, id="1") for o in batch]

        def list_indicators(self, filter=None, page_size=10000):
            self.list_calls += 1
            return iter(())

        def identity_ids(self):
            return ()

    f = write(tmp_path / "a.txt", "8.8.8.8\n8.8.4.4\n")
    out: list[str] = []
    code = run_files([f], tmp_path, Settings(), Sub, None, out.append)
    doc = json.loads((tmp_path / "a.txt.report.json").read_text())
    assert code == 0 and doc["summary"]["submitted"] == 2 and doc["summary"]["apiCalls"] == 1
    assert any("settled by Defender" in line for line in out)  # progress


def test_python_dash_m_entry_point(tmp_path):
    f = write(tmp_path / "a.txt", "8.8.8.8\n")
    proc = subprocess.run(
        [sys.executable, "-m", "shared", "validate", str(f), "--report-dir", str(tmp_path), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"][0]["status"] == "completed"


_entries = st.lists(
    st.builds(
        Outcome,
        line=st.integers(1, 100),
        value=st.just("v"),
        type=st.sampled_from([None, "FileSha256", "Url", "mystery"]),
        action=st.none(),
        status=st.sampled_from(list(Status)),
    ),
    max_size=40,
)


@given(_entries)
def test_the_tally_counts_what_counters_of_the_names_count(entries):
    """The per-entry tally (plain dicts keyed by the status object, named at the end) says what Counters of
    the names say, in the same first-seen order."""
    tally = Tally()
    for o in entries:
        tally.add(o)
    by_status = Counter(o.status.value for o in entries)
    assert list(tally.by_status.items()) == list(by_status.items())
    assert list(tally.by_type.items()) == list(Counter(o.type or "unknown" for o in entries).items())
    rejected = [o for o in entries if o.status in (Status.invalid, Status.failed)][:SHOW_REJECTED]
    assert [(r["line"], r["status"]) for r in tally.rejected] == [(o.line, o.status.value) for o in rejected]
