"""Reports (CONTRACT.md "Reports"): JSON shape, CSV columns, formula neutralisation, streaming, status."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from shared.core.model import FileProblem, Outcome, Status, Summary
from shared.pipeline.reports import CSV_COLUMNS, ReportWriter, neutralise, report_names, run_status

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC)


def writer(**kw):
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"container": "indicators", "name": "a/b.csv", "etag": "0x1", "size": 10},
                     started_at=T0, dry_run=False, **kw)  # fmt: skip
    return w, j, c


def outcome(line, status, value="evil.example", **kw):
    return Outcome(line=line, value=value, type="DomainName", action="Block", status=status, **kw)


def test_json_report_has_the_contract_shape():
    w, j, _c = writer()
    w.add(outcome(1, Status.submitted, id="17"))
    w.add(outcome(2, Status.invalid, value='quo"te\nnew ünïcode', reason="bad"))
    w.add(outcome(3, Status.skipped, reason="dry run", position=True))
    w.error(FileProblem("trailing garbage", line=4, column=2, fatal=False))
    s = Summary(total=3, submitted=1, invalid=1, skipped=1, apiCalls=1)
    w.finish(s, "completed_with_errors", finished_at=T1, extra={"tenant": {"countBefore": 5}})
    doc = json.loads(j.getvalue())
    assert set(doc) == {"schemaVersion", "source", "startedAt", "finishedAt", "dryRun", "status", "summary", "errors",
                        "ignored", "indicators", "tenant"}  # fmt: skip
    assert doc["schemaVersion"] == 1 and doc["dryRun"] is False and doc["status"] == "completed_with_errors"
    assert (doc["startedAt"], doc["finishedAt"]) == ("2026-01-01T10:00:00Z", "2026-01-01T10:00:05Z")
    assert doc["source"]["name"] == "a/b.csv" and doc["tenant"] == {"countBefore": 5}
    assert doc["errors"] == [{"message": "trailing garbage", "line": 4, "column": 2}]
    assert list(doc["summary"]) == ["total", "submitted", "unchanged", "duplicate", "failed", "invalid", "skipped",
                                    "ignoredLines", "apiCalls", "retries", "listCalls", "deleteCalls",
                                    "splitCalls"]  # fmt: skip
    first, second, third = doc["indicators"]
    assert first == {"line": 1, "indicatorValue": "evil.example", "indicatorType": "DomainName", "action": "Block",
                     "status": "submitted", "id": "17", "reason": None, "code": "submitted"}  # fmt: skip
    assert second["code"] == "invalid" and third["code"] == "skipped"  # no code given: the status stands in
    assert second["indicatorValue"] == 'quo"te\nnew ünïcode'
    assert third["position"] is True and "position" not in first


def test_empty_report_is_valid_json():
    w, j, _ = writer()
    w.finish(Summary(), "completed", finished_at=T1)
    assert json.loads(j.getvalue())["indicators"] == []


def test_extra_cannot_overwrite_contract_fields():
    w, _, _ = writer()
    with pytest.raises(ValueError):
        w.finish(Summary(), "completed", finished_at=T1, extra={"status": "x"})


def test_csv_columns_and_neutralised_cells():
    w, _, c = writer()
    w.add(outcome(5, Status.invalid, value='=HYPERLINK("http://x")', reason="-1+2"))
    w.add(outcome(6, Status.failed, value="  @SUM(A1)", reason="\tx", id="+1"))
    w.add(outcome(7, Status.submitted, value="evil.example", id="9"))
    w.finish(Summary(), "completed", finished_at=T1)
    rows = list(csv.reader(io.StringIO(c.getvalue())))
    assert (
        tuple(rows[0]) == CSV_COLUMNS == ("line", "status", "indicatorType", "indicatorValue", "action", "id", "reason")
    )
    assert rows[1] == ["5", "invalid", "DomainName", '\'=HYPERLINK("http://x")', "Block", "", "'-1+2"]
    assert rows[2][3] == "'  @SUM(A1)" and rows[2][5] == "'+1" and rows[2][6] == "'\tx"
    assert rows[3] == ["7", "submitted", "DomainName", "evil.example", "Block", "9", ""]


@pytest.mark.parametrize(
    ("cell", "want"),
    [("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"), (" =x", "' =x"),
     ("x=1", "x=1"), ("", ""), ("evil.example", "evil.example"),
     # any leading Unicode space (ideographic, em space, NEL) hides a formula start as well as ASCII spaces do
     ("\u3000=1", "'\u3000=1"), ("\u2003+1", "'\u2003+1"), ("\x85@x", "'\x85@x"), (" \u3000\t", "' \u3000\t"),
     ("\u3000x", "\u3000x"),
     # fullwidth formula starts
     ("\uff1d1+1", "'\uff1d1+1"), ("\uff0b1", "'\uff0b1"), ("\uff0d1", "'\uff0d1"), ("\uff20x", "'\uff20x"),
     (" \uff1dx", "' \uff1dx")],
)  # fmt: skip
def test_neutralise(cell, want):
    assert neutralise(cell) == want


def test_writer_streams_and_keeps_no_rows():
    w, j, _c = writer()
    for i in range(1, 2001):
        w.add(outcome(i, Status.skipped, reason="validation only"))
        assert j.getvalue().count('"line": ') == i  # written at once, not at finish
    held = [v for v in vars(w).values() if isinstance(v, list | dict | tuple) and len(v) > 10]
    assert held == []
    assert w.entries == 2000


def test_unfinished_outcome_is_refused():
    w, _, _ = writer()
    with pytest.raises(ValueError):
        w.add(outcome(1, None))


def test_report_names_keep_the_full_path():
    assert report_names("feeds/2026/a.csv") == ("feeds/2026/a.csv.report.json", "feeds/2026/a.csv.report.csv")


@pytest.mark.parametrize(
    ("summary", "errors", "nothing_read", "unreachable", "want"),
    [
        (Summary(total=2, submitted=1, duplicate=1), [], False, False, "completed"),
        (Summary(total=1, skipped=1), [], False, False, "completed"),
        (Summary(total=0), [], False, False, "completed"),
        (Summary(total=2, submitted=1, invalid=1), [], False, False, "completed_with_errors"),
        (Summary(total=1, failed=1), [], False, False, "completed_with_errors"),
        (Summary(total=1, submitted=1), [FileProblem("x", fatal=True)], False, False, "completed_with_errors"),
        (Summary(), [FileProblem("unsupported format")], True, False, "failed"),
        (Summary(total=1, failed=1), [], False, True, "failed"),
    ],
)
def test_run_status(summary, errors, nothing_read, unreachable, want):
    assert run_status(summary, errors, nothing_read=nothing_read, unreachable=unreachable) == want


def test_ignored_lines_are_listed_the_first_1000_then_a_count():
    """CONTRACT.md "Reports" [recall]: `ignored` lists line and first 80 characters; the CSV stays per indicator."""
    from shared.core.model import Ignored

    w, j, c = writer()
    for i in range(1, 1003):
        w.ignored(Ignored(i, "not an indicator line", ("prose " * 20)[:80]))
    w.finish(Summary(ignoredLines=1002), "completed", finished_at=T1)
    doc = json.loads(j.getvalue())
    assert len(doc["ignored"]) == 1001
    assert doc["ignored"][0] == {"line": 1, "text": ("prose " * 20)[:80], "reason": "not an indicator line"}
    assert doc["ignored"][-1] == {"count": 2, "message": "2 further ignored lines not listed"}
    assert c.getvalue().count("\r\n") == 1  # the header only: no rows for ignored lines
