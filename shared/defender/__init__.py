"""Defender for Endpoint indicator API: client, pacing, wire format, errors.

`make_client(settings)` is what entry points call; it imports requests and azure.identity on first
use so that importing this package stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

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
    from shared.defender.policy import ClientClock, ClientPolicy
    from shared.defender.token import TokenCredentialLike

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
    "client_policy",
    "make_client",
]


def make_client(
    settings: Settings,
    *,
    credential: TokenCredentialLike | None = None,
    session: requests.Session | None = None,
    pacer: CallPacer | None = None,
    policy: ClientPolicy | None = None,
    clock: ClientClock | None = None,
    credential_factory: Callable[[], TokenCredentialLike] | None = None,
) -> DefenderClient:
    """A `DefenderClient` configured from settings. No I/O: the token is fetched on the first call.

    `credential` defaults to `credentials.build_credential(settings)` (and a fresh one of those after a
    rejected token); `pacer` to `MAX_CALLS_PER_MINUTE` per 60 s; `policy` to `client_policy(settings)`.
    """
    from shared.defender.client import DefenderClient
    from shared.defender.credentials import build_credential

    if credential is None:
        credential = build_credential(settings)
        if credential_factory is None:
            credential_factory = lambda: build_credential(settings)  # noqa: E731
    if pacer is None:
        pacer = CallPacer(settings.max_calls_per_minute, 60.0)
    return DefenderClient(
        settings.defender_api_url,
        credential,
        scope=settings.defender_token_scope,
        client_id=settings.azure_client_id,
        pacer=pacer,
        policy=policy or client_policy(settings),
        session=session,
        credential_factory=credential_factory,
        clock=clock,
        call_limits={
            "list": (settings.list_calls_per_minute, settings.list_calls_per_hour),
            "batchdelete": (settings.batch_delete_calls_per_minute, settings.batch_delete_calls_per_hour),
        },
    )


def client_policy(
    settings: Settings,
    *,
    backoff_factor: float = 1.0,
    backoff_max: float = 30.0,
    backoff_jitter: float = 1.0,
) -> ClientPolicy:
    """The client's policy from the settings; the backoff is a parameter for tests and the demo, whose scaled
    clocks retry in milliseconds."""
    from shared.defender.policy import ClientPolicy

    return ClientPolicy(
        timeout=(5.0, settings.request_timeout_seconds),
        max_attempts=settings.max_attempts,
        retry_after_max=settings.retry_after_max_seconds,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_jitter,
    )
