"""Stack fixtures: the Defender and managed identity emulators, in-process on free loopback ports, plus
small helpers to build indicators and call the emulated API with real ``requests``.

Fixtures:
    identity_emulator  (session)  IdentityEmulator; .base_url, .endpoint, .identity_header, .admin
    defender_emulator  (session)  DefenderEmulator sharing the identity emulator's signing key; .admin
    identity           (function) identity_emulator, reset (log, faults, options) before the test
    defender           (function) defender_emulator, reset (store, log, faults, windows, clock, options)
    identity_env       (function) env set so azure-identity's ManagedIdentityCredential /
                                   DefaultAzureCredential talk to the identity emulator; returns `identity`
    defender_api       (function) DefenderCaller bound to `defender` with a valid system-identity token
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from localdev.defender_emulator import DefenderEmulator
from localdev.identity_emulator import IdentityEmulator
from localdev.tokens import DEFAULT_ROLES, DEFAULT_SIGNING_KEY, DEFAULT_SYSTEM_CLIENT_ID, mint

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFENDER_RESOURCE = "https://api.securitycenter.microsoft.com"
DEFENDER_SCOPE = DEFENDER_RESOURCE + "/.default"

# Everything azure-identity reads to pick a credential: cleared so only the App Service MI path remains
# (IMDS_ENDPOINT would select Azure Arc, IDENTITY_SERVER_THUMBPRINT Service Fabric).
CREDENTIAL_ENV_VARS = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "IDENTITY_SERVER_THUMBPRINT",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
)


# -- helpers ------------------------------------------------------------------------------------------
def hex_value(seed: object, length: int = 64) -> str:
    """A deterministic lower-case hex string (a fake hash) of ``length`` characters."""
    return (hashlib.sha512(str(seed).encode()).hexdigest() * 2)[:length]


def public_ip(n: int) -> str:
    """The n-th of a run of public IPv4 addresses (20.0.0.0/8 is global; documentation ranges are not)."""
    return str(ipaddress.IPv4Address("20.0.0.0") + n)


def infer_type(value: str) -> str:
    if value.startswith(("http://", "https://")):
        return "Url"
    try:
        ipaddress.ip_address(value)
        return "IpAddress"
    except ValueError:
        pass
    by_length = {32: "FileMd5", 40: "FileSha1", 64: "FileSha256"}
    if len(value) in by_length and all(c in "0123456789abcdefABCDEF" for c in value):
        return by_length[len(value)]
    return "DomainName"


def make_indicator(value: str, type: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid Defender import item (type inferred when not given); ``fields`` add or override."""
    item: dict[str, Any] = {
        "indicatorValue": value,
        "indicatorType": type or infer_type(value),
        "action": "Block",
        "title": "Test indicator",
        "description": "Created by a test",
    }
    item.update(fields)
    if item["action"] == "Audit":
        item.setdefault("generateAlert", True)
    return item


def make_body(indicators: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Indicators": [dict(i) for i in indicators]}


def mint_token(
    *,
    resource: str = DEFENDER_RESOURCE,
    roles: Sequence[str] = DEFAULT_ROLES,
    client_id: str = DEFAULT_SYSTEM_CLIENT_ID,
    lifetime: float = 3600,
    key: bytes = DEFAULT_SIGNING_KEY,
) -> str:
    """A token as the identity emulator would issue it, without going through azure-identity."""
    return mint(key=key, resource=resource, roles=roles, client_id=client_id, lifetime=lifetime)[0]


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class DefenderCaller:
    """Thin ``requests`` wrapper over the emulated API; answers are raw ``requests.Response`` objects."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        if token:
            self.session.headers.update(auth_headers(token))

    def import_(self, indicators: Iterable[Mapping[str, Any]], **kw: Any) -> requests.Response:
        return self.post("/api/indicators/import", make_body(indicators), **kw)

    def post(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=self.timeout, **kw)

    def list(self, **params: Any) -> requests.Response:
        """``list(filter="action eq 'Block'", top=10, skip=0)`` -> GET /api/indicators?$filter=..."""
        query = {f"${k}": v for k, v in params.items()}
        return self.session.get(self.base_url + "/api/indicators", params=query, timeout=self.timeout)

    def delete(self, indicator_id: str) -> requests.Response:
        return self.session.delete(f"{self.base_url}/api/indicators/{indicator_id}", timeout=self.timeout)

    def batch_delete(self, ids: Sequence[str]) -> requests.Response:
        return self.post("/api/indicators/BatchDelete", {"IndicatorIds": list(ids)})

    def close(self) -> None:
        self.session.close()


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def identity_emulator() -> Iterator[IdentityEmulator]:
    emulator = IdentityEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def defender_emulator(identity_emulator: IdentityEmulator) -> Iterator[DefenderEmulator]:
    emulator = DefenderEmulator(signing_key=identity_emulator.signing_key)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def identity(identity_emulator: IdentityEmulator) -> IdentityEmulator:
    identity_emulator.reset()
    return identity_emulator


@pytest.fixture
def defender(defender_emulator: DefenderEmulator) -> DefenderEmulator:
    defender_emulator.reset()
    return defender_emulator


@pytest.fixture
def identity_env(monkeypatch: pytest.MonkeyPatch, identity: IdentityEmulator) -> IdentityEmulator:
    for name in CREDENTIAL_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", identity.identity_header)
    return identity


@pytest.fixture
def defender_api(defender: DefenderEmulator) -> Iterator[DefenderCaller]:
    caller = DefenderCaller(defender.base_url, mint_token(key=defender.signing_key))
    yield caller
    caller.close()
