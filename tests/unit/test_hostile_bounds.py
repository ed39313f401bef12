"""Memory and time bounded by configuration, not by the input (issue "Hostile and unlucky input"): long values,
gzip bombs, CSV fields over the csv module's limit, CR-only line ends, UTF-16/32 and Windows-1252 text."""

from __future__ import annotations

import gzip
import io
import json
import time
import tracemalloc
from datetime import UTC, datetime

import pytest

from shared.core.model import FileProblem, RawRow, ReadLimits
from shared.core.settings import Settings, SettingsError
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from shared.readers import read

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def run(data: bytes, name: str, settings: Settings | None = None):
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"name": name}, started_at=NOW, dry_run=True)
    s = settings or Settings()
    result = process_stream(io.BytesIO(data), name, settings=s, submitter=None, reports=w, source=name, now=NOW)
    return result, json.loads(j.getvalue())


# ------------------------------------------------------------------ MAX_VALUE_LENGTH


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("a.json", lambda v: b'["' + v + b'", "evil.example.com"]'),
        ("b.json", lambda v: b'["' + v.replace(b"aa", b"a.") + b'com", "evil.example.com"]'),
        ("a.ndjson", lambda v: b'"' + v + b'"\n"evil.example.com"\n'),
        ("a.csv", lambda v: b"value\n" + v + b"\nevil.example.com\n"),
        ("a.txt", lambda v: b"http://" + v + b"\nevil.example.com\n"),
    ],
)
def test_a_20_mb_value_costs_under_100_mb_and_is_invalid(name, make):
    data = make(b"a" * (20 * 1024 * 1024))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        _result, doc = run(data, name)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1024 * 1024, f"{peak / 2**20:.0f} MB"
    first, second = doc["indicators"]
    assert first["status"] == "invalid" and ("longer than" in first["reason"] or "larger than" in first["reason"])
    assert len(first["indicatorValue"]) < 300
    assert second["indicatorValue"] == "evil.example.com" and second["status"] == "skipped"


def test_max_value_length_is_a_setting():
    s = Settings.from_env({"MAX_VALUE_LENGTH": "300"})
    _, doc = run(json.dumps(["http://evil.example.com/" + "x" * 300, "evil.example.com"]).encode(), "a.json", s)
    assert [e["status"] for e in doc["indicators"]] == ["invalid", "skipped"]
    with pytest.raises(SettingsError, match="MAX_VALUE_LENGTH"):
        Settings.from_env({"MAX_VALUE_LENGTH": "10"})


# ------------------------------------------------------------------ gzip


def test_a_gzip_bomb_stops_at_the_ratio_with_a_file_level_error():
    data = gzip.compress(b"\n" * (256 * 1024 * 1024))  # ~250 KB that decompress to 256 MiB
    started = time.monotonic()
    result, doc = run(data, "bomb.txt.gz")
    assert time.monotonic() - started < 30
    assert result.status == "failed"
    assert "MAX_GZIP_RATIO" in doc["errors"][0]["message"]


def test_gzip_stops_past_max_gzip_bytes_after_the_rows_already_read():
    data = gzip.compress(b"".join(b"h%d.example.com\n" % i for i in range(100_000)))
    s = Settings.from_env({"MAX_GZIP_BYTES": "200000"})
    result, doc = run(data, "list.txt.gz", s)
    assert result.status == "completed_with_errors"
    assert 1000 < result.summary.total < 100_000
    assert "MAX_GZIP_BYTES" in doc["errors"][-1]["message"]


def test_gzip_within_bounds_reads_whole():
    data = gzip.compress(b"".join(b"h%d.example.com\n" % i for i in range(50_000)))
    result, _ = run(data, "list.txt.gz")
    assert result.status == "completed" and result.summary.total == 50_000


# ------------------------------------------------------------------ CSV field limit


