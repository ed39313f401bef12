"""Defender for Endpoint indicator API: client, pacing, wire format, errors.

`make_client(settings)` is what entry points call; it imports requests and azure.identity on first
use so that importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.core.errors import (
    VALUE_ERROR_CODES,
    AccessDenied,
    BatchRejected,
    DeadlineReached,
    DefenderError,
    DefenderUnavailable,
    IdentityUnavailable,
    NotFoundError,
)
from shared.core.settings import Settings
from shared.defender.pacing import CallPacer

if TYPE_CHECKING:
    import requests

    from shared.defender.client import DefenderClient

__all__ = [
    "VALUE_ERROR_CODES",
    "AccessDenied",
    "BatchRejected",
    "CallPacer",
    "DeadlineReached",
    "DefenderError",
    "DefenderUnavailable",
    "IdentityUnavailable",
    "NotFoundError",
    "make_client",
]


def make_client(
    settings: Settings,
    *,
    credential: Any = None,
    session: requests.Session | None = None,
    pacer: CallPacer | None = None,
    **options: Any,
) -> DefenderClient:
    """A `DefenderClient` configured from settings. No I/O: the token is fetched on the first call.

    `credential` defaults to `credentials.build_credential(settings)` (and a fresh one of those after a
    rejected token); `pacer` to `MAX_CALLS_PER_MINUTE` per 60 s. `options` go to `DefenderClient`
    (e.g. `backoff_factor`, `sleep`, `clock` in tests).
    """
    from shared.defender.client import DefenderClient
    from shared.defender.credentials import build_credential

    if credential is None:
        credential = build_credential(settings)
        options.setdefault("credential_factory", lambda: build_credential(settings))
    if pacer is None:
        pacer = CallPacer(settings.max_calls_per_minute, 60.0)
    return DefenderClient(
        settings.defender_api_url,
        credential,
        scope=settings.defender_token_scope,
        client_id=settings.azure_client_id,
        pacer=pacer,
        session=session,
        timeout=(5.0, settings.request_timeout_seconds),
        max_attempts=settings.max_attempts,
        retry_after_max=settings.retry_after_max_seconds,
        **options,
    )
