"""The duplicate index stays under DUPLICATE_INDEX_MAX_MB (issue "Hostile and unlucky input"): beyond it the
entries spill to a temporary file, and duplicates are still found across the spill."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from shared.checks.validate import ENTRY_BYTES, DuplicateIndex
from shared.core.model import IndicatorType
from shared.core.settings import Settings, SettingsError
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter

T = IndicatorType
NOW = datetime(2026, 1, 15, tzinfo=UTC)


def test_a_tiny_ceiling_spills_and_still_finds_every_duplicate():
    index = DuplicateIndex(max_mb=0.05)  # about 520 entries in memory
    ceiling = int(0.05 * 1024 * 1024) // ENTRY_BYTES
    n = 100_000
    for i in range(n):
        assert index.first_line(T.FileSha256, f"v{i}", i + 1) is None
        assert len(index._first) < ceiling
    assert index.spills > 100 and len(index) == n
    for i in range(0, n, 997):  # every one found again, with its first line, wherever it lives now
        assert index.first_line(T.FileSha256, f"v{i}", n + i) == i + 1
    assert index.first_line(T.FileSha1, "v1", 5) is None  # another type, another key
    index.close()


def test_without_spilling_nothing_is_written():
    index = DuplicateIndex()
    for i in range(1000):
        index.first_line(T.DomainName, f"d{i}.example.com", i)
    assert index.spills == 0 and index._spill is None


def test_a_run_of_100k_rows_under_a_1_mb_ceiling_reports_the_duplicates():
    lines = [f"h{i}.example.com" for i in range(100_000)] + [f"h{i}.example.com" for i in range(0, 100_000, 10)]
    settings = Settings.from_env({"DUPLICATE_INDEX_MAX_MB": "1"})
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"name": "x"}, started_at=NOW, dry_run=True)
    result = process_stream(
        io.BytesIO("\n".join(lines).encode()), "a.txt", settings=settings, submitter=None, reports=w,
        source="a.txt", now=NOW,
    )  # fmt: skip
    assert result.summary.duplicate == 10_000 and result.summary.skipped == 100_000
    doc = json.loads(j.getvalue())
    assert doc["indicators"][100_001]["reason"] == "validation only; duplicate of line 11" or doc["indicators"][
        100_001
    ]["reason"].endswith("duplicate of line 11")


def test_the_setting_is_checked():
    assert Settings.from_env({}).duplicate_index_max_mb == 256
    with pytest.raises(SettingsError, match="DUPLICATE_INDEX_MAX_MB"):
        Settings.from_env({"DUPLICATE_INDEX_MAX_MB": "0"})
