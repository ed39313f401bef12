"""The managed identity emulator speaks the App Service MI protocol that azure-identity uses
(local-tooling.md §5) and issues tokens the Defender emulator can verify."""

from __future__ import annotations

import time

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, DefaultAzureCredential, ManagedIdentityCredential

from localdev.tokens import DEFAULT_SYSTEM_CLIENT_ID, decode
from tests.support.stack import DEFENDER_RESOURCE, DEFENDER_SCOPE

USER_ASSIGNED = "0f5c2b1a-1111-4222-8333-444455556666"


def _claims(identity, token: str) -> dict:
    return decode(token, identity.signing_key)


def test_system_assigned_token_through_azure_identity(identity_env):
    token = ManagedIdentityCredential().get_token(DEFENDER_SCOPE)
    claims = _claims(identity_env, token.token)
    assert claims["aud"] == DEFENDER_RESOURCE  # "/.default" stripped by the SDK
    assert claims["roles"] == ["Ti.ReadWrite.All"]
    assert claims["oid"] == claims["appid"] == DEFAULT_SYSTEM_CLIENT_ID
    assert claims["tid"] == identity_env.options.tenant_id
    assert abs(token.expires_on - (time.time() + 3600)) < 30
    log = identity_env.admin.requests()
    assert log["count"] == 1
    assert log["resources"] == [DEFENDER_RESOURCE]
    assert log["requests"][0]["client_id"] is None


def test_user_assigned_token_carries_the_client_id(identity_env):
    token = ManagedIdentityCredential(client_id=USER_ASSIGNED).get_token(DEFENDER_SCOPE)
    claims = _claims(identity_env, token.token)
    assert claims["appid"] == claims["oid"] == USER_ASSIGNED
    assert identity_env.admin.requests()["requests"][0]["client_id"] == USER_ASSIGNED


def test_default_azure_credential_uses_the_emulator(identity_env):
    credential = DefaultAzureCredential(managed_identity_client_id=USER_ASSIGNED)
    token = credential.get_token(DEFENDER_SCOPE)
    assert _claims(identity_env, token.token)["appid"] == USER_ASSIGNED
    assert identity_env.admin.requests()["count"] == 1


def test_every_issued_token_differs_and_the_credential_caches(identity_env):
    first = ManagedIdentityCredential()
    a = first.get_token(DEFENDER_SCOPE).token
    assert first.get_token(DEFENDER_SCOPE).token == a  # served from the credential's cache
    b = ManagedIdentityCredential().get_token(DEFENDER_SCOPE).token
    assert a != b
    assert _claims(identity_env, a)["jti"] != _claims(identity_env, b)["jti"]
    assert identity_env.admin.requests()["count"] == 2


def test_roles_lifetime_and_per_client_roles_are_configurable(identity_env):
    identity_env.admin.configure(roles=["Ti.Read.All"], lifetime=120, roles_by_client={USER_ASSIGNED: []})
    system = ManagedIdentityCredential().get_token(DEFENDER_SCOPE)
    assert _claims(identity_env, system.token)["roles"] == ["Ti.Read.All"]
    assert system.expires_on - time.time() < 130
    user = ManagedIdentityCredential(client_id=USER_ASSIGNED).get_token(DEFENDER_SCOPE)
    assert _claims(identity_env, user.token)["roles"] == []


def test_wrong_header_is_refused_and_azure_identity_reports_it(identity_env, monkeypatch):
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(CredentialUnavailableError, match="not valid"):
        ManagedIdentityCredential().get_token(DEFENDER_SCOPE)
    assert identity_env.admin.requests()["requests"][0]["status"] == 401


