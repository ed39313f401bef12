"""Bearer-token checks of the Defender emulator: 401 for missing, garbled, forged or expired tokens;
403 for the wrong audience or missing roles (defender-api.md §1.2, §3.3, §8.1-8.2)."""

from __future__ import annotations

import pytest
import requests
from azure.identity import ManagedIdentityCredential

from localdev.tokens import encode
from tests.support.stack import (
    DEFENDER_SCOPE,
    DefenderCaller,
    auth_headers,
    make_body,
    make_indicator,
    mint_token,
)

BODY = make_body([make_indicator("a" * 64)])


def _import(defender, headers: dict[str, str]) -> requests.Response:
    return requests.post(defender.base_url + "/api/indicators/import", json=BODY, headers=headers, timeout=5)


def _assert_error(resp: requests.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"code", "message", "target"}
    assert error["code"] == code
    assert error["target"]  # a per-request tracking id
    return error


def test_token_from_azure_identity_is_accepted(defender, identity_env):
    token = ManagedIdentityCredential().get_token(DEFENDER_SCOPE).token
    resp = _import(defender, auth_headers(token))
    assert resp.status_code == 200
    assert resp.json()["value"][0]["isFailed"] is False


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer a.b.c"},
    ],
    ids=["none", "empty-bearer", "basic", "garbled", "three-parts"],
)
def test_missing_or_garbled_token_is_401(defender, headers):
    _assert_error(_import(defender, headers), 401, "Unauthorized")


def test_forged_token_is_401(defender):
    forged = mint_token(key=b"someone else's key")
    error = _assert_error(_import(defender, auth_headers(forged)), 401, "Unauthorized")
    assert "signature" in error["message"]


def test_tampered_payload_is_401(defender):
    header, _, signature = mint_token(key=defender.signing_key).split(".")
    other_payload = mint_token(key=defender.signing_key, roles=["Ti.ReadWrite.All", "Admin"]).split(".")[1]
    _assert_error(_import(defender, auth_headers(f"{header}.{other_payload}.{signature}")), 401, "Unauthorized")


def test_expired_token_is_401(defender):
    expired = mint_token(key=defender.signing_key, lifetime=-5)
    error = _assert_error(_import(defender, auth_headers(expired)), 401, "Unauthorized")
    assert "expired" in error["message"]


def test_token_without_expiry_is_401(defender):
    token = encode(
        {"aud": "https://api.securitycenter.microsoft.com", "roles": ["Ti.ReadWrite.All"]}, defender.signing_key
    )
    _assert_error(_import(defender, auth_headers(token)), 401, "Unauthorized")


@pytest.mark.parametrize(
    "audience",
    [
        "https://api.securitycenter.microsoft.com/",
        "https://api-gov.securitycenter.microsoft.us",
        "https://api-gcc.securitycenter.microsoft.us/",
    ],
)
def test_defender_audiences_with_or_without_slash_are_accepted(defender, audience):
    token = mint_token(key=defender.signing_key, resource=audience)
    assert _import(defender, auth_headers(token)).status_code == 200


@pytest.mark.parametrize(
    "audience",
    ["https://graph.microsoft.com", "https://api.security.microsoft.com", "https://management.azure.com/"],
)
def test_other_audiences_are_403(defender, audience):
    # api.security.microsoft.com is the Defender XDR app, not WindowsDefenderATP (defender-api.md §1.2).
    token = mint_token(key=defender.signing_key, resource=audience)
    error = _assert_error(_import(defender, auth_headers(token)), 403, "Forbidden")
    assert audience in error["message"]


def test_accepted_audiences_are_configurable(defender):
    defender.admin.configure(accepted_audiences=["https://api.security.microsoft.com"])
    token = mint_token(key=defender.signing_key, resource="https://api.security.microsoft.com")
    assert _import(defender, auth_headers(token)).status_code == 200
    old = mint_token(key=defender.signing_key)
    _assert_error(_import(defender, auth_headers(old)), 403, "Forbidden")


@pytest.mark.parametrize("roles", [[], ["Ti.Read.All"], ["Machine.Read.All"]])
def test_missing_write_role_is_403_with_the_documented_message(defender, roles):
    token = mint_token(key=defender.signing_key, roles=roles)
    error = _assert_error(_import(defender, auth_headers(token)), 403, "Forbidden")
    assert error["message"] == "Missing application roles. API required roles: Ti.ReadWrite.All, Ti.ReadWrite"


def test_ti_readwrite_alone_may_import(defender):
    token = mint_token(key=defender.signing_key, roles=["Ti.ReadWrite"])
    assert _import(defender, auth_headers(token)).status_code == 200


def test_role_missing_through_azure_identity(defender, identity_env):
    identity_env.admin.configure(roles=[])
    token = ManagedIdentityCredential().get_token(DEFENDER_SCOPE).token
    _assert_error(_import(defender, auth_headers(token)), 403, "Forbidden")


def test_read_role_may_list_but_not_delete(defender):
    reader = DefenderCaller(defender.base_url, mint_token(key=defender.signing_key, roles=["Ti.Read.All"]))
    assert reader.list().status_code == 200
    _assert_error(reader.delete("1"), 403, "Forbidden")
    _assert_error(reader.batch_delete(["1"]), 403, "Forbidden")


def test_content_type_must_be_json(defender):
    headers = {**auth_headers(mint_token(key=defender.signing_key)), "Content-Type": "text/plain"}
    resp = requests.post(
        defender.base_url + "/api/indicators/import", data=b'{"Indicators": []}', headers=headers, timeout=5
    )
    _assert_error(resp, 415, "UnsupportedMediaType")


def test_auth_failures_are_logged_without_the_token(defender):
    token = mint_token(key=defender.signing_key, roles=[])
    _import(defender, auth_headers(token))
    _import(defender, {})
    calls = defender.admin.calls()
    assert [c["status"] for c in calls] == [403, 401]
    assert calls[0]["code"] == "Forbidden" and calls[0]["oid"]
    assert token not in str(calls)
