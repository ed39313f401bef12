"""The Defender client end to end: real azure-identity credential and `requests` against the Defender and
managed identity emulators on loopback (CONTRACT.md "Defender calls").

Scaled clock: the emulator's rate-limit minute lasts one second (`time_scale=60`) and the client's pacer
allows 30 calls per 1-second window, so the pacing tests run in seconds. Every test checks that each
indicator handed to the client comes back with exactly one final status.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from localdev.tokens import mint
from shared.core.batching import batches
from shared.core.model import (
    FIELD_ACTION,
    FIELD_TYPE,
    FIELD_VALUE,
    Action,
    Indicator,
    IndicatorType,
    Outcome,
    RawRow,
    Status,
)
from shared.core.settings import Settings
from shared.defender import AccessDenied, CallPacer, client_policy, make_client
from shared.defender.client import DefenderClient
from shared.defender.credentials import build_credential
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from tests.client.pacing_helpers import max_in_window
from tests.support.stack import DEFENDER_RESOURCE, DEFENDER_SCOPE, hex_value

pytestmark = pytest.mark.integration

IMPORT = "/api/indicators/import"
WINDOW = 1.0  # seconds per scaled "minute"


@pytest.fixture
def scaled(defender: Any, identity_env: Any) -> Any:
    """The emulator with a one-second rate-limit minute; the identity endpoint in the environment."""
    defender.admin.configure(time_scale=60.0)
    return defender


def settings_for(defender: Any, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "defender_api_url": defender.base_url,
        "defender_token_scope": DEFENDER_SCOPE,
        "request_timeout_seconds": 2.0,
        "max_attempts": 4,
        "retry_after_max_seconds": 5.0,
    }
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def client(scaled: Any) -> Iterator[DefenderClient]:
    c = new_client(scaled)
    yield c
    c.close()


def new_client(defender: Any, *, credential: Any = None, **kw: Any) -> DefenderClient:
    settings = settings_for(defender, **kw)
    policy = client_policy(settings, backoff_factor=0.05, backoff_max=0.2, backoff_jitter=0.05)
    factory = (lambda: build_credential(settings)) if credential is not None else None
    return make_client(
        settings, credential=credential, pacer=CallPacer(30, WINDOW), policy=policy, credential_factory=factory
    )


def outcomes(n: int, seed: str = "e2e") -> list[Outcome]:
    out = []
    for i in range(n):
        value = hex_value(f"{seed}-{i}")
        ind = Indicator(
            indicatorValue=value,
            indicatorType=IndicatorType.FileSha256,
            action=Action.Block,
            title="Test",
            description="End to end",
        )
        out.append(Outcome(line=i + 1, value=value, type="FileSha256", action="Block", status=None, indicator=ind))
    return out


def submit_all(client: DefenderClient, items: list[Outcome], size: int = 500) -> list[Outcome]:
    got: list[Outcome] = []
    for batch in batches(items, size):
        got.extend(client.submit(batch))
    one_final_status_each(items, got)
    return got


def one_final_status_each(sent: list[Outcome], got: list[Outcome]) -> None:
    assert [(o.line, o.value) for o in got] == [(o.line, o.value) for o in sent]
    assert all(o.status in (Status.submitted, Status.failed) for o in got)
    assert all((o.status is Status.submitted) == bool(o.id) for o in got)


def import_calls(defender: Any) -> list[dict[str, Any]]:
    return defender.admin.calls(IMPORT)


def stored_ids(defender: Any) -> dict[str, str]:
    return {r["indicatorValue"]: r["id"] for r in defender.admin.indicators()}


def test_1250_indicators_take_exactly_three_calls(scaled: Any, client: DefenderClient) -> None:
    items = outcomes(1250)
    got = submit_all(client, items)
    assert all(o.status is Status.submitted for o in got)
    calls = import_calls(scaled)
    assert [(c["status"], c["items"]) for c in calls] == [(200, 500), (200, 500), (200, 250)]
    assert (client.api_calls, client.retries) == (3, 0)
    ids = stored_ids(scaled)
    assert {o.value: o.id for o in got} == ids


def test_429_retry_after_is_honoured(scaled: Any, client: DefenderClient) -> None:
    scaled.admin.add_fault("throttle", retry_after=2, path=IMPORT)
    got = submit_all(client, outcomes(10))
    assert all(o.status is Status.submitted for o in got)
    first, second = import_calls(scaled)
    assert first["status"] == 429 and second["status"] == 200
    assert second["monotonic"] - first["monotonic"] >= 2.0  # no call before the time
    assert (client.api_calls, client.retries) == (2, 1)


def test_429_with_an_http_date(scaled: Any, client: DefenderClient) -> None:
    scaled.admin.add_fault("throttle", retry_after_date=2, path=IMPORT)
    got = submit_all(client, outcomes(3))
    assert all(o.status is Status.submitted for o in got)
    first, second = import_calls(scaled)
    # HTTP-dates have whole seconds: the wait is between 1 and 2 s.
    assert second["monotonic"] - first["monotonic"] >= 1.0


def test_two_503s_then_success(scaled: Any, client: DefenderClient) -> None:
    scaled.admin.add_fault("status", count=2, status=503, path=IMPORT)
    got = submit_all(client, outcomes(20))
    assert all(o.status is Status.submitted for o in got)
    assert [c["status"] for c in import_calls(scaled)] == [503, 503, 200]
    assert (client.api_calls, client.retries) == (3, 2)


def test_503_until_attempts_run_out_is_unavailable(scaled: Any, client: DefenderClient) -> None:
    from shared.defender import DefenderUnavailable

    scaled.admin.add_fault("status", count=10, status=503, path=IMPORT)
    with pytest.raises(DefenderUnavailable, match="4 attempts"):
        client.submit(outcomes(2))
    assert len(import_calls(scaled)) == 4


def test_a_reset_connection_is_retried(scaled: Any, client: DefenderClient) -> None:
    scaled.admin.add_fault("reset", path=IMPORT)
    got = submit_all(client, outcomes(7))
    assert all(o.status is Status.submitted for o in got)
    assert [c["status"] for c in import_calls(scaled)] == [0, 200]
    assert client.retries == 1


def test_a_hang_past_the_read_timeout_then_success(scaled: Any) -> None:
    client = new_client(scaled, request_timeout_seconds=0.5)
    scaled.admin.add_fault("hang", seconds=3, path=IMPORT)
    got = submit_all(client, outcomes(5))
    assert all(o.status is Status.submitted for o in got)
    calls = import_calls(scaled)
    assert [c["fault"] for c in calls] == ["hang", None]
    assert calls[1]["monotonic"] - calls[0]["monotonic"] < 2.5  # gave up after the read timeout
    assert client.retries == 1


def test_malformed_json_is_retried(scaled: Any, client: DefenderClient) -> None:
    scaled.admin.add_fault("malformed_json", path=IMPORT)
    items = outcomes(6)
    got = submit_all(client, items)
    assert all(o.status is Status.submitted for o in got)
    assert len(import_calls(scaled)) == 2  # the upsert was sent again
    assert {o.value: o.id for o in got} == stored_ids(scaled)


class StaleFirst:
    """A credential whose cache keeps handing out a token Defender has stopped accepting."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, 4_000_000_000)


