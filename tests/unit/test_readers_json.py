"""JSON readers: Defender body, bare arrays, ThreatFox, MISP events, NDJSON (CONTRACT.md "Inputs": JSON)."""

from __future__ import annotations

import io
import json

import pytest

from shared.core.jsonerrors import explain, line_column
from shared.core.model import (
    FIELD_ACTION,
    FIELD_DESCRIPTION,
    FIELD_GENERATE_ALERT,
    FIELD_MITRE,
    FIELD_RBAC_GROUPS,
    FIELD_TYPE,
    FIELD_VALUE,
    FileProblem,
    RawRow,
)
from shared.readers import read


def items(data: bytes, name: str = "in.json") -> tuple[str, list]:
    r = read(io.BytesIO(data), name)
    return r.format, list(r)


def test_defender_body_field_names_case_insensitive_lists_and_bools():
    doc = {
        "Indicators": [
            {
                "indicatorValue": "evil.example",
                "IndicatorType": "DomainName",
                "action": "Block",
                "rbacGroupNames": ["g1", "g2"],
                "mitreTechniques": ["T1566"],
                "generateAlert": True,
            },
            {"INDICATORVALUE": "1.2.3.4"},
        ]
    }
    fmt, out = items(json.dumps(doc, indent=2).encode())
    assert fmt == "json"
    assert out[0].fields == {
        FIELD_VALUE: "evil.example",
        FIELD_TYPE: "DomainName",
        FIELD_ACTION: "Block",
        FIELD_RBAC_GROUPS: "g1,g2",
        FIELD_MITRE: "T1566",
        FIELD_GENERATE_ALERT: "true",
    }
    assert out[1].fields == {FIELD_VALUE: "1.2.3.4"}
    # Real physical lines where each element starts.
    assert [r.line for r in out] == [3, 16]
    assert not any(r.position for r in out)


def test_element_without_a_value_in_an_indicators_array_is_invalid():
    _, out = items(b'{"Indicators": [{"title": "x"}, 5]}')
    assert [r.invalid is not None for r in out] == [True, True]


def test_bare_array_of_strings_and_objects():
    fmt, out = items(b'["a.example",\n {"value": "1.2.3.4", "type": "ip"}]')
    assert fmt == "json"
    assert out == [RawRow(1, {FIELD_VALUE: "a.example"}), RawRow(2, {FIELD_VALUE: "1.2.3.4", FIELD_TYPE: "ip"})]


def test_threatfox_shape_under_any_key():
    doc = (
        b'{"updated": 1, "count": 2, "iocs": [{"ioc": "a[.]example", "type": "domain"},'
        b' {"ioc": "1.2.3[.]4:80", "type": "ip:port"}]}'
    )
    fmt, out = items(doc)
    assert fmt == "threatfox-json"
    assert [(r.value, r.fields[FIELD_TYPE]) for r in out] == [("a[.]example", "domain"), ("1.2.3[.]4:80", "ip:port")]


def test_arrays_under_unrelated_keys_are_not_mined():
    _, out = items(b'{"tags": ["apt", "x.example"], "meta": [{"name": "n"}], "domains": ["d.example"]}')
    assert out == [RawRow(1, {FIELD_VALUE: "d.example", FIELD_TYPE: "domain"})]


def test_single_indicator_object():
    _, out = items(b'{"indicatorValue": "x.example", "indicatorType": "DomainName"}')
    assert out == [RawRow(1, {FIELD_VALUE: "x.example", FIELD_TYPE: "DomainName"})]


def test_misp_event_attributes_objects_composites_and_to_ids():
    event = {
        "response": [
            {
                "Event": {
                    "info": "test",
                    "Attribute": [
                        {"type": "domain|ip", "value": "evil.example|192.0.2.1", "to_ids": True, "category": "N"},
                        {"type": "mutex", "value": "m", "to_ids": False, "category": "A"},
                        {"type": "regkey", "value": "HKLM\\x", "to_ids": True, "category": "A"},
                    ],
                    "Object": [
                        {
                            "name": "file",
                            "Attribute": [
                                {"type": "sha256", "value": "e" * 64, "to_ids": True, "object_relation": "sha256"},
                                {"type": "filename", "value": "a.exe", "to_ids": False, "object_relation": "filename"},
                            ],
                        }
                    ],
                }
            }
        ]
    }
    fmt, out = items(json.dumps(event, indent=1).encode())
    assert fmt == "misp-json"
    got = [(r.value, r.fields.get(FIELD_TYPE), bool(r.invalid), bool(r.skip)) for r in out]
    assert got == [
        ("evil.example", "domain", False, False),
        ("192.0.2.1", "ip", False, False),
        ("m", "mutex", False, True),
        ("HKLM\\x", "regkey", True, False),
        ("e" * 64, "sha256", False, False),
        ("a.exe", "filename", False, True),
    ]
    assert "regkey" in (out[3].invalid or "")
    assert out[0].line == out[1].line


def test_misp_event_without_response_wrapper():
    doc = b'{"Event": {"Attribute": [{"type": "md5", "value": "' + b"a" * 32 + b'", "to_ids": "1", "comment": "c"}]}}'
    _, out = items(doc)
    assert out == [RawRow(1, {FIELD_VALUE: "a" * 32, FIELD_TYPE: "md5", FIELD_DESCRIPTION: "c"})]