def test_a_csv_field_over_the_csv_limit_is_one_invalid_row_and_the_reading_goes_on():
    from shared.readers._csv import FIELD_SIZE_LIMIT

    data = b"value,description\nfirst.example.com,x\nsecond.example.com," + b"d" * (FIELD_SIZE_LIMIT + 10)
    data += b"\nthird.example.com,y\n"
    _result, doc = run(data, "a.csv")
    statuses = [(e["line"], e["status"]) for e in doc["indicators"]]
    assert statuses == [(2, "skipped"), (3, "invalid"), (4, "skipped")]
    assert "field larger than field limit" in doc["indicators"][1]["reason"]


# ------------------------------------------------------------------ line ends


LISTS = {
    "a.txt": ["evil.example.com", "8.8.4.4", "http://bad.example.org/x"],
    "a.md": ["- evil.example.com", "- 8.8.4.4", "- http://bad.example.org/x"],
    "a.csv": ["value", "evil.example.com", "8.8.4.4", "http://bad.example.org/x"],
    "a.ndjson": ['"evil.example.com"', '"8.8.4.4"', '"http://bad.example.org/x"'],
    "a.json": ["[", '"evil.example.com",', '"8.8.4.4",', '"http://bad.example.org/x"', "]"],
}


@pytest.mark.parametrize("name", sorted(LISTS))
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_cr_lf_and_crlf_are_read_alike(name, end):
    data = end.join(LISTS[name]).encode() + end.encode()
    _result, doc = run(data, name)
    values = [e["indicatorValue"] for e in doc["indicators"]]
    assert values == ["evil.example.com", "8.8.4.4", "http://bad.example.org/x"]
    lf, _ = run("\n".join(LISTS[name]).encode(), name)
    assert [e["line"] for e in doc["indicators"]] == [
        e["line"] for e in run("\n".join(LISTS[name]).encode(), name)[1]["indicators"]
    ]
    assert lf.summary.total == 3


# ------------------------------------------------------------------ encodings


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
@pytest.mark.parametrize("name", ["a.txt", "a.csv", "a.json"])
def test_utf16_and_utf32_with_a_bom_are_decoded_with_a_note(codec, name):
    text = {
        "a.txt": "evil.example.com\r\ncafé.example.com\r\n",
        "a.csv": "IndicatorValue,Title\r\nevil.example.com,Café\r\n",
        "a.json": '["evil.example.com"]',
    }[name]
    data = ("\ufeff" + text).encode(codec) if codec.endswith("-be") else text.encode(codec)
    result, doc = run(data, name)
    assert doc["indicators"][0]["indicatorValue"] == "evil.example.com"
    assert result.status == "completed"  # a warning is not an error
    assert doc["errors"][0]["level"] == "warning" and "UTF-" in doc["errors"][0]["message"]


@pytest.mark.parametrize("name", ["a.txt", "a.csv", "a.ndjson"])
def test_windows_1252_lines_are_read_with_a_note(name):
    data = {
        "a.txt": b"caf\xe9.example.com\ngood.example.com\n",
        "a.csv": b"value\ncaf\xe9.example.com\ngood.example.com\n",
        "a.ndjson": b'"caf\xe9.example.com"\n"good.example.com"\n',
    }[name]
    _, doc = run(data, name)
    first, second = doc["indicators"]
    assert first["indicatorValue"] == "xn--caf-dma.example.com"
    assert "Windows-1252" in first["reason"]
    assert second["reason"] == "validation only"


def test_windows_1252_json_is_read_with_a_file_level_warning():
    result, doc = run(b'[\n"evil.example.com",\n{"indicatorValue": "x.example.com", "title": "Caf\xe9"}\n]', "a.json")
    assert result.summary.total == 2 and result.status == "completed"
    assert doc["errors"] == [{"message": "not UTF-8, read as Windows-1252: line 3", "line": 3, "level": "warning"}]


def test_reader_items_of_a_bom_file():
    items = list(read(io.BytesIO("value\nevil.example.com\n".encode("utf-16")), "a.csv", limits=ReadLimits()))
    assert isinstance(items[0], FileProblem) and items[0].warning
    assert isinstance(items[1], RawRow) and items[1].value == "evil.example.com"
