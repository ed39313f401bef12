"""POST /api/indicators/import: body binding (case-sensitive names, 500 items), value rules in both
value_error_modes, the action/type matrix, result order, upsert keys, the tenant cap and expiry
(defender-api.md §1-4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.stack import hex_value, make_indicator, public_ip


def _error(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    return resp.json()["error"]["message"]


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_accepted_import_returns_one_result_per_item_and_stores_every_field(defender, defender_api):
    items = [
        make_indicator(hex_value(1), severity="High", externalId="ext-1", rbacGroupNames=["Servers"]),
        make_indicator("evil.example.com", action="Audit", expirationTime=_iso(timedelta(days=1))),
        make_indicator("https://evil.example.com/path?q=1", action="Warn"),
        make_indicator("2001:4860:4860:0:0:0:0:8888", action="Allowed"),
        make_indicator(hex_value(2, 40), "CertificateThumbprint", action="Allowed"),
    ]
    resp = defender_api.import_(items)
    assert resp.status_code == 200
    value = resp.json()["value"]
    assert [r["indicator"] for r in value] == [i["indicatorValue"] for i in items]
    assert all(r["isFailed"] is False and r["failureReason"] is None for r in value)
    ids = [r["id"] for r in value]
    assert all(isinstance(i, str) and i.isdigit() for i in ids) and len(set(ids)) == 5
    stored = {r["id"]: r for r in defender.admin.indicators()}
    first = stored[ids[0]]
    assert first["externalId"] == "ext-1" and first["rbacGroupNames"] == ["Servers"] and first["severity"] == "High"
    assert first["sourceType"] == "AadApp"
    for name in ("createdBy", "createdByDisplayName", "createdBySource", "creationTimeDateTimeUtc"):
        assert first[name]
    assert first["lastUpdatedBy"] == first["createdBy"]


def test_top_level_name_is_case_sensitive(defender_api):
    resp = defender_api.post("/api/indicators/import", {"indicators": [make_indicator(hex_value(1))]})
    assert "case-sensitive" in _error(resp, 400, "MissingRequiredParameter")


def test_field_names_are_case_sensitive(defender_api):
    item = make_indicator(hex_value(1))
    item["IndicatorValue"] = item.pop("indicatorValue")
    msg = _error(defender_api.import_([item]), 400, "MissingRequiredParameter")
    assert "indicatorValue" in msg and "IndicatorValue" in msg


@pytest.mark.parametrize("missing", ["indicatorValue", "indicatorType", "action", "title", "description"])
def test_required_fields(defender, defender_api, missing):
    item = make_indicator(hex_value(1))
    del item[missing]
    assert missing in _error(defender_api.import_([item]), 400, "MissingRequiredParameter")
    assert defender.admin.indicators() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("indicatorType", "Sha256"), ("action", "block"), ("severity", "Critical"), ("expirationTime", "next week")],
)
def test_unbindable_values_fail_the_whole_call(defender, defender_api, field, value):
    resp = defender_api.import_([make_indicator(hex_value(1)), make_indicator(hex_value(2), **{field: value})])
    _error(resp, 400, "InvalidRequestBody")
    assert defender.admin.indicators() == []


def test_not_json_is_invalid_request_body(defender_api):
    resp = defender_api.session.post(
        defender_api.base_url + "/api/indicators/import",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    _error(resp, 400, "InvalidRequestBody")


def test_more_than_500_items_is_rejected_with_the_documented_message(defender, defender_api):
    items = [make_indicator(hex_value(n)) for n in range(501)]
    msg = _error(defender_api.import_(items), 400, "MaximumBatchSizeExceeded")
    assert "Received: 501, allowed: 500" in msg
    assert defender.admin.indicators() == []
    assert len(defender_api.import_(items[:500]).json()["value"]) == 500


def test_empty_list_is_invalid_input(defender_api):
    _error(defender_api.post("/api/indicators/import", {"Indicators": []}), 400, "InvalidInput")


# (value, type, code)  # why
BAD_VALUES = [
    ("abc123", "FileSha256", "InvalidHashValue"),  # too short
    ("z" * 64, "FileSha256", "InvalidHashValue"),  # not hex
    ("a" * 64, "FileSha1", "InvalidHashValue"),  # a SHA-256 length typed SHA-1
    ("a" * 40, "FileMd5", "InvalidHashValue"),
    ("a" * 39, "CertificateThumbprint", "InvalidHashValue"),
    ("20.1.2.0/24", "IpAddress", "InvalidIpAddress"),  # CIDR not supported (§4)
    ("20.1.2.3-20.1.2.9", "IpAddress", "InvalidIpAddress"),  # ranges not supported
    ("10.1.2.3", "IpAddress", "InvalidIpAddress"),  # internal addresses are refused
    ("127.0.0.1", "IpAddress", "InvalidIpAddress"),
    ("2001:4860:4860::8888", "IpAddress", "InvalidIpAddress"),  # compressed IPv6: all 8 groups required
    ("999.1.1.1", "IpAddress", "InvalidIpAddress"),
    ("https://evil.example.com", "DomainName", "InvalidDomainName"),  # scheme on a domain
    ("*.evil.example.com", "DomainName", "InvalidDomainName"),  # wildcards not supported
    ("evil", "DomainName", "InvalidDomainName"),
    ("bücher.example", "DomainName", "InvalidDomainName"),  # IDN must be punycode
    ("-bad.example.com", "DomainName", "InvalidDomainName"),
    ("evil.example.com/path", "Url", "InvalidUrl"),  # no scheme
    ("ftp://evil.example.com/x", "Url", "InvalidUrl"),
    ("http://evil example.com/", "Url", "InvalidUrl"),
    ("http:///nohost", "Url", "InvalidUrl"),
]


@pytest.mark.parametrize(("value", "kind", "code"), BAD_VALUES)
def test_bad_value_fails_only_its_item_in_item_mode(defender, defender_api, value, kind, code):
    good = make_indicator(hex_value(7))
    resp = defender_api.import_([good, make_indicator(value, kind)])
    assert resp.status_code == 200
    ok, bad = resp.json()["value"]
    assert ok["isFailed"] is False and ok["id"]
    assert bad["isFailed"] is True and bad["id"] is None and bad["indicator"] == value
    assert value in bad["failureReason"]
    assert [r["indicatorValue"] for r in defender.admin.indicators()] == [good["indicatorValue"]]


@pytest.mark.parametrize(("value", "kind", "code"), BAD_VALUES)
def test_bad_value_fails_the_whole_call_in_batch_mode(defender, defender_api, value, kind, code):
    defender.admin.configure(value_error_mode="batch")
    resp = defender_api.import_([make_indicator(hex_value(7)), make_indicator(value, kind)])
    assert value in _error(resp, 400, code)
    assert defender.admin.indicators() == []


@pytest.mark.parametrize(
    ("value", "kind", "action"),
    [
        ("https://evil.example.com/x", "Url", "BlockAndRemediate"),  # network types: no BlockAndRemediate (§1.6)
        ("evil.example.com", "DomainName", "BlockAndRemediate"),
        (public_ip(1), "IpAddress", "BlockAndRemediate"),
        ("a" * 40, "CertificateThumbprint", "Block"),  # certificates: Allowed / BlockAndRemediate only
        ("a" * 40, "CertificateThumbprint", "Warn"),
    ],
)
def test_action_type_matrix(defender, defender_api, value, kind, action):
    result = defender_api.import_([make_indicator(value, kind, action=action)]).json()["value"][0]
    assert result["isFailed"] is True and action in result["failureReason"]
    defender.admin.configure(value_error_mode="batch")
    _error(defender_api.import_([make_indicator(value, kind, action=action)]), 400, "InvalidInput")


def test_audit_requires_generate_alert(defender_api):
    items = [
        make_indicator(hex_value(1), action="Audit", generateAlert=False),
        {**make_indicator(hex_value(2)), "action": "Audit"},  # generateAlert absent
        make_indicator(hex_value(3), action="Audit", generateAlert="True"),  # the binder takes "True"
    ]
    value = defender_api.import_(items).json()["value"]
    assert [r["isFailed"] for r in value] == [True, True, False]
    assert "generateAlert" in value[0]["failureReason"]


def test_legacy_actions_rejected_unless_accepted(defender, defender_api):
    items = [make_indicator(hex_value(1), action="Alert"), make_indicator(hex_value(2), action="AlertAndBlock")]
    assert [r["isFailed"] for r in defender_api.import_(items).json()["value"]] == [True, True]
    defender.admin.configure(accept_legacy_actions=True)
    assert [r["isFailed"] for r in defender_api.import_(items).json()["value"]] == [False, False]


def test_empty_value_uses_the_known_message(defender_api):
    result = defender_api.import_([make_indicator("", "FileSha256")]).json()["value"][0]
    assert result["failureReason"] == "Recieved an empty indicator value."


@pytest.mark.parametrize("order", ["request", "reversed", "shuffled"])
def test_result_order(defender, defender_api, order):
    defender.admin.configure(result_order=order, seed=3)
    items = [make_indicator(hex_value(n)) for n in range(20)]
    got = [r["indicator"] for r in defender_api.import_(items).json()["value"]]
    sent = [i["indicatorValue"] for i in items]
    assert sorted(got) == sorted(sent)
    if order == "request":
        assert got == sent
    elif order == "reversed":
        assert got == sent[::-1]
    else:
        assert got not in (sent, sent[::-1])
        defender.admin.reset(keep_config=True)  # same seed, same shuffle
        assert [r["indicator"] for r in defender_api.import_(items).json()["value"]] == got


def test_upsert_by_type_value_action(defender, defender_api):
    value = hex_value(1)
    first = defender_api.import_([make_indicator(value, title="one")]).json()["value"][0]["id"]
    again = defender_api.import_([make_indicator(value, title="two")]).json()["value"][0]["id"]
    other = defender_api.import_([make_indicator(value, action="Allowed")]).json()["value"][0]["id"]
    assert again == first and other != first
    records = {r["id"]: r for r in defender.admin.indicators()}
    assert len(records) == 2 and records[first]["title"] == "two"


def test_upsert_by_type_value(defender, defender_api):
    defender.admin.configure(upsert_key="type_value")
    value = "evil.example.com"
    first = defender_api.import_([make_indicator(value, application="App A")]).json()["value"][0]["id"]
    again = defender_api.import_([make_indicator(value, action="Allowed", application="App B")]).json()["value"][0]
    assert again["id"] == first
    (record,) = defender.admin.indicators()
    assert record["action"] == "Allowed"
    assert record["application"] == "App A"  # applied on create only (§1.5)
    assert record["lastUpdateTime"] >= record["creationTimeDateTimeUtc"]


def test_duplicates_in_one_batch_share_one_record(defender, defender_api):
    value = defender_api.import_([make_indicator(hex_value(1)), make_indicator(hex_value(1))]).json()["value"]
    assert value[0]["id"] == value[1]["id"]
    assert len(defender.admin.indicators()) == 1


def test_cap_in_item_mode_fails_only_items_past_it(defender, defender_api):
    defender.admin.configure(tenant_cap=3)
    defender.admin.seed({"indicatorValue": "analyst.example.com", "indicatorType": "DomainName"})
    existing = defender_api.import_([make_indicator(hex_value(0))]).json()["value"][0]["id"]
    batch = [make_indicator(hex_value(0), title="update")] + [make_indicator(hex_value(n)) for n in (1, 2, 3)]
    value = defender_api.import_(batch).json()["value"]
    assert value[0]["id"] == existing and value[0]["isFailed"] is False  # updates never count as new
    assert [r["isFailed"] for r in value[1:]] == [False, True, True]
    assert "limit" in value[2]["failureReason"]
    assert len(defender.admin.indicators()) == 3


def test_cap_in_batch_mode_fails_the_call(defender, defender_api):
    defender.admin.configure(tenant_cap=2, cap_mode="batch")
    defender_api.import_([make_indicator(hex_value(0))])
    assert "limit" in _error(defender_api.import_([make_indicator(hex_value(n)) for n in (1, 2)]), 400, "InvalidInput")
    assert len(defender.admin.indicators()) == 1
    assert defender_api.import_([make_indicator(hex_value(0)), make_indicator(hex_value(1))]).status_code == 200


def test_expired_indicators_disappear_and_free_the_cap(defender, defender_api):
    defender.admin.configure(tenant_cap=1)
    soon = make_indicator(hex_value(1), expirationTime=_iso(timedelta(minutes=10)))
    assert defender_api.import_([soon]).json()["value"][0]["isFailed"] is False
    assert defender_api.import_([make_indicator(hex_value(2))]).json()["value"][0]["isFailed"] is True
    defender.admin.advance_clock(11 * 60)
    assert defender.admin.indicators() == []
    assert defender_api.list().json()["value"] == []
    assert defender_api.import_([make_indicator(hex_value(2))]).json()["value"][0]["isFailed"] is False


def test_past_expiration_rejected_or_accepted_and_expired(defender, defender_api):
    past = make_indicator(hex_value(1), expirationTime=_iso(timedelta(hours=-1)))
    result = defender_api.import_([past]).json()["value"][0]
    assert result["isFailed"] is True and "past" in result["failureReason"]
    defender.admin.configure(past_expiration="accept")
    result = defender_api.import_([past]).json()["value"][0]
    assert result["isFailed"] is False and result["id"]
    assert defender.admin.indicators() == []  # gone at the next access


def test_seeded_records_belong_to_their_creator(defender, defender_api):
    (seeded,) = defender.admin.seed(
        {"indicatorValue": "evil.example.com", "indicatorType": "DomainName", "action": "Allowed"}
    )
    assert seeded["createdBy"] == "analyst@contoso.example" and seeded["sourceType"] == "User"
    listed = defender_api.list(filter="createdBy eq 'analyst@contoso.example'").json()["value"]
    assert [r["id"] for r in listed] == [seeded["id"]]


def test_import_calls_are_logged_with_item_counts(defender, defender_api):
    defender_api.import_([make_indicator(hex_value(n)) for n in range(3)])
    (call,) = defender.admin.calls("/api/indicators/import")
    assert call["method"] == "POST" and call["status"] == 200 and call["items"] == 3
    assert call["oid"] and call["monotonic"] > 0 and call["wall"] > 0 and call["fault"] is None