def test_a_trailing_comma_is_tolerated_with_a_warning_naming_its_line():
    """CONTRACT.md "Inputs" [recall]: trailing commas before `]` or `}` are read with a file-level warning."""
    doc = b'{"Indicators": [\n  {"indicatorValue": "a.example"},\n  {"indicatorValue": "b.example",},\n],\n}'
    fmt, out = items(doc)
    assert fmt == "json"
    assert [o.value for o in out[:2]] == ["a.example", "b.example"]  # type: ignore[union-attr]
    assert len(out) == 3 and isinstance(out[2], FileProblem) and out[2].warning and not out[2].fatal
    assert out[2].line == 3
    assert out[2].message == "trailing comma before a closing bracket, tolerated: line 3, 3, 4 (strict JSON has none)"


def test_invalid_json_gives_line_and_column_after_the_rows_read():
    """The document is decoded once: the elements completely read before the error keep their rows."""
    doc = b'{"Indicators": [\n  {"indicatorValue": "a.example"},\n  {"indicatorValue": "b.example"}\n  {"x": 1}]}'
    fmt, out = items(doc)
    assert fmt == "json"
    assert [o.value for o in out[:2]] == ["a.example", "b.example"]  # type: ignore[union-attr]
    assert len(out) == 3 and isinstance(out[2], FileProblem) and out[2].fatal
    assert (out[2].line, out[2].column) == (4, 3)
    assert out[2].message == "invalid JSON: Expecting ',' delimiter"


def test_invalid_json_late_in_a_big_document_keeps_the_rows_before_it():
    body = ",\n".join(json.dumps({"indicatorValue": f"h{i}.example"}) for i in range(20000))
    doc = ("[\n" + body + "\n,]").encode()
    _, out = items(doc)
    assert len(out) == 20001 and isinstance(out[-1], FileProblem)
    assert all(isinstance(o, RawRow) for o in out[:-1])
    assert out[-1].line == 20002


def test_big_document_streams_elements_across_chunk_boundaries_with_real_lines():
    long = "x" * 100_000  # one element larger than a read chunk
    elements = [{"indicatorValue": f"h{i}.example", "description": long if i == 3 else "d"} for i in range(500)]
    doc = ("[\n" + ",\n".join(json.dumps(e) for e in elements) + "\n]").encode()
    _, out = items(doc)
    assert [r.value for r in out] == [f"h{i}.example" for i in range(500)]
    assert [r.line for r in out] == list(range(2, 502))
    assert out[3].fields[FIELD_DESCRIPTION] == long


def test_numbers_split_by_chunk_boundary_are_not_truncated():
    doc = ("[" + " " * (64 * 1024 - 3) + '{"value": 1234567890123}]').encode()
    _, out = items(doc)
    assert out[0].value == "1234567890123"


def test_wrong_extension_json_in_csv_name():
    fmt, out = items(b'[{"value": "a.example"}]', "in.csv")
    assert fmt == "json" and out[0].value == "a.example"


def test_json_extension_holding_non_json_is_a_file_problem():
    fmt, out = items(b"not json at all\n", "in.json")
    assert fmt == "json"
    assert len(out) == 1 and isinstance(out[0], FileProblem) and out[0].line == 1


def test_ndjson_bad_line_is_invalid_and_the_rest_go_on():
    data = b'{"value": "a.example"}\n{oops\n\n"b.example"\n{"name": "no value"}\n'
    fmt, out = items(data, "feed.json")
    assert fmt == "ndjson"
    assert [(r.line, r.value, r.invalid is not None) for r in out] == [
        (1, "a.example", False),
        (2, "{oops", True),
        (4, "b.example", False),
        (5, "", True),
    ]
    assert "not valid JSON" in (out[1].invalid or "")


def test_ndjson_by_extension():
    fmt, out = items(b'{"ioc": "a.example"}\n', "x.jsonl")
    assert fmt == "ndjson" and out[0].value == "a.example"


def test_empty_json_document_is_a_file_problem():
    _, out = items(b"  \n", "in.json")
    assert len(out) == 1 and isinstance(out[0], FileProblem)


@pytest.mark.parametrize(
    ("doc", "message", "line", "column"),
    [
        ("[1, 2,]", "Illegal trailing comma before end of array", 1, 6),
        ('{"a": [1,\n 2,\n]}', "Illegal trailing comma before end of array", 2, 3),
        ('{"a": 1,}', "Illegal trailing comma before end of object", 1, 8),
        ("[1, 2", "Expecting ',' delimiter", 1, 6),
    ],
)
def test_json_errors_read_the_same_on_every_python(doc, message, line, column):
    """A trailing comma is named at the comma on Python 3.11–3.13 alike, so reports do not depend on the runtime."""
    try:
        json.loads(doc)
    except json.JSONDecodeError as e:
        got_msg, pos = explain(e.doc, e.pos, e.msg)
        assert (got_msg, *line_column(e.doc, pos)) == (message, line, column)
    else:
        raise AssertionError("the document should not parse")
