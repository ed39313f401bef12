"""HTTP request checks and the `value` answer, pure (CONTRACT.md "HTTP API", "Outcome of every indicator")."""

from __future__ import annotations

import json

import pytest

from shared.app.http_body import HttpProblem, check_body, overrides_from_params, value_entries
from shared.core.model import Outcome, RawRow, Status

JSON = {"Content-Type": "application/json"}


def check(headers: dict[str, str], body: bytes, **kw: int) -> object:
    return check_body(headers, body, max_bytes=kw.get("max_bytes", 1000), max_indicators=kw.get("max_indicators", 3))


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        (JSON, b'{"Indicators": [1, 2,]}', 400, "malformed JSON at line 1, column 21: Illegal trailing comma"),
        (JSON, b'{\n  "Indicators": [\n    {"a": 1}\n    {"b": 2}\n  ]\n}', 400, "line 4, column 5"),
        (JSON, b'{"indicators": []}', 400, "missing key 'Indicators'"),
        (JSON, b'{"Indicators": {"a": 1}}', 400, "'Indicators' must be an array"),
        (JSON, b'"just a string"', 400, "expected a JSON object or array"),
        (JSON, b"", 400, "empty"),
        (JSON, "{}".encode("utf-16"), 400, "missing key 'Indicators'"),  # UTF-16 with a BOM is read
        (JSON, b"[\xff]", 400, "malformed JSON at line 1, column 2"),  # not UTF-8: read as Windows-1252
        ({"Content-Type": "application/xml"}, b"<x/>", 415, "unsupported content type 'application/xml'"),
        ({}, b"a", 415, "unsupported content type 'none'"),
        (JSON, b"[" + b'"a",' * 400 + b'"a"]', 413, "limit is 1000 (MAX_HTTP_BODY_BYTES)"),
        ({**JSON, "Content-Length": "5000"}, b"[]", 413, "5000 bytes"),
        (JSON, b'["a", "b", "c", "d"]', 413, "holds 4 indicators; the limit is 3 (MAX_HTTP_INDICATORS)"),
    ],
)
def test_refused_bodies(headers: dict[str, str], body: bytes, status: int, message: str) -> None:
    with pytest.raises(HttpProblem) as info:
        check(headers, body)
    assert info.value.status == status
    assert message in info.value.message
    assert info.value.body()["error"]["message"] == info.value.message


@pytest.mark.parametrize(
    ("ctype", "name"),
    [
        ("application/json; charset=utf-8", "http.json"),
        ("text/csv", "http.csv"),
        ("text/plain; charset=utf-8", "http.txt"),
    ],
)
def test_accepted_bodies_pick_the_reader_by_name(ctype: str, name: str) -> None:
    body = b'["evil.example.com"]' if "json" in ctype else b"evil.example.com\n"
    parsed = check_body({"content-type": ctype}, body, max_bytes=1000, max_indicators=3)
    assert parsed.name == name
    assert parsed.size == len(body)
    assert [item.value for item in parsed.items if isinstance(item, RawRow)] == ["evil.example.com"]


def test_csv_count_comes_from_its_rows() -> None:
    """A CSV or text body is counted by the readers, which decode it once; the count is exact past the limit."""
    body = b"ip\n" + b"".join(f"20.0.0.{i}\n".encode() for i in range(7))
    with pytest.raises(HttpProblem, match="holds 7 indicators"):
        check_body({"Content-Type": "text/csv"}, body, max_bytes=1000, max_indicators=3)


def test_overrides_drop_the_function_key() -> None:
    assert overrides_from_params({"code": "secret", "dryRun": "true", "severity": "High"}) == {
        "dryRun": "true",
        "severity": "High",
    }


@pytest.mark.parametrize("key", ["DRY-RUN", "dry-run", "expiry", "sev"])
def test_unknown_query_parameters_are_refused_not_ignored(key: str) -> None:
    """A misspelt `dryRun` must not silently submit for real: 400 naming the key and the accepted names."""
    with pytest.raises(HttpProblem) as info:
        overrides_from_params({"code": "k", key: "true"})
    assert info.value.status == 400
    assert repr(key) in info.value.message and "dryRun" in info.value.message


@pytest.mark.parametrize("ctype", ["application/x-ndjson", "application/ndjson; charset=utf-8", "application/jsonl"])
def test_json_lines_bodies_are_read_as_ndjson(ctype: str) -> None:
    body = b'{"indicator": "evil.example.com"}\n"bad.example.net"\n'
    parsed = check_body({"Content-Type": ctype}, body, max_bytes=1000, max_indicators=3)
    assert parsed.name == "http.ndjson"


def o(line: int, value: str, status: Status, **kw: object) -> Outcome:
    return Outcome(line=line, value=value, type=kw.pop("type", "DomainName"), action="Block", status=status, **kw)  # type: ignore[arg-type]


def test_value_entries_follow_the_status_table() -> None:
    outcomes = [
        o(1, "a.example.com", Status.submitted, id="11"),
        o(2, "b.example.com", Status.unchanged, id="7"),
        o(3, "a.example.com", Status.duplicate, duplicate_of=1),
        o(4, "c.example.com", Status.failed, reason="InvalidDomainName"),
        o(5, "nope", Status.invalid, reason="not an indicator"),
        o(6, "d.example.com", Status.skipped, reason="dry run"),
        o(7, "c.example.com", Status.duplicate, duplicate_of=4),
    ]
    assert value_entries(outcomes) == [
        {"id": "11", "indicator": "a.example.com", "isFailed": False, "failureReason": None},
        {"id": "7", "indicator": "b.example.com", "isFailed": False, "failureReason": None},
        {"id": "11", "indicator": "a.example.com", "isFailed": False, "failureReason": "duplicate of line 1"},
        {"id": None, "indicator": "c.example.com", "isFailed": True, "failureReason": "InvalidDomainName"},
        {"id": None, "indicator": "nope", "isFailed": True, "failureReason": "invalid: not an indicator"},
        {"id": None, "indicator": "d.example.com", "isFailed": True, "failureReason": "skipped: dry run"},
        {
            "id": None,
            "indicator": "c.example.com",
            "isFailed": True,
            "failureReason": "duplicate of line 4 (InvalidDomainName)",
        },
    ]


def test_duplicate_in_json_stream_names_the_entry_position() -> None:
    entries = value_entries(
        [o(2, "x.example.com", Status.submitted, id="5", position=True), o(9, "x.example.com", Status.duplicate)]
    )
    assert entries[1]["failureReason"] == "duplicate of entry 2"
    assert json.dumps(entries)  # serialisable as the answer
