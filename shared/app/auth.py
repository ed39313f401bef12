"""Entra ID bearer tokens in front of the HTTP API (`HTTP_AUTH=entra`; CONTRACT.md "HTTP API" [entra]).

With `HTTP_AUTH=entra` the import and job-status routes are indexed `ANONYMOUS` (function_app.py reads the
setting once, at import: the worker fixes a function's auth level when it indexes the app, so a change needs a
restart) and every request to them must carry a valid Entra ID access token for this app:

- `401` + `WWW-Authenticate: Bearer` for a missing or malformed token, one that is expired or not yet valid
  (beyond LEEWAY_SECONDS of clock skew), signed with a key the tenant does not publish, issued by another
  issuer or for another audience, or signed with anything but RS256 (`alg: none` and HS* included: Entra signs
  access tokens with RS256 only, and an RSA public key must never become an HMAC secret).
- `403` for a valid token without the role: `Indicators.Import` may POST and read the caller's own jobs (the
  job record's `submitter`: `oid` and `appid`/`azp`), `Indicators.Read` may read any job.
- `X-MS-CLIENT-PRINCIPAL*` headers authorise nothing: App Service Authentication sets them when it runs in
  front, but the app cannot tell whether it did, or whether the caller did.

This module imports no `azure.*`. PyJWT checks the signature, the algorithm, the audience and the required
claims; the time window is checked here against an injectable clock (PyJWT reads the wall clock itself), with
PyJWT's own rules (`exp <= now - leeway` is expired, `nbf`/`iat > now + leeway` not yet valid). The tenant's
metadata and keys are fetched behind `entra_keys.EntraKeys`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from shared.app.entra_keys import KEY_COOLDOWN_SECONDS, EntraKeys, KeySource, KeysUnavailable, UnknownKey
from shared.app.http_answer import HttpAnswer
from shared.core.vocab import secure_url

log = logging.getLogger(__name__)

FUNCTION_KEY = "function-key"
ENTRA = "entra"
HTTP_AUTH_MODES = (FUNCTION_KEY, ENTRA)
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
IMPORT_ROLE = "Indicators.Import"
READ_ROLE = "Indicators.Read"
ALGORITHMS = ("RS256",)  # what Entra signs access tokens with
LEEWAY_SECONDS = 300  # clock skew allowed on exp, nbf and iat (Microsoft.IdentityModel's default, 5 minutes)
MAX_TOKEN_CHARS = 16384
# Multi-tenant endpoints: their metadata names `{tenantid}` as a template, which no token's issuer matches.
NOT_A_TENANT = frozenset({"common", "organizations", "consumers"})
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")  # a GUID or a domain (contoso.onmicrosoft.com)


class AuthSettingsError(ValueError):
    """HTTP_AUTH=entra with settings that cannot validate a token; the message lists every problem."""


def http_auth_mode(raw: str | None) -> tuple[str, str | None]:
    """(mode in effect, problem or None) for an HTTP_AUTH value, as function_app.py decides it: only the
    exact value `entra` turns tokens on; empty means `function-key`; anything else keeps function keys (a
    typo must not open the routes) and is a problem health reports."""
    value = raw or ""
    if value in ("", FUNCTION_KEY):
        return FUNCTION_KEY, None
    if value == ENTRA:
        return ENTRA, None
    return FUNCTION_KEY, (
        f"HTTP_AUTH must be {FUNCTION_KEY} or {ENTRA}, got {value[:40]!r}: the HTTP routes keep function keys"
    )


@dataclass(frozen=True)
class AuthSettings:
    """HTTP_AUTH_TENANT_ID, HTTP_AUTH_AUDIENCE (application ID URI and client id of the same registration)
    and HTTP_AUTH_AUTHORITY_HOST."""

    tenant_id: str
    audiences: tuple[str, ...]
    authority_host: str = DEFAULT_AUTHORITY_HOST

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        problems = auth_settings_problems(env)
        if problems:
            raise AuthSettingsError("; ".join(problems))
        return cls(
            tenant_id=env["HTTP_AUTH_TENANT_ID"].strip(),
            audiences=_audiences(env.get("HTTP_AUTH_AUDIENCE", "")),
            authority_host=_authority_host(env),
        )

    def metadata_urls(self) -> tuple[str, str]:
        """The tenant's v2 and v1 OpenID documents (the v2 one names the keys)."""
        base = f"{self.authority_host}/{self.tenant_id}"
        return f"{base}/v2.0/.well-known/openid-configuration", f"{base}/.well-known/openid-configuration"

    def describe(self) -> dict[str, object]:
        return {"tenantId": self.tenant_id, "audiences": list(self.audiences), "authorityHost": self.authority_host}


