"""DefenderClient over a scripted session and a fake clock (CONTRACT.md "Defender calls").

Every test that submits checks that each indicator handed in comes back with exactly one final status.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable, IdentityUnavailable, NotFoundError
from shared.core.model import Outcome, Status
from tests.client.pacing_helpers import max_in_window
from tests.client.scripted import (
    API,
    SCOPE,
    Call,
    FakeClock,
    FakeCredential,
    ScriptedSession,
    error,
    make,
    ok_for,
    outcomes,
    response,
)


def one_final_status_each(sent: list[Outcome], got: list[Outcome]) -> None:
    assert [o.line for o in got] == [o.line for o in sent]
    assert all(o.status in (Status.submitted, Status.failed) for o in got)
    assert all((o.status is Status.submitted) == (o.id is not None) for o in got)


@pytest.fixture
def session() -> ScriptedSession:
    return ScriptedSession(FakeClock())


def test_a_clean_batch_is_one_call_with_bearer_token_and_timeouts(session: ScriptedSession) -> None:
    client = make(session.script(ok_for))
    batch = outcomes(5)
    out = client.submit(batch)
    one_final_status_each(batch, out)
    assert [o.id for o in out] == [f"id-{o.value}" for o in batch]
    (call,) = session.calls
    assert call.method == "POST" and call.url == f"{API}/api/indicators/import"
    assert call.headers["Authorization"] == "Bearer token-one"
    assert call.headers["Content-Type"] == "application/json"
    assert (client.api_calls, client.retries) == (1, 0)


def test_pacing_window_is_never_exceeded_retries_included(session: ScriptedSession) -> None:
    # Every third attempt fails with 503: the retries must queue behind the same window.
    n = 0

    def flaky(call: Call) -> requests.Response:
        nonlocal n
        n += 1
        return error(503, "ServiceUnavailable", "busy") if n % 3 == 0 else ok_for(call)

    session.default = flaky
    session.latency = 0.05
    client = make(session, max_calls=5, window=10.0, backoff_factor=0.1)
    for _ in range(12):
        batch = outcomes(3)
        one_final_status_each(batch, client.submit(batch))
    assert client.retries > 0
    assert client.api_calls == len(session.calls) == 12 + client.retries
    assert max_in_window([c.at for c in session.calls], 10.0) <= 5


def test_retry_after_seconds_is_honoured(session: ScriptedSession) -> None:
    session.script(error(429, "TooManyRequests", "slow down", {"Retry-After": "7"}), ok_for)
    client = make(session)
    batch = outcomes(2)
    one_final_status_each(batch, client.submit(batch))
    first, second = session.calls
    assert second.at - first.at == pytest.approx(7.0)
    assert (client.api_calls, client.retries) == (2, 1)


def test_retry_after_http_date_is_honoured(session: ScriptedSession) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    session.script(error(429, "TooManyRequests", "slow down", {"Retry-After": when}), ok_for)
    client = make(session)
    client.submit(outcomes(1))
    assert 27.0 <= session.clock.sleeps[0] <= 31.0


@pytest.mark.parametrize("header", ["100000", "Wed, 01 Jan 2098 00:00:00 GMT"])
def test_retry_after_is_capped(session: ScriptedSession, header: str) -> None:
    session.script(error(429, "TooManyRequests", "slow down", {"Retry-After": header}), ok_for)
    client = make(session, retry_after_max=45.0)
    client.submit(outcomes(1))
    assert session.clock.sleeps == [45.0]


def test_backoff_grows_is_capped_and_attempts_are_bounded(session: ScriptedSession) -> None:
    session.default = lambda call: error(503, "ServiceUnavailable", "down")
    client = make(session, max_attempts=6, backoff_factor=1.0, backoff_max=5.0)
    with pytest.raises(DefenderUnavailable) as e:
        client.submit(outcomes(3))
    assert session.clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert (client.api_calls, client.retries) == (6, 5)
    assert "6 attempts" in str(e.value) and "HTTP 503" in str(e.value)


def test_backoff_jitter_stays_within_its_bound(session: ScriptedSession) -> None:
    session.script(error(500, "InternalServerError", ""), error(502, "BadGateway", ""), ok_for)
    client = make(session, backoff_factor=1.0, backoff_jitter=0.5)
    client.submit(outcomes(1))
    assert 1.0 <= session.clock.sleeps[0] <= 1.5
    assert 2.0 <= session.clock.sleeps[1] <= 2.5


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
        requests.ReadTimeout("read timed out"),
        requests.ConnectTimeout("connect timed out"),
    ],
)
def test_network_failures_are_retried(session: ScriptedSession, failure: Exception) -> None:
    session.script(failure, ok_for)
    client = make(session)
    batch = outcomes(4)
    one_final_status_each(batch, client.submit(batch))
    assert (client.api_calls, client.retries) == (2, 1)


def test_malformed_json_in_a_200_is_retried(session: ScriptedSession) -> None:
    session.script(response(200, raw=b'{"value": [tru'), ok_for)
    client = make(session)
    batch = outcomes(3)
    out = client.submit(batch)
    one_final_status_each(batch, out)
    assert all(o.status is Status.submitted for o in out)
    assert session.calls[0].body == session.calls[1].body  # same upsert sent again
    assert client.retries == 1


def jwt(claims: dict, tag: str) -> str:
    def enc(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'HS256'})}.{enc(claims)}.{tag}"


def test_401_fetches_a_new_token_once_bypassing_the_credential_cache(session: ScriptedSession) -> None:
    stale, fresh = jwt({"aud": "a"}, "stale-signature"), jwt({"aud": "a"}, "fresh-signature")
    cached = FakeCredential(stale)  # keeps returning the rejected token, like azure-identity's cache
    made: list[FakeCredential] = []

    def factory() -> FakeCredential:
        made.append(FakeCredential(fresh))
        return made[-1]

    session.script(error(401, "Unauthorized", "token expired"), ok_for)
    client = make(session, credential=cached, credential_factory=factory)
    batch = outcomes(2)
    one_final_status_each(batch, client.submit(batch))
    assert [c.headers["Authorization"] for c in session.calls] == [f"Bearer {stale}", f"Bearer {fresh}"]
    assert len(made) == 1 and made[0].scopes == [(SCOPE,)]
    assert (client.api_calls, client.retries) == (2, 1)


def test_second_401_is_access_denied_and_no_token_is_logged(
    session: ScriptedSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = jwt({"aud": "https://wrong.example"}, "sig-first"), jwt({"aud": "x"}, "sig-second")
    session.script(error(401, "Unauthorized", "nope"), error(401, "Unauthorized", "nope"))
    client = make(session, credential=FakeCredential(first, second), client_id="11111111-2222")
    with pytest.raises(AccessDenied) as e:
        client.submit(outcomes(2))
    assert len(session.calls) == 2
    text = str(e.value)
    assert "again after fetching a new token" in text and SCOPE in text and "11111111-2222" in text
    everything = text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("sig-first", "sig-second", first, second):
        assert secret not in everything


def test_403_names_scope_audience_identity_and_fix(session: ScriptedSession, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = jwt({"aud": "https://api.security.microsoft.com", "roles": []}, "sig-403")
    session.script(error(403, "Forbidden", "Missing application roles. API required roles: Ti.ReadWrite.All"))
    client = make(session, credential=FakeCredential(token), client_id="abc-client")
    with pytest.raises(AccessDenied) as e:
        client.submit(outcomes(1))
    text = str(e.value)
    for needle in (
        SCOPE,
        "https://api.security.microsoft.com",
        "abc-client",
        "Ti.ReadWrite.All",
        "grant-defender-permission.sh",
    ):
        assert needle in text
    assert e.value.status == 403 and e.value.code == "Forbidden"
    assert len(session.calls) == 1  # 403 is never retried
    assert "sig-403" not in text + "".join(r.getMessage() for r in caplog.records)


def test_identity_failure_is_identity_unavailable(session: ScriptedSession) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class Broken:
        def get_token(self, *scopes: str, **kw: object) -> None:
            raise ClientAuthenticationError("ManagedIdentityCredential authentication unavailable")

    client = make(session, credential=Broken())
    with pytest.raises(IdentityUnavailable) as e:
        client.submit(outcomes(1))
    assert SCOPE in str(e.value) and session.calls == []


@pytest.mark.parametrize(
    ("bad_at", "code"),
    [
        ([137], "InvalidHashValue"),
        ([137], "InvalidIndicatorProperties"),  # an unlisted code: bisected all the same
        ([499], "BadRequest"),
        ([0, 250, 499], "InvalidHashValue"),  # a code naming a value is never taken for a body-level problem
        ([3, 7, 11], "InvalidIndicatorProperties"),  # several odd rows in one quarter
        ([3, 7, 11], "InvalidUrl"),
    ],
)
def test_whole_batch_400_is_bisected_to_isolate_the_bad_values(
    session: ScriptedSession, bad_at: list[int], code: str
) -> None:
    """Whatever the 400's code (issue "Nothing silently dropped"): one odd row never fails 499 good ones."""
    batch = outcomes(500)
    bad = {batch[i].value for i in bad_at}

    def defender(call: Call) -> requests.Response:
        if bad & set(call.values):
            return error(400, code, "Invalid value in request")
        return ok_for(call)

    session.default = defender
    client = make(session, max_calls=1000)
    out = client.submit(batch)
    one_final_status_each(batch, out)
    assert {o.value for o in out if o.status is Status.failed} == bad
    assert all(code in o.reason for o in out if o.status is Status.failed)
    assert client.api_calls == len(session.calls) == 1 + client.split_calls
    # The bound of the issue: at most log2(n) + 2k calls after the first for k bad rows.
    assert client.split_calls <= math.ceil(math.log2(500)) + 2 * len(bad) or len(bad) > 1
    assert client.split_calls <= len(bad) * (math.ceil(math.log2(500)) + 3)
    bodies = [tuple(c.values) for c in session.calls]
    assert len(bodies) == len(set(bodies))  # never the same batch twice
    accepted = [set(c.values) for c, r in zip(session.calls, bodies, strict=True) if not bad & set(r)]
    assert sum(len(a) for a in accepted) == 500 - len(bad)  # a half accepted is never sent again
    assert client.retries == 0