def test_header_check_and_error_body_shape(identity):
    url = identity.endpoint
    params = {"api-version": "2019-08-01", "resource": DEFENDER_RESOURCE}
    missing = requests.get(url, params=params, timeout=5)
    assert missing.status_code == 400
    assert missing.json()["statusCode"] == 400 and "X-IDENTITY-HEADER" in missing.json()["message"]
    wrong = requests.get(url, params=params, headers={"X-IDENTITY-HEADER": "nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["statusCode"] == 401
    ok = requests.get(url, params=params, headers={"X-IDENTITY-HEADER": identity.identity_header}, timeout=5)
    body = ok.json()
    assert ok.status_code == 200
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["token_type"] == "Bearer" and body["resource"] == DEFENDER_RESOURCE
    assert body["expires_on"].isdigit()  # epoch seconds as a string


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"api-version": "2017-09-01", "resource": DEFENDER_RESOURCE}, "api-version"),
        ({"api-version": "2019-08-01"}, "resource"),
        ({"api-version": "2019-08-01", "resource": DEFENDER_RESOURCE, "client_id": "a", "object_id": "b"}, "one of"),
    ],
)
def test_bad_token_requests_are_400(identity, params, why):
    r = requests.get(
        identity.endpoint, params=params, headers={"X-IDENTITY-HEADER": identity.identity_header}, timeout=5
    )
    assert r.status_code == 400
    assert why in r.json()["message"]


def test_unknown_user_assigned_identity_when_the_list_is_fixed(identity_env):
    identity_env.admin.configure(client_ids=[USER_ASSIGNED])
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id="11111111-2222-3333-4444-555555555555").get_token(DEFENDER_SCOPE)
    assert ManagedIdentityCredential(client_id=USER_ASSIGNED).get_token(DEFENDER_SCOPE).token


def test_fail_next_answers_the_given_status_then_recovers(identity):
    identity.admin.fail_next(count=2, status=503, message="busy")
    headers = {"X-IDENTITY-HEADER": identity.identity_header}
    params = {"api-version": "2019-08-01", "resource": DEFENDER_RESOURCE}
    statuses = [requests.get(identity.endpoint, params=params, headers=headers, timeout=5) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].json()["message"] == "busy"
    assert [e["status"] for e in identity.admin.requests()["requests"]] == [503, 503, 200]


def test_delay_holds_the_answer(identity):
    identity.admin.configure(delay=1.0)
    headers = {"X-IDENTITY-HEADER": identity.identity_header}
    params = {"api-version": "2019-08-01", "resource": DEFENDER_RESOURCE}
    with pytest.raises(requests.Timeout):
        requests.get(identity.endpoint, params=params, headers=headers, timeout=0.1)


def test_reset_restores_options_and_forgets_requests(identity):
    identity.admin.configure(roles=[])
    identity.admin.fail_next(count=5)
    identity.admin.reset()
    assert identity.admin.call("GET", "/admin/config")["roles"] == ["Ti.ReadWrite.All"]
    assert identity.admin.requests()["count"] == 0


def test_unknown_option_is_refused(identity):
    from localdev.admin import AdminError

    with pytest.raises(AdminError, match="unknown identity option"):
        identity.admin.configure(colour="blue")


def test_plain_default_azure_credential_picks_the_managed_identity(identity_env):
    token = DefaultAzureCredential().get_token(DEFENDER_SCOPE)
    assert _claims(identity_env, token.token)["appid"] == DEFAULT_SYSTEM_CLIENT_ID


def test_object_id_and_resource_id_select_a_user_assigned_identity(identity_env):
    by_object = ManagedIdentityCredential(identity_config={"object_id": USER_ASSIGNED}).get_token(DEFENDER_SCOPE)
    assert _claims(identity_env, by_object.token)["oid"] == USER_ASSIGNED
    rid = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi"
    by_resource = ManagedIdentityCredential(identity_config={"resource_id": rid}).get_token(DEFENDER_SCOPE)
    assert _claims(identity_env, by_resource.token)["oid"] not in (USER_ASSIGNED, DEFAULT_SYSTEM_CLIENT_ID)
    assert [r["mi_res_id"] for r in identity_env.admin.requests()["requests"]] == [None, rid]