def _audiences(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))


def _authority_host(env: Mapping[str, str]) -> str:
    return (env.get("HTTP_AUTH_AUTHORITY_HOST") or "").strip().rstrip("/") or DEFAULT_AUTHORITY_HOST


def auth_settings_problems(env: Mapping[str, str]) -> list[str]:
    """What keeps the token settings from validating anything (names settings, never a secret)."""
    problems = []
    tenant = (env.get("HTTP_AUTH_TENANT_ID") or "").strip()
    if not tenant:
        problems.append("HTTP_AUTH_TENANT_ID is missing (the tenant whose tokens the HTTP API accepts)")
    elif tenant.lower() in NOT_A_TENANT or not _TENANT.match(tenant):
        problems.append(f"HTTP_AUTH_TENANT_ID must be the tenant's id or domain, got {tenant[:60]!r}")
    if not _audiences(env.get("HTTP_AUTH_AUDIENCE") or ""):
        problems.append(
            "HTTP_AUTH_AUDIENCE is missing (a comma list: the application ID URI and the client id of the app "
            "registration)"
        )
    host = _authority_host(env)
    if not secure_url(host):
        problems.append(f"HTTP_AUTH_AUTHORITY_HOST must be https (plain http on loopback only), got {host[:80]!r}")
    return problems


# --------------------------------------------------------------------------------------- callers and refusals


@dataclass(frozen=True)
class Caller:
    """Who a valid token names: the caller's object id and client id (`appid` in v1 tokens, `azp` in v2)."""

    oid: str
    client_id: str
    client_claim: str  # "appid" | "azp"
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def submitter(self) -> dict[str, str]:
        """What the job record and the report keep (a SOC can tell which playbook sent what)."""
        return {"oid": self.oid, self.client_claim: self.client_id}

    def owns(self, submitter: Mapping[str, object] | None) -> bool:
        """The job was submitted by this caller: same object id and same client id (whichever claim held it)."""
        if not submitter:
            return False
        client = submitter.get("appid") or submitter.get("azp")
        return submitter.get("oid") == self.oid and client == self.client_id

    def may_read(self, submitter: Mapping[str, object] | None) -> bool:
        return READ_ROLE in self.roles or (IMPORT_ROLE in self.roles and self.owns(submitter))

    def describe(self) -> str:
        return f"oid={self.oid} {self.client_claim}={self.client_id}"


