"""GET /api/indicators (OData $filter/$top/$skip), DELETE /api/indicators/{id} and BatchDelete
(all-or-nothing 404) (defender-api.md §5, §8.10)."""

from __future__ import annotations

import pytest

from tests.support.stack import DefenderCaller, hex_value, make_indicator, mint_token


def _error(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    return resp.json()["error"]["message"]


@pytest.fixture
def five(defender_api) -> list[str]:
    items = [
        make_indicator(hex_value(0), severity="High", title="it's bad"),
        make_indicator(hex_value(1), severity="Low"),
        make_indicator("evil.example.com", action="Audit", severity="High"),
        make_indicator("https://evil.example.com/a", action="Allowed"),
        make_indicator(hex_value(4, 40), action="Audit", severity="High"),
    ]
    return [r["id"] for r in defender_api.import_(items).json()["value"]]


def test_list_answers_odata_shape_sorted_by_id(defender_api, five):
    body = defender_api.list().json()
    assert body["@odata.context"].endswith("/api/$metadata#Indicators")
    assert [r["id"] for r in body["value"]] == sorted(five, key=int)
    assert "@odata.nextLink" not in body


@pytest.mark.parametrize(
    ("expression", "positions"),
    [
        ("action eq 'Audit'", [2, 4]),
        ("action eq 'Audit' and severity eq 'High'", [2, 4]),
        ("severity eq 'High' and indicatorType eq 'FileSha1'", [4]),
        (f"indicatorValue eq '{hex_value(1)}'", [1]),
        ("title eq 'it''s bad'", [0]),  # OData doubles a quote inside a literal
        ("generateAlert eq true", [2, 4]),
        ("action eq 'Warn'", []),
    ],
)
def test_filter_eq_and(defender_api, five, expression, positions):
    got = [r["id"] for r in defender_api.list(filter=expression).json()["value"]]
    assert got == [five[p] for p in positions]


def test_filter_with_or_matches_either_side(defender, defender_api, five):
    """`or` joins groups of `and` (the client looks up at most 20 values a call this way)."""
    values = [r["indicatorValue"] for r in defender.admin.indicators()][:2]
    expression = " or ".join(f"indicatorValue eq '{v}'" for v in values)
    assert sorted(r["indicatorValue"] for r in defender_api.list(filter=expression).json()["value"]) == sorted(values)
    both = f"indicatorValue eq '{values[0]}' and action eq 'Nope' or indicatorValue eq '{values[1]}'"
    assert [r["indicatorValue"] for r in defender_api.list(filter=both).json()["value"]] == [values[1]]


def test_filter_on_created_by(defender, defender_api, five):
    me = defender.admin.indicators()[0]["createdBy"]
    assert len(defender_api.list(filter=f"createdBy eq '{me}'").json()["value"]) == 5


@pytest.mark.parametrize(
    "expression",
    [
        "action ne 'Block'",
        "contains(title, 'x')",
        "action eq 'Block' xor severity eq 'High'",
        "colour eq 'red'",
        "expirationTime eq '2030-01-01T00:00:00Z'",
        "action eq",
        "action eq Block",
        "",
    ],
)
def test_unsupported_filters_are_odata_errors(defender_api, expression):
    _error(defender_api.list(filter=expression), 400, "ODataError")


def test_top_and_skip(defender_api, five):
    ordered = sorted(five, key=int)
    assert [r["id"] for r in defender_api.list(top=2).json()["value"]] == ordered[:2]
    assert [r["id"] for r in defender_api.list(top=2, skip=2).json()["value"]] == ordered[2:4]
    assert [r["id"] for r in defender_api.list(skip=4).json()["value"]] == ordered[4:]
    assert defender_api.list(top=10000).status_code == 200


@pytest.mark.parametrize(("params"), [{"top": 10001}, {"top": -1}, {"skip": "x"}, {"orderby": "id"}])
def test_bad_paging_is_an_odata_error(defender_api, params):
    _error(defender_api.list(**params), 400, "ODataError")


def test_next_link_when_configured(defender, defender_api, five):
    defender.admin.configure(next_link=True, page_size=2)
    seen, url = [], defender_api.base_url + "/api/indicators?$filter=severity eq 'High'"
    while url:
        body = defender_api.session.get(url, timeout=5).json()
        seen += [r["id"] for r in body["value"]]
        url = body.get("@odata.nextLink")
    assert seen == [five[0], five[2], five[4]]


def test_ti_readwrite_sees_only_its_own(defender, defender_api, five):
    defender.admin.seed({"indicatorValue": "analyst.example.com", "indicatorType": "DomainName"})
    own_only = DefenderCaller(defender.base_url, mint_token(key=defender.signing_key, roles=["Ti.ReadWrite"]))
    assert len(own_only.list().json()["value"]) == 5
    assert len(defender_api.list().json()["value"]) == 6


def test_delete_by_id(defender, defender_api, five):
    assert defender_api.delete(five[0]).status_code == 204
    _error(defender_api.delete(five[0]), 404, "NotFound")
    _error(defender_api.delete("999999"), 404, "NotFound")
    assert sorted(r["id"] for r in defender.admin.indicators()) == sorted(five[1:])


def test_batch_delete(defender, defender_api, five):
    resp = defender_api.batch_delete(five[:3])
    assert resp.status_code == 204 and resp.content == b""
    assert sorted(r["id"] for r in defender.admin.indicators()) == sorted(five[3:])


def test_batch_delete_is_all_or_nothing(defender, defender_api, five):
    msg = _error(defender_api.batch_delete([five[0], "424242", five[1]]), 404, "NotFound")
    assert "424242" in msg
    assert len(defender.admin.indicators()) == 5  # nothing deleted


def test_batch_delete_of_an_expired_id_is_404(defender, defender_api):
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = [r["id"] for r in defender_api.import_([make_indicator(hex_value(1), expirationTime=soon)]).json()["value"]]
    ids += [defender_api.import_([make_indicator(hex_value(2))]).json()["value"][0]["id"]]
    defender.admin.advance_clock(600)
    _error(defender_api.batch_delete(ids), 404, "NotFound")
    assert [r["id"] for r in defender.admin.indicators()] == [ids[1]]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"IndicatorIds": []}, "InvalidInput"),
        ({"IndicatorIds": [str(n) for n in range(501)]}, "MaximumBatchSizeExceeded"),
        ({"indicatorIds": ["1"]}, "MissingRequiredParameter"),
        ({"IndicatorIds": "1,2"}, "InvalidRequestBody"),
    ],
)
def test_batch_delete_bad_bodies_are_400(defender_api, five, body, code):
    _error(defender_api.post("/api/indicators/BatchDelete", body), 400, code)


def test_unknown_route_and_wrong_method(defender_api):
    _error(defender_api.session.get(defender_api.base_url + "/api/machines", timeout=5), 404, "ResourceNotFound")
    resp = defender_api.session.get(defender_api.base_url + "/api/indicators/import", timeout=5)
    _error(resp, 405, "MethodNotAllowed")
