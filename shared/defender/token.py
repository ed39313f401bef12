"""The Defender client's access token: from azure-identity, cached, refreshed before expiry and after a 401.

Never logged or returned but to the request that carries it (STYLE.md "Logging").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from azure.core.exceptions import AzureError

from shared.core.errors import IdentityUnavailable
from shared.defender import wire

log = logging.getLogger(__name__)

# azure-core refreshes a bearer token when less than this much of it remains (BearerTokenCredentialPolicy).
TOKEN_REFRESH_MARGIN_SECONDS = 300.0


class AccessTokenLike(Protocol):
    token: str
    expires_on: int


class TokenCredentialLike(Protocol):
    """azure-core's `TokenCredential`, as far as the client uses it."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike: ...


class TokenSource:
    """One credential's token for one scope. `factory` gives a fresh credential (an empty cache) when a token
    was rejected; `wall` is the clock token expiry is read against (epoch seconds)."""

    def __init__(
        self,
        credential: TokenCredentialLike,
        *,
        scope: str,
        client_id: str | None = None,
        factory: Callable[[], TokenCredentialLike] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._credential = credential
        self._factory = factory
        self.scope = scope
        self.client_id = client_id
        self._wall = wall
        self._token: AccessTokenLike | None = None
        self._identity_unknown_logged = False

    def forget(self) -> None:
        """Drop the token and, when possible, the credential with its cache (after a 403: a role granted
        meanwhile reaches only new tokens)."""
        self._token = None
        if self._factory is not None:
            self._credential = self._factory()

    def identity_ids(self) -> tuple[str, ...]:
        """Who this client calls Defender as: the `appid`/`azp`/`oid` claims of its current token.

        The quota steward requires one of them in `createdBy` before it treats an indicator as the app's own
        (the emulator writes the token's `appid` there; real Defender: unconfirmed, defender-api.md §5).
        Gets a token when there is none yet (IdentityUnavailable like any call). Never returns or logs the
        token itself. () when its claims cannot be read: ownership then rests on the mark alone (logged once).
        """
        ids = wire.identity_ids(wire.token_claims(self.token()))
        if not ids and not self._identity_unknown_logged:
            self._identity_unknown_logged = True
            log.info(
                "the access token's identity claims (appid, azp, oid) could not be read: indicators count as"
                " this app's own by their externalId mark alone"
            )
        return ids

    def token(self) -> str:
        """The cached token, or a new one when less than the refresh margin of it remains."""
        tok = self._token
        if tok is None or tok.expires_on - self._wall() < TOKEN_REFRESH_MARGIN_SECONDS:
            tok = self._get()
            self._token = tok
        return tok.token

    def refresh(self, rejected: str) -> None:
        """After a 401: get a token that differs from the rejected one.

        azure-identity hands back its cached token until it nears expiry, so when the credential returns
        the same one a fresh credential (empty cache) is asked. In Azure the platform's own token cache may
        still return it (defender-api.md §7 "Timing"); then the one retry runs with it and a second 401
        becomes AccessDenied.
        """
        tok = self._get()
        if tok.token == rejected and self._factory is not None:
            self._credential = self._factory()
            tok = self._get()
        if tok.token == rejected:
            log.warning("the identity returned the same token after Defender rejected it (HTTP 401)")
        else:
            log.debug("fetched a new token after HTTP 401")
        self._token = tok

    def _get(self) -> AccessTokenLike:
        try:
            return self._credential.get_token(self.scope)
        except (AzureError, ValueError, OSError) as e:  # azure-identity: ClientAuthenticationError and kin
            who = f"client id {self.client_id}" if self.client_id else "the system-assigned identity"
            raise IdentityUnavailable(
                f"no token for scope {self.scope} from the managed identity ({who}): {type(e).__name__}: "
                f"{_first_line(str(e))}.{_identity_hint(str(e))} Check that the identity is assigned to the app,"
                " AZURE_CLIENT_ID and DEFENDER_TOKEN_SCOPE (locally: sign in with az login)"
            ) from e


def _identity_hint(message: str) -> str:
    """What azure-identity's message leaves out. A token answer without `expires_on` (or `expires_in`) is
    reported by its App Service credential as "configuration not found … (invalid_scope)", which sends an
    operator to the wrong place."""
    if "invalid_scope" in message and "configuration not found" in message:
        return (
            " The identity endpoint's answer probably lacked `expires_on` (or `expires_in`): azure-identity"
            " reports a token answer without an expiry this way; the identity and scope may well be right."
        )
    if "timed out" in message.lower() or "timeout" in message.lower():
        return " The identity endpoint did not answer in time (10 s to connect, 20 s to read)."
    return ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