class Refused(Exception):
    """A request the app refuses before doing anything: 401 (no valid token), 403 (no role), 500 (the token
    settings are incomplete) or 503 (the tenant's keys cannot be fetched). Messages never hold a token."""

    def __init__(self, status: int, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error  # RFC 6750 §3.1 error code for WWW-Authenticate

    def answer(self) -> HttpAnswer:
        codes = {401: "Unauthorized", 403: "Forbidden", 500: "InternalServerError", 503: "ServiceUnavailable"}
        body: dict[str, object] = {"error": {"code": codes.get(self.status, "Error"), "message": self.message}}
        headers: dict[str, str] = {}
        if self.status in (401, 403):
            # RFC 6750 §3: no error attribute when the request carried no token at all.
            challenge = "Bearer"
            if self.error:
                description = self.message.replace("\\", "").replace('"', "'")
                challenge += f' error="{self.error}", error_description="{description}"'
            headers["WWW-Authenticate"] = challenge
        elif self.status == 503:
            headers["Retry-After"] = "30"
        return HttpAnswer(self.status, body, headers)


def _invalid(message: str) -> Refused:
    return Refused(401, message, error="invalid_token")


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an `Authorization: Bearer …` header (RFC 6750 §2.1; the scheme is case-insensitive)."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if value is None or not value.strip():
        raise Refused(401, "an Entra ID access token is required (Authorization: Bearer <token>)")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    # RFC 6750 §3.1: another scheme, or none at all, is a request without authentication: no error code.
    if scheme.lower() != "bearer":
        raise Refused(401, "the Authorization header must use the Bearer scheme with an Entra ID access token")
    if not token:
        raise Refused(401, "an Entra ID access token is required (Authorization: Bearer <token>)")
    if " " in token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise _invalid("the bearer token is not a JWT (header.payload.signature)")
    return token


# --------------------------------------------------------------------------------------- validation


def _numeric(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise _invalid(f"the token has no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"the token's {name} claim is not a number")
    return float(value)


class Authenticator:
    """Validates a request's bearer token into a `Caller` (or raises `Refused`). Thread-safe."""

    def __init__(
        self, settings: AuthSettings, keys: KeySource, *, leeway: float = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.keys = keys
        self.leeway = leeway
        self.clock = clock

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, cooldown: float = KEY_COOLDOWN_SECONDS, clock: Callable[[], float] = time.time
    ) -> Authenticator:
        settings = AuthSettings.from_env(env)
        return cls(settings, EntraKeys(settings, cooldown=cooldown), clock=clock)

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        return self.validate(bearer_token(headers))

    def validate(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as e:
            raise _invalid("the bearer token cannot be decoded") from e
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _invalid(f"the token's algorithm {str(alg)[:20]!r} is not accepted (RS256 only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid("the token names no signing key (kid)")
        try:
            key = self.keys.signing_key(kid)
            issuers = self.keys.issuers()
        except UnknownKey as e:
            raise _invalid("the token is signed with a key the tenant does not publish") from e
        except KeysUnavailable as e:
            log.error("HTTP_AUTH=entra: %s", e)
            raise Refused(503, "the tenant's signing keys cannot be fetched right now; retry") from e
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=list(self.settings.audiences),
                # The time window is checked below against self.clock (PyJWT reads the wall clock itself).
                options={"require": ["exp", "iss", "aud"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )  # fmt: skip
        except jwt.InvalidAudienceError as e:
            raise _invalid("the token is for another audience") from e
        except jwt.MissingRequiredClaimError as e:
            raise _invalid(f"the token has no {e.claim} claim") from e
        except jwt.InvalidSignatureError as e:
            raise _invalid("the token's signature is invalid") from e
        except jwt.InvalidTokenError as e:
            raise _invalid(f"the token is invalid ({type(e).__name__})") from e
        if claims.get("iss") not in issuers:
            raise _invalid("the token is from another issuer")
        self._check_times(claims)
        return _caller(claims)

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        exp = _numeric(claims, "exp", required=True)
        if exp is not None and exp <= now - self.leeway:
            raise _invalid("the token is expired")
        for name in ("nbf", "iat"):
            value = _numeric(claims, name, required=False)
            if value is not None and value > now + self.leeway:
                raise _invalid("the token is not valid yet")


def _caller(claims: Mapping[str, Any]) -> Caller:
    oid = claims.get("oid")
    if not isinstance(oid, str) or not oid:
        raise _invalid("the token names no caller (oid)")
    claim = "appid" if isinstance(claims.get("appid"), str) and claims["appid"] else "azp"
    client = claims.get(claim)
    if not isinstance(client, str) or not client:
        raise _invalid("the token names no client application (appid or azp)")
    roles = claims.get("roles")
    names = frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()
    return Caller(oid=oid, client_id=client, client_claim=claim, roles=names)


def require_role(caller: Caller, roles: Iterable[str], what: str) -> Caller:
    wanted = tuple(roles)
    if not caller.roles & set(wanted):
        raise Refused(
            403,
            f"{what} needs the app role {' or '.join(wanted)}; the token carries "
            f"{', '.join(sorted(caller.roles)) or 'no role'} (grant the role to the caller's identity; new "
            "grants reach tokens when the caller gets a new one)",
            error="insufficient_scope",
        )
    return caller


# --------------------------------------------------------------------------------------- the process's authenticator

_lock = threading.Lock()
_authenticator: Authenticator | None = None


def get_authenticator(env: Mapping[str, str] | None = None) -> Authenticator:
    """The process's authenticator, built from the environment on first use (raises AuthSettingsError)."""
    global _authenticator
    with _lock:
        if _authenticator is None:
            _authenticator = Authenticator.from_env(os.environ if env is None else env)
        return _authenticator


def set_authenticator(authenticator: Authenticator | None) -> None:
    """Install (tests: with a fake clock or a short cooldown) or forget the process's authenticator."""
    global _authenticator
    with _lock:
        _authenticator = authenticator


def authorise(headers: Mapping[str, str], roles: Iterable[str], what: str) -> Caller:
    """The caller of an HTTP request with one of `roles`, or `Refused`. A request without a token is
    refused before the settings are even looked at (it learns nothing about the app)."""
    token = bearer_token(headers)
    try:
        authenticator = get_authenticator()
    except AuthSettingsError as e:
        log.error("HTTP_AUTH=entra but the token settings are incomplete: %s", e)
        raise Refused(500, "HTTP_AUTH=entra but token validation is not configured; GET /api/health names what "
                           "is missing") from e  # fmt: skip
    try:
        caller = authenticator.validate(token)
    except Refused as r:
        log.warning("%s refused (%d): %s", what, r.status, r.message)
        raise
    try:
        return require_role(caller, roles, what)
    except Refused as r:
        log.warning("%s refused (403) for %s: %s", what, caller.describe(), r.message)
        raise
