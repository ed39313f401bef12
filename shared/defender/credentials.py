"""Building the azure-identity credential that gets Defender tokens.

In Azure (App Service / Functions expose `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, older hosts
`MSI_ENDPOINT`) the app uses `ManagedIdentityCredential`, with `client_id=AZURE_CLIENT_ID` for a
user-assigned identity. Elsewhere `DefaultAzureCredential` (a developer's `az login`, environment
variables, ...) with `managed_identity_client_id` when `AZURE_CLIENT_ID` is set.

Clouds (defender-api.md §1.1, §1.2, §8.15) — set all three settings together:

- Commercial (default): `DEFENDER_API_URL=https://api.securitycenter.microsoft.com`,
  `DEFENDER_TOKEN_SCOPE=https://api.securitycenter.microsoft.com/.default`,
  `AZURE_AUTHORITY_HOST=https://login.microsoftonline.com`.
- US GCC: `DEFENDER_API_URL=https://api-gcc.securitycenter.microsoft.us`,
  `DEFENDER_TOKEN_SCOPE=https://api-gcc.securitycenter.microsoft.us/.default`,
  `AZURE_AUTHORITY_HOST=https://login.microsoftonline.com`.
- US GCC High: `DEFENDER_API_URL=https://api-gov.securitycenter.microsoft.us`,
  `DEFENDER_TOKEN_SCOPE=https://api-gov.securitycenter.microsoft.us/.default`,
  `AZURE_AUTHORITY_HOST=https://login.microsoftonline.us`.
- US DoD: the same as GCC High (`api-gov.securitycenter.microsoft.us`, `login.microsoftonline.us`).

The commercial token scope stays `api.securitycenter.microsoft.com` even when calling the newer
`api.security.microsoft.com` host or a geo host (defender-api.md §1.2). GCC tenants still on
commercial Defender use the commercial values. A managed identity gets its token from the platform
endpoint of its own cloud, so `AZURE_AUTHORITY_HOST` matters only for `DefaultAzureCredential`
(local runs, service principals); azure-identity reads the same variable itself.

azure.identity is imported inside the functions: it costs about 0.2 s of cold start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from shared.core.settings import Settings

# A fixed bound on each token request (azure-core transport options, passed through the credential): a hung
# identity endpoint held the tenant lock for 300 s with the defaults. Connect 10 s, read 20 s, one retry: a
# token request gives up within about a minute, and the job retries later (IdentityUnavailable).
IDENTITY_TRANSPORT: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 20, "retry_total": 1}


def running_in_azure(env: Mapping[str, str]) -> bool:
    """True where the platform offers a managed identity endpoint (App Service/Functions, or MSI_ENDPOINT)."""
    return bool(env.get("IDENTITY_ENDPOINT") and env.get("IDENTITY_HEADER")) or bool(env.get("MSI_ENDPOINT"))


def build_credential(settings: Settings, env: Mapping[str, str] | None = None) -> Any:
    """A new azure-identity credential for `settings.defender_token_scope` (no I/O until `get_token`).

    Each call builds a fresh credential with an empty token cache: the client calls it again when
    Defender rejects a token that the old credential keeps handing back.
    """
    env = os.environ if env is None else env
    client_id = settings.azure_client_id or None
    if running_in_azure(env):
        from azure.identity import ManagedIdentityCredential

        if client_id:
            return ManagedIdentityCredential(client_id=client_id, **IDENTITY_TRANSPORT)
        return ManagedIdentityCredential(**IDENTITY_TRANSPORT)

    from azure.identity import DefaultAzureCredential

    kwargs: dict[str, Any] = dict(IDENTITY_TRANSPORT)
    authority = (env.get("AZURE_AUTHORITY_HOST") or "").strip()
    if authority:
        kwargs["authority"] = authority
    if client_id:
        kwargs["managed_identity_client_id"] = client_id
    return DefaultAzureCredential(**kwargs)
