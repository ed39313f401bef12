"""A stand-in for Entra ID as the HTTP API sees it with ``HTTP_AUTH=entra``: one tenant's OpenID metadata and
signing keys on loopback, and RS256 access tokens shaped as Entra issues them to a managed identity (v1) or to a
registration that asks for v2 tokens.

Paths are login.microsoftonline.com's, so ``HTTP_AUTH_AUTHORITY_HOST`` is simply the signer's base URL:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: ``issuer`` ``{base}/{tenant}/v2.0`` (Entra's v2 form
  on this host) and ``jwks_uri`` ``{base}/{tenant}/discovery/v2.0/keys``;
- ``GET /{tenant}/.well-known/openid-configuration``: ``issuer`` ``https://sts.windows.net/{tenant}/`` (v1
  tokens' issuer, as Entra names it) and the same keys;
- ``GET /{tenant}/discovery/v2.0/keys``: the published keys (``kty``, ``use``, ``kid``, ``n``, ``e``);
- ``POST /admin/token`` (``{"version", "roles", "audience", "oid", "client_id", "lifetime", ...}``) →
  ``{"access_token"}``, for tools that are not Python; ``GET /admin/requests`` counts the requests per path.

Keys: ``add_key(publish=False)`` makes one the tenant does not publish (an unknown ``kid``), ``publish(kid)``
rotates one in later. No Defender token here: those stay HS256 in :mod:`localdev.tokens`.

Run: ``python -m localdev.entra_signer --port 0 [--tenant-id T]``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localdev._server import HttpEmulator, Reply, Request, base_arg_parser, serve_until_signalled

DEFAULT_TENANT = "7f0c4a1e-0000-4000-8000-0000000e1e1d"
DEFAULT_CLIENT_ID = "3b5c9d2a-0000-4000-8000-00000000a7b1"  # the API's app registration
DEFAULT_APP_ID_URI = f"api://{DEFAULT_TENANT}/ioc-importer"
DEFAULT_CALLER_OID = "9e1d0c4b-0000-4000-8000-00000000ca11"  # a Logic App's managed identity
DEFAULT_CALLER_APPID = "1c2b3a49-0000-4000-8000-00000000ca11"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64_int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class EntraSigner(HttpEmulator):
    """``EntraSigner().start() -> base_url``; ``token(...)`` issues tokens signed by the current key."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, tenant_id: str = DEFAULT_TENANT,
                 client_id: str = DEFAULT_CLIENT_ID, app_id_uri: str = DEFAULT_APP_ID_URI) -> None:  # fmt: skip
        super().__init__(host=host, port=port)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.app_id_uri = app_id_uri
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._published: list[str] = []
        self.requests: Counter[str] = Counter()
        self.key_fetched_at: float | None = None  # time.monotonic() of the last key-set answer
        self.current_kid = self.add_key()

    # -- keys ---------------------------------------------------------------------------------------------
    def add_key(self, *, publish: bool = True) -> str:
        """A new RSA key; its kid. Unpublished keys sign tokens the app must refuse (unknown kid)."""
        kid = uuid.uuid4().hex[:16]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self._lock:
            self._keys[kid] = key
            if publish:
                self._published.append(kid)
        return kid

    def publish(self, kid: str, *, current: bool = True) -> None:
        """Add a key to the published set (a rotation); by default new tokens are signed with it."""
        with self._lock:
            if kid not in self._published:
                self._published.append(kid)
        if current:
            self.current_kid = kid

    def private_key(self, kid: str) -> rsa.RSAPrivateKey:
        return self._keys[kid]

    def public_pem(self, kid: str) -> bytes:
        return (
            self._keys[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            published = list(self._published)
        keys = []
        for kid in published:
            numbers = self._keys[kid].public_key().public_numbers()
            keys.append({"kty": "RSA", "use": "sig", "kid": kid, "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)})
        return {"keys": keys}

    # -- issuers and tokens --------------------------------------------------------------------------------
    @property
    def v1_issuer(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def v2_issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    def claims(
        self, *, version: str = "1.0", audience: str | None = None, roles: Sequence[str] = ("Indicators.Import",),
        oid: str | None = DEFAULT_CALLER_OID, client_id: str = DEFAULT_CALLER_APPID, lifetime: float = 3600,
        now: float | None = None, issuer: str | None = None, **extra: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """An app-only access token's claims, v1 (issuer sts.windows.net, `appid`, audience as requested: the
        application ID URI by default) or v2 (issuer …/v2.0, `azp`, audience the client id). `extra` adds or
        overrides claims; a value of None removes the claim."""
        issued = int(time.time() if now is None else now)
        v2 = version == "2.0"
        claims: dict[str, Any] = {
            "aud": audience or (self.client_id if v2 else self.app_id_uri),
            "iss": issuer or (self.v2_issuer if v2 else self.v1_issuer),
            "iat": issued,
            "nbf": issued,
            "exp": int(issued + lifetime),
            "oid": oid,
            "sub": oid or uuid.uuid4().hex,
            "tid": self.tenant_id,
            "idtyp": "app",
            "roles": list(roles),
            "ver": version,
            "uti": uuid.uuid4().hex,
            ("azp" if v2 else "appid"): client_id,
        }
        if v2:
            claims["azpacr"] = "2"
        else:
            claims["appidacr"] = "2"
        if not oid:
            del claims["oid"]
        for name, value in extra.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        kid = kid or self.current_kid
        return jwt.encode(dict(claims), self._keys[kid], algorithm="RS256", headers={"kid": kid, "typ": "JWT"})

    def token(self, *, kid: str | None = None, **claim_args: Any) -> str:
        """A signed token (see `claims` for the arguments)."""
        return self.sign(self.claims(**claim_args), kid=kid)

    def unsigned_token(self, **claim_args: Any) -> str:
        """`alg: none` (RFC 7519 §6): an unsecured JWT, which must never be accepted."""
        header = {"alg": "none", "typ": "JWT", "kid": self.current_kid}
        body = self.claims(**claim_args)
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}."

    def hs256_token(self, **claim_args: Any) -> str:
        """HS256 keyed with the published RSA public key: the algorithm-confusion forgery."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.current_kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(self.claims(**claim_args)).encode())}"
        mac = hmac.new(self.public_pem(self.current_kid), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"

    # -- HTTP -------------------------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        with self._lock:
            self.requests[path] += 1
        tenant = f"/{self.tenant_id}"
        if request.method == "GET" and path == f"{tenant}/v2.0/.well-known/openid-configuration":
            return Reply(200, self._metadata(self.v2_issuer, "v2.0"))
        if request.method == "GET" and path == f"{tenant}/.well-known/openid-configuration":
            return Reply(200, self._metadata(self.v1_issuer, ""))
        if request.method == "GET" and path == f"{tenant}/discovery/v2.0/keys":
            reply = Reply(200, self.jwks())
            self.key_fetched_at = time.monotonic()
            return reply
        if request.method == "POST" and path == "/admin/token":
            try:
                body = request.json() if request.body else {}
                token = self.token(**{k: v for k, v in body.items() if k != "kid"}, kid=body.get("kid"))
            except (ValueError, TypeError, KeyError) as exc:
                return Reply(400, {"error": str(exc)})
            return Reply(200, {"access_token": token, "token_type": "Bearer"})
        if request.method == "GET" and path == "/admin/requests":
            with self._lock:
                return Reply(200, dict(self.requests))
        return Reply(404, {"error": f"no such endpoint: {request.method} {request.path}"})

    def _metadata(self, issuer: str, version: str) -> dict[str, Any]:
        prefix = f"{self.base_url}/{self.tenant_id}"
        authorize = f"{prefix}/oauth2/{version + '/' if version else ''}authorize"
        return {
            "issuer": issuer,
            "jwks_uri": f"{prefix}/discovery/v2.0/keys",
            "authorization_endpoint": authorize,
            "token_endpoint": authorize.replace("authorize", "token"),
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def key_fetches(self) -> int:
        with self._lock:
            return self.requests[f"/{self.tenant_id}/discovery/v2.0/keys"]

    def env(self) -> dict[str, str]:
        """The app settings that point HTTP_AUTH=entra at this signer."""
        return {
            "HTTP_AUTH": "entra",
            "HTTP_AUTH_TENANT_ID": self.tenant_id,
            "HTTP_AUTH_AUDIENCE": f"{self.app_id_uri},{self.client_id}",
            "HTTP_AUTH_AUTHORITY_HOST": self.base_url,
        }


def main(argv: list[str] | None = None) -> None:
    parser = base_arg_parser("Local Entra ID token signer (metadata, keys, RS256 tokens)")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT)
    args = parser.parse_args(argv)
    signer = EntraSigner(host=args.host, port=args.port, tenant_id=args.tenant_id)
    serve_until_signalled(signer)


if __name__ == "__main__":
    main()