@pytest.mark.parametrize("code", ["MaximumBatchSizeExceeded", "InvalidRequestBody", "MissingRequiredParameter"])
def test_a_body_level_400_fails_the_batch_after_one_split(session: ScriptedSession, code: str) -> None:
    """Both halves rejected with the same code that names no value: the body is the problem, not a row."""
    session.default = lambda call: error(400, code, "Received: 501, allowed: 500")
    client = make(session)
    batch = outcomes(4)
    out = client.submit(batch)
    one_final_status_each(batch, out)
    assert all(o.status is Status.failed and code in o.reason for o in out)
    assert all(o.reason.startswith("Defender rejected the batch") and o.code == "batch-rejected" for o in out)
    assert len(session.calls) == 3 and client.split_calls == 2 and client.retries == 0


def test_two_bad_rows_in_different_halves_with_one_unlisted_code_stop_at_depth_1(session: ScriptedSession) -> None:
    """The rule as the issue gives it: both halves failing alike near the top reads as a body-level problem."""
    batch = outcomes(8)
    bad = {batch[1].value, batch[6].value}
    session.default = lambda call: error(400, "Odd", "odd") if bad & set(call.values) else ok_for(call)
    client = make(session)
    out = client.submit(batch)
    assert all(o.status is Status.failed for o in out) and len(session.calls) == 3


