"""wire: body building, answer parsing, matching by value (defender-api.md §1.4, §3)."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys

import pytest

from shared.core.model import Action, Indicator, IndicatorType, Outcome, Status
from shared.defender import wire
from tests.client.scripted import outcomes


def results(*items: tuple[str, str | None, bool, str | None]) -> list[wire.ImportResult]:
    return [wire.ImportResult(v, i, f, r) for v, i, f, r in items]


def test_import_body_uses_defenders_field_names() -> None:
    batch = outcomes(2)
    doc = json.loads(wire.import_body(batch))
    assert list(doc) == ["Indicators"]
    assert doc["Indicators"][0]["indicatorValue"] == batch[0].value
    assert doc["Indicators"][1]["indicatorType"] == "FileSha256"


def test_match_by_value_not_by_position() -> None:
    batch = outcomes(4)
    rs = results(*[(o.value, f"id{o.line}", False, None) for o in reversed(batch)])
    out, extra = wire.match_results(batch, rs)
    assert extra == []
    assert [o.id for o in out] == ["id1", "id2", "id3", "id4"]
    assert all(o.status is Status.submitted for o in out)


def test_missing_failed_and_extra_results() -> None:
    batch = outcomes(3)
    rs = results(
        (batch[2].value, "9", True, "Value is not allowed"),
        (batch[0].value, "7", False, None),
        ("f" * 64, "8", False, None),
    )
    out, extra = wire.match_results(batch, rs)
    assert [(o.status, o.reason) for o in out] == [
        (Status.submitted, None),
        (Status.failed, wire.NO_RESULT),
        (Status.failed, "Value is not allowed"),
    ]
    assert [r.indicator for r in extra] == ["f" * 64]


def test_same_value_under_two_types_matches_each_once() -> None:
    value = "a" * 40
    batch = [
        Outcome(
            line=1,
            value=value,
            type="FileSha1",
            action="Block",
            status=None,
            indicator=Indicator(
                indicatorValue=value,
                indicatorType=IndicatorType.FileSha1,
                action=Action.Block,
                title="t",
                description="d",
            ),
        ),
        Outcome(
            line=2,
            value=value,
            type="CertificateThumbprint",
            action="Allowed",
            status=None,
            indicator=Indicator(
                indicatorValue=value,
                indicatorType=IndicatorType.CertificateThumbprint,
                action=Action.Allowed,
                title="t",
                description="d",
            ),
        ),
    ]
    out, extra = wire.match_results(batch, results((value, "1", False, None), (value, "2", False, None)))
    assert [o.id for o in out] == ["1", "2"] and extra == []


def test_a_recased_value_still_matches() -> None:
    batch = outcomes(1)
    out, extra = wire.match_results(batch, results((batch[0].value.upper() + " ", "5", False, None)))
    assert out[0].id == "5" and extra == []


def test_notes_stay_in_front_of_the_reason() -> None:
    o = outcomes(1)[0]
    o = Outcome(
        line=o.line,
        value=o.value,
        type=o.type,
        action=o.action,
        status=None,
        indicator=o.indicator,
        notes=("scheme added",),
    )
    out, _ = wire.match_results([o], [])
    assert out[0].reason == "scheme added; no result returned"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"value": 3}', b'{"value": [{"id": "1"}]}', b'{"value": [{"indicator": 5}]}', b"\xff"],
)
def test_malformed_answers_are_refused(body: bytes) -> None:
    with pytest.raises(wire.MalformedResponse):
        wire.parse_import_response(body)


def test_parse_import_response_reads_ids_as_text() -> None:
    (r,) = wire.parse_import_response(b'{"value": [{"id": 2841, "indicator": "x", "isFailed": false}]}')
    assert (r.id, r.indicator, r.is_failed, r.failure_reason) == ("2841", "x", False, None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": {"code": "InvalidHashValue", "message": "bad"}}', ("InvalidHashValue", "bad")),
        (b"<html>oops</html>", (None, None)),
        (b"", (None, None)),
        (b'{"error": "x"}', (None, None)),
    ],
)
def test_parse_error(body: bytes, expected: tuple) -> None:
    assert wire.parse_error(body) == expected


def test_batch_delete_body_limits() -> None:
    assert json.loads(wire.batch_delete_body(["1", "2"])) == {"IndicatorIds": ["1", "2"]}
    with pytest.raises(ValueError):
        wire.batch_delete_body([])
    with pytest.raises(ValueError):
        wire.batch_delete_body([str(i) for i in range(501)])


def test_list_params() -> None:
    assert wire.list_params("action eq 'Block'", 10, 20) == {
        "$top": "10",
        "$skip": "20",
        "$filter": "action eq 'Block'",
    }
    with pytest.raises(ValueError):
        wire.list_params(None, 10_001, 0)


def test_access_denied_message_explains_and_keeps_the_token_out() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"aud": "https://graph.microsoft.com", "roles": []}).encode())
    token = "eyJhbGciOiJIUzI1NiJ9." + payload.decode().rstrip("=") + ".c2lnbmF0dXJl"
    text = wire.access_denied_message(
        status=403,
        code="Forbidden",
        message="Missing application roles",
        scope="https://api.securitycenter.microsoft.com/.default",
        client_id="c0ffee",
        claims=wire.token_claims(token),
    )
    for needle in (
        "https://api.securitycenter.microsoft.com/.default",
        "https://graph.microsoft.com",
        "c0ffee",
        "Ti.ReadWrite.All",
        "infra/scripts/grant-defender-permission.sh",
        "hours",
    ):
        assert needle in text
    assert token not in text and "c2lnbmF0dXJl" not in text


def test_token_claims_of_a_non_jwt_is_empty() -> None:
    assert wire.token_claims("opaque-token") == {}
    assert wire.token_claims("a.!!!.c") == {}


def test_core_modules_import_no_azure_or_requests() -> None:
    code = (
        "import sys, shared.defender, shared.defender.wire, shared.defender.pacing, shared.core.errors;"
        "bad = sorted(m for m in sys.modules if m.startswith(('azure', 'requests', 'urllib3')));"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_match_logs_nothing_itself(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wire.match_results(outcomes(1), [])
    assert caplog.records == []
