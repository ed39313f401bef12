"""Outcomes never left uncertain (issue "Hostile and unlucky input"): entries Defender's answer has no result for
are looked up by List (`$filter=indicatorValue eq …`, at most 20 values a call, OData-quoted) and end
`submitted` with the stored id or `failed` with the evidence; a lost tenant turn stops a call's retries before
the next attempt."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import requests

from shared.core.model import Action, Indicator, IndicatorType, Outcome, Status
from shared.defender import wire
from tests.client.scripted import Call, FakeClock, ScriptedSession, error, make, ok_for, outcomes, response


@pytest.fixture
def session() -> ScriptedSession:
    # A List page is followed by a call for the next one until an empty page (client.list_indicators).
    return ScriptedSession(FakeClock(), default=lambda call: response(200, {"value": []}))


def stored(values, type_="FileSha256", action="Block"):
    return response(
        200,
        {"value": [{"id": f"s-{v}", "indicatorValue": v, "indicatorType": type_, "action": action} for v in values]},
    )


def without(*drop: int):
    def answer(call: Call) -> requests.Response:
        doc = json.loads(ok_for(call).content)
        doc["value"] = [r for i, r in enumerate(doc["value"]) if i not in drop]
        return response(200, doc)

    return answer


def test_a_missing_result_that_list_shows_stored_is_submitted_with_its_id(session):
    batch = outcomes(3)
    client = make(session.script(without(1), stored([batch[1].value])))
    out = client.submit(batch)
    assert [o.status for o in out] == [Status.submitted] * 3
    assert out[1].id == f"s-{batch[1].value}"
    assert out[1].reason == "Defender's answer had no result for it; List shows it stored"
    get = session.calls[1]
    assert get.method == "GET" and get.params is not None
    assert get.params["$filter"] == f"indicatorValue eq '{batch[1].value}'"
    assert client.list_calls == 2  # the page, then the empty page that ends the listing


def test_a_refanged_or_duplicated_answer_is_settled_by_list(session):
    batch = outcomes(3)

    def mangled(call: Call) -> requests.Response:
        doc = json.loads(ok_for(call).content)
        doc["value"][0]["indicator"] = "x" + doc["value"][0]["indicator"]  # not what was sent
        doc["value"][2] = dict(doc["value"][1])  # the second twice, the third missing
        return response(200, doc)

    client = make(session.script(mangled, stored([batch[0].value, batch[2].value])))
    out = client.submit(batch)
    assert [o.status for o in out] == [Status.submitted] * 3
    assert [o.id for o in out] == [f"s-{batch[0].value}", f"id-{batch[1].value}", f"s-{batch[2].value}"]


def test_what_list_does_not_show_stays_failed_with_the_evidence(session):
    batch = outcomes(2)
    client = make(session.script(without(0, 1), stored([batch[0].value], action="Allowed")))
    out = client.submit(batch)
    assert [o.status for o in out] == [Status.failed, Status.failed]  # another action is another indicator
    assert all(o.reason == "no result returned; List does not show it stored: resend it" for o in out)


def test_a_failed_look_up_keeps_the_entries_failed_with_its_message(session):
    batch = outcomes(2)
    client = make(session.script(without(1), error(400, "ODataError", "Syntax error")))
    out = client.submit(batch)
    assert (
        out[1].status is Status.failed
        and out[1].reason == "no result returned; looking it up by List failed: Syntax error"
    )
    assert out[0].status is Status.submitted


def test_at_most_20_values_a_look_up(session):
    batch = outcomes(45)
    client = make(session.script(lambda c: response(200, {"value": []}), *([stored([])] * 3)))
    out = client.submit(batch)
    assert all(o.status is Status.failed for o in out)
    gets = [c for c in session.calls if c.method == "GET" and c.params and c.params.get("$skip") == "0"]
    assert [c.params["$filter"].count(" eq ") for c in gets] == [20, 20, 5]


@pytest.mark.parametrize(
    "value",
    [
        "http://evil.example/it's",
        "http://evil.example/a?b=c&d=e#frag",
        "http://evil.example/''x",
        "http://e.example/%20 +",
    ],
)
def test_filter_values_are_odata_quoted_and_url_encoded(session, value):
    ind = Indicator(
        indicatorValue=value, indicatorType=IndicatorType.Url, action=Action.Block, title="t", description="d"
    )
    batch = [Outcome(line=1, value=value, type="Url", action="Block", status=None, indicator=ind)]
    client = make(session.script(lambda c: response(200, {"value": []}), stored([value], type_="Url")))
    out = client.submit(batch)
    assert out[0].status is Status.submitted
    literal = "'" + value.replace("'", "''") + "'"
    assert session.calls[1].params == {"$top": "160", "$skip": "0", "$filter": f"indicatorValue eq {literal}"}
    # What goes on the wire: the query string escapes ?, &, # and % so the filter arrives whole.
    query = urlencode(session.calls[1].params)
    assert "#" not in query and "&d=" not in query
    assert wire.odata_string("a'b") == "'a''b'"


class Lost(Exception):
    pass


class Lease:
    def __init__(self, lose_after: int) -> None:
        self.checks = 0
        self.lose_after = lose_after

    def check(self) -> None:
        self.checks += 1
        if self.checks > self.lose_after:
            raise Lost


def test_a_lost_lease_stops_retries_before_the_next_attempt(session):
    """503 with Retry-After 30: the lease is lost during the wait; no second attempt is sent."""
    client = make(session.script(error(503, "ServiceUnavailable", "busy", {"Retry-After": "30"}), ok_for))
    lease = Lease(lose_after=2)  # before the first attempt, before the wait; lost by the end of the wait
    with client.lease_checked(lease.check), pytest.raises(Lost):
        client.submit(outcomes(2))
    assert len(session.calls) == 1
    assert session.clock.now >= 1030  # it did wait, and looked again after waiting


def test_the_lease_is_checked_before_every_attempt(session):
    client = make(
        session.script(error(503, "ServiceUnavailable", "busy"), error(503, "ServiceUnavailable", "x"), ok_for)
    )
    lease = Lease(lose_after=100)
    with client.lease_checked(lease.check):
        out = client.submit(outcomes(1))
    assert out[0].status is Status.submitted
    assert lease.checks >= 3 + 2 * 2  # one per attempt, two per wait


def test_through_lease_checked_the_job_passes_its_lease_into_the_client(session):
    from shared.pipeline.job import LeaseChecked

    client = make(session.script(error(503, "ServiceUnavailable", "busy", {"Retry-After": "5"}), ok_for))
    lease = Lease(lose_after=2)
    with pytest.raises(Lost):
        LeaseChecked(client, lease).submit(outcomes(1))  # type: ignore[arg-type]
    assert len(session.calls) == 1
