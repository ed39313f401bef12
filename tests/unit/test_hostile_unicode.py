"""Hostile text never crashes a run (issue "Hostile and unlucky input"): a lone UTF-16 surrogate, C0 controls,
NUL, RLO and combining marks, through every reader into every writer, leave as valid UTF-8.

A value holding a lone surrogate is an `invalid` entry; a title or description holding one is cleaned (U+FFFD)
with a note.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.app.http_body import ValueBuilder, check_body
from shared.core.model import Outcome, Status
from shared.core.settings import Settings
from shared.defender import wire
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter

NOW = datetime(2026, 1, 15, tzinfo=UTC)
HOSTILE = ["\ud800", "\udfff", "\x00", "\x01", "\x1b", "\x7f", "\u202e", "\u0301", "\ufeff", "\r", "\u2028"]


class Submitted:
    """Sends every batch through the wire body (which must encode) and accepts it."""

    api_calls = 0
    retries = 0

    def submit(self, batch):
        body = wire.import_body(batch)  # raises UnicodeEncodeError on a lone surrogate
        json.loads(body)
        return [o.final(Status.submitted, id=str(i)) for i, o in enumerate(batch)]


def run(data: bytes, name: str):
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"name": name}, started_at=NOW, dry_run=False)
    values = ValueBuilder()
    result = process_stream(
        io.BytesIO(data), name, settings=Settings(), submitter=Submitted(), reports=w, source=name, now=NOW,
        on_outcome=values.add,
    )  # fmt: skip
    j.getvalue().encode("utf-8")  # strict: every text leaving the app is UTF-8
    c.getvalue().encode("utf-8")
    json.dumps({"value": values.entries}, ensure_ascii=False).encode("utf-8")
    return result, json.loads(j.getvalue())


def test_surrogate_in_a_json_value_is_invalid_and_the_rest_is_submitted():
    _, doc = run(b'["evil.example.com", "\\ud800x.example.com"]', "a.json")
    assert [e["status"] for e in doc["indicators"]] == ["submitted", "invalid"]
    assert "lone UTF-16 surrogate (U+D800)" in doc["indicators"][1]["reason"]
    assert doc["indicators"][1]["indicatorValue"] == "\ufffdx.example.com"


def test_surrogate_in_a_title_is_cleaned_with_a_note():
    body = b'{"Indicators": [{"indicatorValue": "evil.example.com", "title": "bad \\udc80 title"}]}'
    _, doc = run(body, "a.json")
    entry = doc["indicators"][0]
    assert entry["status"] == "submitted"
    assert "title: a lone UTF-16 surrogate (U+DC80)" in entry["reason"]


def test_surrogate_in_ndjson_stix_and_misp():
    nd = b'{"indicatorValue": "\\ud800"}\n{"indicatorValue": "evil.example.com", "description": "\\ud800"}\n'
    _, doc = run(nd, "a.ndjson")
    assert [e["status"] for e in doc["indicators"]] == ["invalid", "submitted"]
    stix = {
        "type": "bundle",
        "id": "bundle--1",
        "objects": [
            {"type": "indicator", "id": "indicator--1", "spec_version": "2.1", "pattern_type": "stix",
             "name": "n\ud800", "pattern": "[domain-name:value = 'evil\ud800.example.com']"},
            {"type": "indicator", "id": "indicator--2", "spec_version": "2.1", "pattern_type": "stix",
             "description": "d\udfff", "pattern": "[domain-name:value = 'good.example.com']"},
        ],
    }  # fmt: skip
    _, doc = run(json.dumps(stix).encode(), "b.json")
    assert [e["status"] for e in doc["indicators"]] == ["invalid", "submitted"]
    attrs = [
        {"type": "domain", "value": "a\ud800.example.com", "to_ids": True},
        {"type": "domain", "value": "b.example.com", "to_ids": True, "comment": "\ud800"},
    ]
    misp = {"Event": {"Attribute": attrs}}
    _, doc = run(json.dumps(misp).encode(), "m.json")
    assert [e["status"] for e in doc["indicators"]] == ["invalid", "submitted"]


def test_http_body_with_a_surrogate():
    body = check_body(
        {"Content-Type": "application/json"},
        b'[{"indicatorValue": "\\ud800"}, {"indicatorValue": "evil.example.com", "title": "\\ud800"}]',
        max_bytes=10**6, max_indicators=100,
    )  # fmt: skip
    rows = [i for i in body.items if hasattr(i, "fields")]
    assert rows[0].invalid and "surrogate" in rows[0].invalid
    assert rows[1].invalid is None and "\ud800" not in rows[1].fields["title"]


def test_report_writer_scrubs_what_reaches_it():
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"name": "bad\udcffname"}, started_at=NOW, dry_run=True)
    w.add(Outcome(line=1, value="x\ud800", type="Url", action=None, status=Status.invalid, reason="reason \ud800"))
    from shared.core.model import Summary

    w.finish(Summary(), "completed", finished_at=NOW)
    j.getvalue().encode("utf-8")
    c.getvalue().encode("utf-8")


_hostile_text = st.lists(
    st.sampled_from([*HOSTILE, "a", ".", "evil.example.com", "8.8.8.8", " ", "é", "http://", "/"]), max_size=8
).map("".join)


def _documents(value: str, title: str) -> list[tuple[str, bytes]]:
    obj = {"indicatorValue": value, "title": title, "description": title}
    stix = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "id": "indicator--1", "spec_version": "2.1", "pattern_type": "stix", "name": title,
         "pattern": "[domain-name:value = '" + value.replace("\\", "\\\\").replace("'", "\\'") + "']"}]}  # fmt: skip
    misp = {"Event": {"Attribute": [{"type": "domain", "value": value, "to_ids": True, "comment": title}]}}
    buf = io.StringIO()
    csv.writer(buf).writerows([["IndicatorValue", "Title"], [value, title]])
    plain = value.encode("utf-8", "surrogatepass")
    return [
        ("a.json", json.dumps({"Indicators": [obj]}).encode()),
        ("a.json", json.dumps([value]).encode()),
        ("a.ndjson", json.dumps(obj).encode() + b"\n" + json.dumps(value).encode()),
        ("b.json", json.dumps(stix).encode()),
        ("m.json", json.dumps(misp).encode()),
        ("a.csv", buf.getvalue().encode("utf-8", "surrogatepass")),
        ("a.txt", plain + b"\n- " + plain),
        ("a.md", b"| " + plain + b" |\n```\n" + plain + b"\n```"),
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hostile_text, _hostile_text)
def test_no_hostile_text_crashes_a_reader_or_a_writer(value, title):
    for name, data in _documents(value, title):
        result, doc = run(data, name)
        assert result.summary.total == len(doc["indicators"])
    for name, ctype in (("a.json", "application/json"), ("a.csv", "text/csv"), ("a.txt", "text/plain")):
        for doc_name, data in _documents(value, title):
            if doc_name == name:
                try:
                    check_body({"Content-Type": ctype}, data, max_bytes=10**6, max_indicators=100)
                except Exception as e:  # a refused body is an HttpProblem, never anything else
                    assert type(e).__name__ == "HttpProblem", e
