"""The Entra tenant's token issuers and signing keys, for `auth.Authenticator` (CONTRACT.md "HTTP API" [entra]).

Issuers come from the v2 and v1 OpenID documents of the tenant (managed identities get v1 tokens for a custom API
unless its registration asks for v2), keys from the v2 document's `jwks_uri`, cached, and refreshed on an unknown
`kid` at most once per cooldown. This module imports no `azure.*`.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import jwt
from jwt import PyJWKClient

from shared.core.vocab import secure_url

log = logging.getLogger(__name__)

KEY_COOLDOWN_SECONDS = 30.0  # at most one key refresh per cooldown, however many unknown kids arrive
KEYS_LIFESPAN_SECONDS = 3600.0  # the key set is read again after an hour (a removed key stops working)
METADATA_TTL_SECONDS = 24 * 3600.0
FAILURE_BACKOFF_SECONDS = 5.0  # after a failed metadata fetch, requests answer 503 without a new call


class MetadataUrls(Protocol):
    """Where the tenant's OpenID documents are (`auth.AuthSettings` has it)."""

    def metadata_urls(self) -> tuple[str, str]: ...


class KeysUnavailable(Exception):
    """The tenant's metadata or keys could not be fetched (network, HTTP error, unusable document)."""


class UnknownKey(Exception):
    """The token names a key the tenant does not publish (even after a refresh, or during the cooldown)."""


class KeySource(Protocol):
    def issuers(self) -> frozenset[str]: ...

    def signing_key(self, kid: str) -> Any: ...


def _native_cooldown() -> bool:
    """PyJWKClient has its own refresh cooldown since PyJWT 2.14 (`cooldown_duration`); older ones refresh on
    every unknown kid (GHSA-fhv5-28vv-h8m8), so EntraKeys keeps the cooldown itself there."""
    return "cooldown_duration" in inspect.signature(PyJWKClient.__init__).parameters


class _KeyClient(PyJWKClient):
    """PyJWKClient that notes when it last fetched the key set (for the cooldown kept outside it)."""

    clock: Callable[[], float] = time.monotonic
    fetched_at: float | None = None

    def fetch_data(self) -> Any:
        data = super().fetch_data()
        self.fetched_at = self.clock()
        return data


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    import requests

    try:
        resp = requests.get(url, timeout=(3.05, timeout), allow_redirects=False, headers={"Accept": "application/json"})
    except requests.RequestException as e:
        raise KeysUnavailable(f"{url} could not be reached ({type(e).__name__})") from e
    if resp.status_code != 200:
        raise KeysUnavailable(f"{url} answered {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError as e:
        raise KeysUnavailable(f"{url} did not answer JSON") from e
    if not isinstance(doc, dict):
        raise KeysUnavailable(f"{url} did not answer a JSON object")
    return doc


class EntraKeys:
    """The tenant's issuers (v2 and v1 OpenID documents) and signing keys (the v2 document's `jwks_uri`).

    Documents are read on first use and kept METADATA_TTL_SECONDS; the key set is cached (PyJWKClient,
    KEYS_LIFESPAN_SECONDS) and refreshed when a token names an unknown `kid`, at most once per `cooldown`
    (30 s in production; tests pass less). The constructor does no I/O."""

    def __init__(
        self,
        settings: MetadataUrls,
        *,
        cooldown: float = KEY_COOLDOWN_SECONDS,
        lifespan: float = KEYS_LIFESPAN_SECONDS,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        native_cooldown: bool | None = None,
        get_json: Callable[[str, float], dict[str, Any]] = _get_json,
    ) -> None:
        self.settings = settings
        self.cooldown = cooldown
        self.lifespan = lifespan
        self.timeout = timeout
        self.clock = clock
        self.native = _native_cooldown() if native_cooldown is None else native_cooldown
        self._get_json = get_json
        self._lock = threading.Lock()
        self._issuers: frozenset[str] = frozenset()
        self._client: PyJWKClient | None = None
        self._read_at: float | None = None
        self._failed_at: float | None = None
        self._refreshed_at: float | None = None

    def issuers(self) -> frozenset[str]:
        self._metadata()
        return self._issuers

    def signing_key(self, kid: str) -> Any:
        client = self._metadata()
        try:
            if self.native:
                return client.get_signing_key(kid)
            return self._signing_key_with_cooldown(client, kid)
        except jwt.PyJWKClientConnectionError as e:
            raise KeysUnavailable(f"the signing keys could not be fetched ({e})") from e
        except jwt.PyJWKSetError as e:
            raise KeysUnavailable(f"the signing keys are unusable ({e})") from e
        except jwt.PyJWKClientError as e:
            if "signing key" not in str(e).lower() or "unable to find" not in str(e).lower():
                raise KeysUnavailable(f"the signing keys are unusable ({e})") from e
            raise UnknownKey(kid) from e

    def _signing_key_with_cooldown(self, client: PyJWKClient, kid: str) -> Any:
        """Match the kid in the cached set; refresh once if the last fetch or refresh attempt (a failed one
        too: PyJWT before 2.13 empties its cache on a failed fetch) is at least `cooldown` old."""
        found = client.match_kid(client.get_signing_keys(), kid)
        if found is None:
            with self._lock:
                last = max((t for t in (getattr(client, "fetched_at", None), self._refreshed_at) if t is not None),
                           default=None)  # fmt: skip
                now = self.clock()
                if last is not None and now - last < self.cooldown:
                    raise UnknownKey(kid)
                self._refreshed_at = now
            found = client.match_kid(client.get_signing_keys(refresh=True), kid)
        if found is None:
            raise UnknownKey(kid)
        return found

    def _metadata(self) -> PyJWKClient:
        with self._lock:
            now = self.clock()
            if self._client is not None and self._read_at is not None and now - self._read_at < METADATA_TTL_SECONDS:
                return self._client
            if self._failed_at is not None and now - self._failed_at < FAILURE_BACKOFF_SECONDS:
                if self._client is not None:
                    return self._client
                raise KeysUnavailable("the tenant's OpenID metadata could not be read a moment ago")
            try:
                client, issuers = self._read_metadata()
            except KeysUnavailable:
                self._failed_at = now
                if self._client is not None:  # keep serving what was read before rather than refuse everyone
                    log.warning("the tenant's OpenID metadata could not be refreshed; the cached one stays")
                    return self._client
                raise
            self._client, self._issuers, self._read_at, self._failed_at = client, issuers, now, None
            return client

    def _read_metadata(self) -> tuple[PyJWKClient, frozenset[str]]:
        v2_url, v1_url = self.settings.metadata_urls()
        v2, v1 = self._get_json(v2_url, self.timeout), self._get_json(v1_url, self.timeout)
        issuers = frozenset(str(d["issuer"]) for d in (v2, v1) if isinstance(d.get("issuer"), str) and d["issuer"])
        jwks_uri = v2.get("jwks_uri")
        if not issuers or not isinstance(jwks_uri, str) or not secure_url(jwks_uri):
            raise KeysUnavailable("the tenant's OpenID metadata names no issuer or no https jwks_uri")
        if self.native:
            client: PyJWKClient = PyJWKClient(
                jwks_uri, lifespan=self.lifespan, timeout=self.timeout, cooldown_duration=self.cooldown
            )  # type: ignore[call-arg]  # the keyword exists where native is true
        else:
            timed = _KeyClient(jwks_uri, lifespan=self.lifespan, timeout=self.timeout)
            timed.clock = self.clock
            client = timed
        log.info("HTTP_AUTH=entra: issuers %s, keys from %s", sorted(issuers), jwks_uri)
        return client, issuers