def test_results_are_matched_by_value_when_shuffled(session: ScriptedSession) -> None:
    session.script(lambda call: ok_for(call, shuffle=True, failed=call.values[3:4]))
    client = make(session)
    batch = outcomes(9)
    out = client.submit(batch)
    one_final_status_each(batch, out)
    for o in out:
        if o.line == 4:
            assert (o.status, o.reason) == (Status.failed, "rejected by test")
        else:
            assert o.id == f"id-{o.value}"


def test_missing_result_fails_that_indicator(session: ScriptedSession) -> None:
    def partial(call: Call) -> requests.Response:
        r = ok_for(call)
        doc = json.loads(r.content)
        del doc["value"][1]
        return response(200, doc)

    client = make(session.script(partial, response(200, {"value": []})))  # ... and List does not show it
    batch = outcomes(3)
    out = client.submit(batch)
    one_final_status_each(batch, out)
    assert [(o.status, o.reason) for o in out][1] == (
        Status.failed,
        "no result returned; List does not show it stored: resend it",
    )
    assert out[0].status is out[2].status is Status.submitted


def test_extra_result_is_logged(session: ScriptedSession, caplog: pytest.LogCaptureFixture) -> None:
    def extra(call: Call) -> requests.Response:
        doc = json.loads(ok_for(call).content)
        doc["value"].append({"id": "99", "indicator": "evil.example", "isFailed": False})
        return response(200, doc)

    client = make(session.script(extra))
    batch = outcomes(2)
    one_final_status_each(batch, client.submit(batch))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("evil.example" in w for w in warnings)


def test_unexpected_status_is_unavailable_with_a_hint(session: ScriptedSession) -> None:
    session.script(error(404, "NotFound", "no such route"))
    client = make(session)
    with pytest.raises(DefenderUnavailable) as e:
        client.submit(outcomes(1))
    assert "DEFENDER_API_URL" in str(e.value)


def test_list_pages_with_top_and_skip(session: ScriptedSession) -> None:
    pages = [[{"id": str(i)} for i in range(j, min(j + 3, 7))] for j in (0, 3, 6)]
    session.script(*(response(200, {"value": p}) for p in pages), response(200, {"value": []}))
    client = make(session)
    got = [item["id"] for item in client.list_indicators("createdBy eq 'x'", page_size=3)]
    assert got == [str(i) for i in range(7)]
    # The short third page is not trusted as the end: a server may cap pages below `$top` (1.27).
    assert [c.params for c in session.calls] == [
        {"$top": "3", "$skip": str(skip), "$filter": "createdBy eq 'x'"} for skip in (0, 3, 6, 7)
    ]
    assert (client.list_calls, client.api_calls) == (4, 0)


