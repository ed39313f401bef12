"""credentials.build_credential: managed identity in Azure, DefaultAzureCredential elsewhere (no I/O)."""

from __future__ import annotations

import pytest

from shared.core.settings import Settings
from shared.defender import make_client
from shared.defender.credentials import IDENTITY_TRANSPORT, build_credential, running_in_azure

AZURE_VARS = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_AUTHORITY_HOST")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*AZURE_VARS, "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h"}, True),
        ({"MSI_ENDPOINT": "http://127.0.0.1:1/msi/token"}, True),
        ({"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token"}, False),  # no header: not App Service
        ({}, False),
    ],
)
def test_running_in_azure(env: dict[str, str], expected: bool) -> None:
    assert running_in_azure(env) is expected


class Recorder:
    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs


def test_managed_identity_in_azure_with_user_assigned_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity

    monkeypatch.setattr(azure.identity, "ManagedIdentityCredential", Recorder)
    env = {"IDENTITY_ENDPOINT": "http://127.0.0.1:9/msi/token", "IDENTITY_HEADER": "h"}
    cred = build_credential(Settings(azure_client_id="uami-client"), env)
    assert isinstance(cred, Recorder) and cred.kwargs == {"client_id": "uami-client", **IDENTITY_TRANSPORT}
    system = build_credential(Settings(), {"MSI_ENDPOINT": "http://127.0.0.1:9/msi/token"})
    assert isinstance(system, Recorder) and system.kwargs == IDENTITY_TRANSPORT


def test_default_credential_locally_with_authority_and_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Recorder)
    env = {"AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us"}
    cred = build_credential(Settings(azure_client_id="uami-client"), env)
    assert isinstance(cred, Recorder)
    assert cred.kwargs == {
        "authority": "https://login.microsoftonline.us",
        "managed_identity_client_id": "uami-client",
        **IDENTITY_TRANSPORT,
    }
    plain = build_credential(Settings(), {})
    assert isinstance(plain, Recorder) and plain.kwargs == IDENTITY_TRANSPORT


def test_the_real_classes_construct_without_io() -> None:
    from azure.identity import DefaultAzureCredential

    assert isinstance(build_credential(Settings(), {}), DefaultAzureCredential)


def test_make_client_builds_lazily_from_settings() -> None:
    s = Settings(
        defender_api_url="http://127.0.0.1:1",
        defender_token_scope="https://api-gov.securitycenter.microsoft.us/.default",
        max_calls_per_minute=12,
        request_timeout_seconds=7.0,
    )
    client = make_client(s)
    assert client.api_url == "http://127.0.0.1:1"
    assert client.scope == "https://api-gov.securitycenter.microsoft.us/.default"
    assert (client.pacer.max_calls, client.pacer.window_seconds) == (12, 60.0)
    assert client.timeout == (5.0, 7.0)
    assert client.api_calls == 0


def test_the_identity_request_has_a_fixed_transport_bound() -> None:
    """Issue "Hostile and unlucky input": a hung identity endpoint held the tenant lock for 300 s."""
    assert IDENTITY_TRANSPORT == {"connection_timeout": 10, "read_timeout": 20, "retry_total": 1}
    cred = build_credential(Settings(), {"IDENTITY_ENDPOINT": "http://127.0.0.1:9/msi/token", "IDENTITY_HEADER": "h"})
    transport = cred._credential._client._pipeline._transport
    assert (transport.connection_config.timeout, transport.connection_config.read_timeout) == (10, 20)