def test_an_expired_token_is_refreshed_once(scaled: Any, identity_env: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    expired, _ = mint(key=scaled.signing_key, resource=DEFENDER_RESOURCE, lifetime=-5)
    client = new_client(scaled, credential=StaleFirst(expired))
    got = submit_all(client, outcomes(4))
    assert all(o.status is Status.submitted for o in got)
    calls = import_calls(scaled)
    assert [c["status"] for c in calls] == [401, 200]
    # The fresh token came from the identity endpoint through azure-identity.
    assert [r["status"] for r in identity_env.admin.requests()["requests"]] == [200]
    assert expired not in caplog.text


def test_short_lived_tokens_are_renewed_before_they_expire(scaled: Any, identity_env: Any) -> None:
    identity_env.admin.configure(lifetime=2)
    client = new_client(scaled)
    got = submit_all(client, outcomes(45), size=1)  # 45 calls at 30 a second: the run outlives a token
    assert all(o.status is Status.submitted for o in got)
    assert all(c["status"] == 200 for c in import_calls(scaled))
    assert len(identity_env.admin.requests()["requests"]) > 1


def test_403_stops_the_run_with_an_actionable_message(
    scaled: Any, identity_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    identity_env.admin.configure(roles=[])
    seen: list[str] = []
    settings = settings_for(scaled)
    real = build_credential(settings)

    class Spy:  # records the tokens handed out, to look for them in logs and reports
        def get_token(self, *scopes: str, **kw: Any) -> Any:
            tok = real.get_token(*scopes, **kw)
            seen.append(tok.token)
            return tok

    client = new_client(scaled, credential=Spy())
    values = [o.value for o in outcomes(1200)]

    def reader(stream: Any, name: str) -> Iterator[RawRow]:  # rows as any reader would give them
        for i, v in enumerate(values):
            yield RawRow(i + 1, {FIELD_VALUE: v, FIELD_TYPE: "FileSha256", FIELD_ACTION: "Block"})

    jf, cf = io.StringIO(), io.StringIO()
    writer = ReportWriter(jf, cf, source={"name": "iocs.txt"}, started_at=datetime.now(UTC), dry_run=False)
    result = process_stream(
        io.BytesIO(b""),
        "iocs.txt",
        settings=settings,
        submitter=client,
        reports=writer,
        source="iocs.txt",
        reader=reader,
    )
    report = json.loads(jf.getvalue())
    entries = report["indicators"]
    assert len(entries) == 1200 and all(e["status"] == "failed" for e in entries)
    message = entries[-1]["reason"]
    assert "Ti.ReadWrite.All" in message and DEFENDER_SCOPE in message
    assert "grant-defender-permission.sh" in message and "system-assigned" in message
    assert result.status == "failed"
    assert len(import_calls(scaled)) == 1  # no more calls after the 403
    assert seen and all(tok not in caplog.text and tok not in jf.getvalue() for tok in seen)


def test_access_denied_for_a_wrong_audience_names_it(scaled: Any) -> None:
    client = new_client(scaled, defender_token_scope="https://api.security.microsoft.com/.default")
    with pytest.raises(AccessDenied) as e:
        client.submit(outcomes(1))
    assert "https://api.security.microsoft.com" in str(e.value)


def test_whole_batch_400_isolates_the_bad_rows(scaled: Any, client: DefenderClient) -> None:
    scaled.admin.configure(value_error_mode="batch")
    items = outcomes(40)
    for i in (3, 29):
        bad = items[i].indicator
        assert bad is not None
        broken = Indicator(
            indicatorValue="zz" + bad.indicatorValue[2:],
            indicatorType=bad.indicatorType,
            action=bad.action,
            title=bad.title,
            description=bad.description,
        )
        items[i] = Outcome(
            line=items[i].line,
            value=broken.indicatorValue,
            type="FileSha256",
            action="Block",
            status=None,
            indicator=broken,
        )
    got = submit_all(client, items, size=40)
    failed = [o.line for o in got if o.status is Status.failed]
    assert failed == [4, 30]
    assert all("InvalidHashValue" in (o.reason or "") for o in got if o.status is Status.failed)
    calls = import_calls(scaled)
    assert len(calls) == client.api_calls == 1 + client.split_calls
    assert client.split_calls <= 2 * (math.ceil(math.log2(40)) + 3)
    assert calls[0]["items"] == 40 and client.retries == 0
    assert len(stored_ids(scaled)) == 38


@pytest.mark.parametrize("bad_at", [17, 0, 499])
def test_a_whole_batch_400_with_an_unlisted_code_for_one_row_is_bisected(
    scaled: Any, client: DefenderClient, bad_at: int
) -> None:
    """Issue "Nothing silently dropped": the stand-in rejects the whole batch with a code no document lists,
    for one bad row; the 499 good ones still get in, within log2(n) + 2 calls after the first."""
    scaled.admin.configure(value_error_mode="batch", batch_error_code="InvalidIndicatorProperties")
    items = outcomes(500)
    bad = items[bad_at].indicator
    assert bad is not None
    broken = Indicator(
        indicatorValue="zz" + bad.indicatorValue[2:],
        indicatorType=bad.indicatorType,
        action=bad.action,
        title=bad.title,
        description=bad.description,
    )
    items[bad_at] = Outcome(
        line=bad_at + 1, value=broken.indicatorValue, type="FileSha256", action="Block", status=None, indicator=broken
    )
    got = submit_all(client, items, size=500)
    assert [o.line for o in got if o.status is Status.failed] == [bad_at + 1]
    assert "InvalidIndicatorProperties" in (got[bad_at].reason or "")
    assert len(stored_ids(scaled)) == 499
    assert client.split_calls <= math.ceil(math.log2(500)) + 2


def test_partial_is_failed_items(scaled: Any, client: DefenderClient) -> None:
    items = outcomes(10)
    bad = items[5].indicator
    assert bad is not None
    broken = Indicator(
        indicatorValue="q" * 64,
        indicatorType=bad.indicatorType,
        action=bad.action,
        title=bad.title,
        description=bad.description,
    )
    items[5] = Outcome(
        line=6, value=broken.indicatorValue, type="FileSha256", action="Block", status=None, indicator=broken
    )
    got = submit_all(client, items)
    assert [o.line for o in got if o.status is Status.failed] == [6]
    assert "q" * 64 in (got[5].reason or "")
    assert len(import_calls(scaled)) == 1


def test_shuffled_results_are_matched_by_value(scaled: Any, client: DefenderClient) -> None:
    scaled.admin.configure(result_order="shuffled", seed=7)
    got = submit_all(client, outcomes(300))
    assert {o.value: o.id for o in got} == stored_ids(scaled)


def test_missing_and_extra_results(scaled: Any, client: DefenderClient, caplog: pytest.LogCaptureFixture) -> None:
    scaled.admin.add_fault("drop_results", drop=2, path=IMPORT)
    scaled.admin.add_fault("extra_result", indicator="stray.example.org", path=IMPORT)
    first = submit_all(client, outcomes(5, "a"))
    # Defender stored the two it gave no result for: a look-up by List settles them (issue "Hostile input").
    assert all(o.status is Status.submitted for o in first)
    assert [o.id for o in first] == [stored_ids(scaled)[o.value] for o in first]
    assert sum(1 for o in first if o.reason and "List shows it stored" in o.reason) == 2
    second = submit_all(client, outcomes(5, "b"))
    assert all(o.status is Status.submitted for o in second)
    assert any("stray.example.org" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("how", ["rewrite", "duplicate"])
def test_a_misreporting_answer_is_settled_by_list(scaled: Any, client: DefenderClient, how: str) -> None:
    """A stand-in that stores every indicator but names some results wrongly: each entry still ends with the
    id it is stored under, found by `$filter=indicatorValue eq …`."""
    scaled.admin.add_fault("misreport_results", how=how, items=3, path=IMPORT)
    got = submit_all(client, outcomes(30, how))
    assert all(o.status is Status.submitted for o in got)
    assert {o.value: o.id for o in got} == stored_ids(scaled)
    lists = [c for c in scaled.admin.calls() if c["path"].lower() == "/api/indicators" and c["method"] == "GET"]
    assert len([c for c in lists if c["query"].get("$skip") == "0"]) == 1  # one look-up (and its empty next page)


def test_the_pacing_window_is_never_exceeded(scaled: Any, client: DefenderClient) -> None:
    # 75 calls at 30 per (scaled) minute, with faults whose retries must also wait their turn.
    scaled.admin.add_fault("status", count=3, status=503, path=IMPORT)
    got = submit_all(client, outcomes(150), size=2)
    assert all(o.status is Status.submitted for o in got)
    calls = import_calls(scaled)
    assert len(calls) == 78 == client.api_calls
    assert all(c["status"] != 429 for c in calls)
    assert max_in_window([c["monotonic"] for c in calls], WINDOW) <= 30


def cli_env(defender: Any, **extra: str) -> dict[str, str]:
    return {
        "DEFENDER_API_URL": defender.base_url,
        "DEFENDER_TOKEN_SCOPE": DEFENDER_SCOPE,
        "DEFENDER_REQUEST_TIMEOUT_SECONDS": "2",
        **extra,
    }


def test_cli_submit_validates_submits_and_reports(scaled: Any, tmp_path: Any) -> None:
    from shared.app.cli import main

    values = [o.value for o in outcomes(1200, "cli")]
    src = tmp_path / "feed.txt"
    src.write_text("# a feed\n" + "\n".join(values) + "\nnot-a-hash here, just prose\n", encoding="utf-8")
    out: list[str] = []
    code = main(["submit", str(src), "--report-dir", str(tmp_path / "r")], env=cli_env(scaled), printer=out.append)
    assert code == 0
    report = json.loads((tmp_path / "r" / "feed.txt.report.json").read_text(encoding="utf-8"))
    assert report["summary"]["submitted"] == 1200 and report["summary"]["apiCalls"] == 3
    assert {e["indicatorValue"]: e["id"] for e in report["indicators"]} == stored_ids(scaled)
    progress = [line for line in out if "batch " in line]
    assert len(progress) == 3 and "calls/minute" in progress[-1] and "1200 of 1200" in progress[-1]
    assert any("3 import calls, 0 retries" in line for line in out)


def test_cli_submit_exits_1_when_defender_refuses(scaled: Any, identity_env: Any, tmp_path: Any) -> None:
    from shared.app.cli import main

    identity_env.admin.configure(roles=[])
    src = tmp_path / "feed.txt"
    src.write_text("\n".join(o.value for o in outcomes(3, "cli403")), encoding="utf-8")
    out: list[str] = []
    code = main(["submit", str(src), "--report-dir", str(tmp_path)], env=cli_env(scaled), printer=out.append)
    assert code == 1
    report = json.loads((tmp_path / "feed.txt.report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert all("Ti.ReadWrite.All" in e["reason"] for e in report["indicators"])


def test_cli_dry_run_calls_nothing(scaled: Any, tmp_path: Any) -> None:
    from shared.app.cli import main

    src = tmp_path / "feed.txt"
    src.write_text("\n".join(o.value for o in outcomes(3, "dry")), encoding="utf-8")
    code = main(["submit", str(src), "--dry-run", "--report-dir", str(tmp_path)], env=cli_env(scaled), printer=print)
    assert code == 0
    assert import_calls(scaled) == []
