"""Every JSON report entry carries a stable kebab-case `code`: the rule or outcome behind its status
(CONTRACT.md "Reports", [html]; README "Reports" lists them). The rule's code travels from `Problem` to the
`Outcome`; the other codes are given where the status is decided."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.checks.validate import validate
from shared.core.errors import (
    AccessDenied,
    BatchRejected,
    DeadlineReached,
    DefenderError,
    DefenderUnavailable,
    IdentityUnavailable,
)
from shared.core.model import Outcome, RawRow, Status, Summary
from shared.core.settings import Settings
from shared.defender import wire
from shared.pipeline.reports import ReportWriter
from shared.readers import read
from tests.unit.test_process import FakeSubmitter, ip, run

NOW = datetime(2026, 1, 15, tzinfo=UTC)
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def outcomes(data: bytes, name: str) -> list[Outcome]:
    return [
        o for o in validate(read(io.BytesIO(data), name), Settings(), source=name, now=NOW) if isinstance(o, Outcome)
    ]


@pytest.mark.parametrize(
    ("data", "name", "status", "code"),
    [
        (b"/etc/passwd\n", "a.txt", Status.invalid, "not-an-indicator"),  # the text reader's own verdict
        (b"sha256\nabc123\n", "a.csv", Status.invalid, "hash-length"),  # the rule's own code
        (b"10.0.0.1\n", "a.txt", Status.invalid, "ip-not-public"),
        (b"*.example.com\n", "a.txt", Status.invalid, "domain-wildcard"),
        (b'{"indicatorValue": "x.example.com"}\n{oops\n', "a.ndjson", Status.invalid, "json-syntax"),
        (b'[{"title": "no value here"}]', "a.json", Status.invalid, "no-value"),
        (b"ioc\njane@example.com\n", "a.txt", Status.invalid, "email-address"),
        (
            b'{"type": "bundle", "id": "bundle--1", "objects": [{"type": "indicator", "id": "indicator--1", '
            b'"pattern_type": "stix", "spec_version": "2.1", "pattern": "[url:value MATCHES \'x\']"}]}',
            "a.stix.json",
            Status.invalid,
            "stix-unexpressible",
        ),
        (
            b'{"Event": {"Attribute": [{"type": "domain", "value": "misp.example.com", "to_ids": false}]}}',
            "a.json",
            Status.skipped,
            "misp-to-ids-false",
        ),
        (
            b'{"Event": {"Attribute": [{"type": "yara", "value": "rule x {}", "to_ids": true}]}}',
            "a.json",
            Status.invalid,
            "unsupported-type",
        ),
    ],
)
def test_validation_and_reader_verdicts_carry_their_code(data: bytes, name: str, status: Status, code: str):
    last = outcomes(data, name)[-1]
    assert (last.status, last.code) == (status, code), last


def test_duplicate_and_pending_entries():
    dup = outcomes(b"evil.example.com\nevil.example.com\n", "a.txt")
    assert [o.code for o in dup] == [None, "duplicate"]  # pending: its code comes with its final status


@pytest.mark.parametrize(
    ("settings", "submitter", "code"),
    [
        (Settings(batch_size=3), None, "validation-only"),
        (Settings(batch_size=3, dry_run=True), FakeSubmitter(), "dry-run"),
    ],
)
def test_entries_not_sent_say_why(settings, submitter, code):
    _, doc = run([RawRow(1, {"value": ip(1)})], settings=settings, submitter=submitter)
    assert [(e["status"], e["code"]) for e in doc["indicators"]] == [("skipped", code)]


def test_a_custom_skip_reason_has_the_status_as_code():
    _, doc = run([RawRow(1, {"value": ip(1)})], submitter=None, skip_reason="held back")
    assert doc["indicators"][0]["code"] == "skipped"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AccessDenied("denied", status=403), "access-denied"),
        (DefenderUnavailable("down"), "defender-unavailable"),
        (DeadlineReached("no time left"), "time-limit"),
        (IdentityUnavailable("no token"), "identity-unavailable"),
        (DefenderError("odd answer", status=418), "batch-failed"),
        (BatchRejected("bad request", status=400, code="BadRequest"), "batch-rejected"),
    ],
)
def test_failed_batches_carry_the_errors_code(error, code):
    rows = [RawRow(i, {"value": ip(i)}) for i in range(1, 5)]
    _, doc = run(rows, submitter=FakeSubmitter(fail_on=1, error=error))
    first = doc["indicators"][0]
    assert (first["status"], first["code"]) == ("failed", code)
    assert {e["code"] for e in doc["indicators"]} <= {code, "submitted"}


def test_defender_answers_give_submitted_rejected_or_no_result():
    batch = [
        Outcome(line=i, value=v, type="DomainName", action="Block", status=None)
        for i, v in enumerate(("ok.example.com", "bad.example.com", "lost.example.com"), 1)
    ]
    results = wire.parse_import_response(
        json.dumps({"value": [
            {"id": "1", "indicator": "ok.example.com", "isFailed": False, "failureReason": None},
            {"id": None, "indicator": "bad.example.com", "isFailed": True, "failureReason": "InvalidDomainName"},
        ]}).encode()
    )  # fmt: skip
    out, _ = wire.match_results(batch, results)
    assert [(o.status, o.code) for o in out] == [
        (Status.submitted, "submitted"),
        (Status.failed, "defender-rejected"),
        (Status.failed, "defender-no-result"),
    ]


def test_every_code_in_a_report_is_kebab_case_and_present():
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"name": "t"}, started_at=NOW, dry_run=True)
    for o in outcomes(b"evil.example.com\nevil.example.com\n10.0.0.1\n" + b"a" * 20 + b"\n", "a.txt"):
        w.add(o if o.status is not None else o.final(Status.skipped, "dry run", code="dry-run"))
    w.finish(Summary(), "completed", finished_at=NOW)
    codes = [e["code"] for e in json.loads(j.getvalue())["indicators"]]
    assert codes and all(KEBAB.match(code) for code in codes)


def test_readme_lists_every_code():
    """README "Codes" names every code the app can write (a new rule or outcome must be documented)."""
    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (repo / "shared").rglob("*.py"))
    found = set(re.findall(r'Problem\(\s*"([a-z0-9-]+)"', source))
    found |= set(re.findall(r'\bcode="([a-z0-9-]+)"', source))
    found |= set(re.findall(r'(?:outcome_code|_CODE|SKIP_CODE) = "([a-z0-9-]+)"', source))
    found |= set(re.findall(r'"(?:dry run|validation only)": "([a-z0-9-]+)"', source))
    found |= {f"{field.lower()}-length" for field in ("title", "description", "recommendedActions")}
    found |= {"reader-invalid", "reader-skipped"}
    assert len(found) > 60
    missing = sorted(c for c in found if f"`{c}`" not in readme)
    assert missing == []
