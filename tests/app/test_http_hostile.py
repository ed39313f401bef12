"""Hostile HTTP requests (issue "Hostile and unlucky input"): no request ends in a bare 500, contradictory
flags are refused, a body the readers refuse says why, and no message echoes more than ~200 characters of input.
"""

from __future__ import annotations

import json

import pytest

from tests.app.test_http_import import import_calls, post


def test_a_json_body_nested_1000_levels_deep_is_a_400(functions, make_runtime, defender):
    make_runtime()
    for body in (b"[" * 1000 + b"]" * 1000, b'[{"indicatorValue": ' + b"[" * 1000 + b"]" * 1000 + b"}]"):
        status, answer, _ = post(functions, body)
        assert status in (200, 400), answer
        if status == 400:
            assert "nested too deeply" in answer["error"]["message"]
        else:
            assert answer["value"][0]["isFailed"] is True
    assert import_calls(defender) == []


@pytest.mark.parametrize(
    "params",
    [{"dryRun": "true", "dry_run": "false"}, {"dry_run": "no", "dryRun": "yes"}, {"DRY_RUN": "1", "dry_run": "0"}],
)
def test_contradictory_dry_run_flags_are_a_400_and_nothing_is_submitted(functions, make_runtime, defender, params):
    make_runtime()
    status, answer, _ = post(functions, json.dumps(["evil.example.com"]).encode(), **params)
    assert status == 400, answer
    assert "given twice with different values" in answer["error"]["message"]
    assert import_calls(defender) == []


def test_the_same_flag_twice_with_one_meaning_is_fine(functions, make_runtime, defender):
    make_runtime()
    status, answer, _ = post(functions, json.dumps(["evil.example.com"]).encode(), dryRun="true", dry_run="yes")
    assert status == 200 and answer["value"][0]["failureReason"].startswith("skipped: dry run")


@pytest.mark.parametrize(
    ("body", "ctype", "want"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "text/csv", "PDF document"),
        (b"%PDF-1.7\n1 0 obj\n", "text/plain", "PDF document"),
        (bytes(range(256)) * 4, "text/plain", "binary data"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "text/csv", "ELF executable"),
    ],
)
def test_a_body_the_readers_refuse_is_a_415_with_the_reason(functions, make_runtime, defender, body, ctype, want):
    make_runtime()
    status, answer, _ = post(functions, body, ctype=ctype)
    assert status == 415, answer
    assert want in answer["error"]["message"]


def test_messages_quote_at_most_about_200_characters_of_input(functions, make_runtime, defender):
    make_runtime()
    key = "k" * (10 * 1024 * 1024)
    status, answer, _ = post(functions, json.dumps({key: []}).encode())
    assert status == 400 and len(answer["error"]["message"]) < 1000
    status, answer, _ = post(functions, b"[]", **{key[:100_000]: "1"})
    assert status == 400 and len(answer["error"]["message"]) < 1000
    status, answer, _ = post(functions, b"[]", expiration_days="9" * 100_000)
    assert status == 400 and len(answer["error"]["message"]) < 1000


def test_a_csv_body_without_an_indicator_column_is_a_400_with_the_reason(functions, make_runtime, defender):
    """Issue "Nothing silently dropped": no silent zero, over HTTP too."""
    make_runtime()
    status, answer, _ = post(functions, b"alpha,beta\r\n1,2\r\n", ctype="text/csv")
    assert status == 400, answer
    assert "a header with columns alpha, beta; no column holds indicators" in answer["error"]["message"]