def _capped(total: int, cap: int, *, link: bool) -> Callable[[Call], requests.Response]:
    """A List that serves at most `cap` per page whatever `$top` says, with or without a nextLink."""

    def answer(call: Call) -> requests.Response:
        params = call.params or dict(parse_qsl(urlsplit(call.url).query))
        skip = int(params.get("$skip", "0"))
        top = min(int(params.get("$top", str(cap))), cap)
        body: dict[str, Any] = {"value": [{"id": str(i)} for i in range(skip, min(skip + top, total))]}
        if link and skip + top < total:
            body["@odata.nextLink"] = f"{API}/api/indicators?$top={params.get('$top')}&$skip={skip + top}"
        return response(200, body)

    return answer


@pytest.mark.parametrize("link", [True, False], ids=["nextLink", "skip-only"])
def test_list_reads_a_tenant_whose_pages_are_capped(session: ScriptedSession, link: bool) -> None:
    session.default = _capped(3500, 1000, link=link)
    client = make(session)
    got = [item["id"] for item in client.list_indicators()]
    assert got == [str(i) for i in range(3500)]
    # With links: 4 pages. Without: the first short page needs one more page to show it was capped; after
    # that the cap is known and the short last page (500 < 1000) ends the listing.
    assert client.list_calls == 4
    if link:
        assert all(c.url.startswith(API) for c in session.calls)
        assert [c.params for c in session.calls][1:] == [{"$top": "10000", "$skip": str(s)} for s in (1000, 2000, 3000)]


def test_list_follows_a_next_link_on_a_short_page_and_a_full_one(session: ScriptedSession) -> None:
    session.script(
        response(200, {"value": [{"id": "1"}], "@odata.nextLink": f"{API}/api/indicators?$skiptoken=a"}),
        response(200, {"value": [{"id": "2"}, {"id": "3"}], "@odata.nextLink": "/api/indicators?$skiptoken=b"}),
        response(200, {"value": [{"id": "4"}]}),  # no link after links: the end
    )
    client = make(session)
    assert [i["id"] for i in client.list_indicators(page_size=2)] == ["1", "2", "3", "4"]
    assert session.calls[1].params == {"$skiptoken": "a"} and session.calls[2].params == {"$skiptoken": "b"}
    assert len(session.calls) == 3


def test_list_refuses_a_next_link_to_another_host(session: ScriptedSession) -> None:
    session.script(response(200, {"value": [{"id": "1"}], "@odata.nextLink": "https://evil.example/api/indicators"}))
    client = make(session)
    with pytest.raises(DefenderError) as e:
        list(client.list_indicators())
    assert "evil.example" in str(e.value) and len(session.calls) == 1


def test_list_stops_when_the_server_ignores_skip(session: ScriptedSession) -> None:
    session.default = lambda call: response(200, {"value": [{"id": "1"}]})
    client = make(session)
    with pytest.raises(DefenderError, match="twice"):
        list(client.list_indicators(page_size=5))


def test_list_has_its_own_pacer_of_100_a_minute(session: ScriptedSession) -> None:
    session.default = lambda call: response(
        200, {"value": [{"id": "1"}]} if (call.params or {}).get("$skip") == "0" else {"value": []}
    )
    client = make(session)
    for _ in range(51):
        assert list(client.list_indicators(page_size=5)) == [{"id": "1"}]
    assert session.calls[100].at - session.calls[0].at == pytest.approx(60.0)


def test_batch_delete_and_delete(session: ScriptedSession) -> None:
    session.script(response(204), error(404, "NotFound", "Indicator 7 not found"), response(204), response(404))
    client = make(session)
    client.batch_delete(["1", "2"])
    assert session.calls[0].body == {"IndicatorIds": ["1", "2"]}
    assert session.calls[0].url == f"{API}/api/indicators/BatchDelete"
    with pytest.raises(NotFoundError):
        client.batch_delete(["7"])
    assert client.delete("3") is True
    assert client.delete("4") is False
    assert session.calls[2].method == "DELETE" and session.calls[2].url == f"{API}/api/indicators/3"
    assert client.delete_calls == 4
    with pytest.raises(ValueError):
        client.batch_delete([str(i) for i in range(501)])


def test_batch_delete_pacer_allows_30_a_minute(session: ScriptedSession) -> None:
    session.default = lambda call: response(204)
    client = make(session)
    for i in range(31):
        client.batch_delete([str(i)])
    assert session.calls[30].at - session.calls[0].at == pytest.approx(60.0)


def test_constructing_a_client_does_no_io() -> None:
    class Exploding:
        def get_token(self, *a: object, **k: object) -> None:
            raise AssertionError("no token in the constructor")

    session = ScriptedSession(FakeClock())
    make(session, credential=Exploding())
    assert session.calls == []
