"""Access tokens shared by the two emulators: JWT-shaped (header.payload.signature, base64url) and
signed with HMAC-SHA256 under a key both emulators know, so the Defender emulator can tell a token the
identity emulator issued from a forged or garbled one.

No I/O. Real Entra tokens are RS256; the claims carried here are the ones Defender looks at
(``aud``, ``roles``, ``oid``/``appid``, ``tid``, ``exp``; defender-api.md §1.2, §8).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

# Both emulators default to this key so that separately started processes interoperate.
DEFAULT_SIGNING_KEY = b"localdev-emulators-shared-signing-key"
DEFAULT_TENANT_ID = "72f988bf-0000-4000-8000-00000000a11c"
DEFAULT_SYSTEM_CLIENT_ID = "5b1e0b7c-0000-4000-8000-0000000051a1"
DEFAULT_ROLES = ("Ti.ReadWrite.All",)
_HEADER = {"alg": "HS256", "typ": "JWT"}


class InvalidToken(Exception):
    """The token is garbled, forged, or expired; the message says which (never the token itself)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: str, key: bytes) -> str:
    return _b64(hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest())


def encode(claims: Mapping[str, Any], key: bytes) -> str:
    """Sign any claims (tests use this to build odd tokens: wrong audience, no roles, expired)."""
    signing_input = _b64(json.dumps(_HEADER, separators=(",", ":")).encode()) + "."
    signing_input += _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    return signing_input + "." + _sign(signing_input, key)


def mint(
    *,
    key: bytes = DEFAULT_SIGNING_KEY,
    resource: str,
    client_id: str = DEFAULT_SYSTEM_CLIENT_ID,
    object_id: str | None = None,
    tenant_id: str = DEFAULT_TENANT_ID,
    roles: Sequence[str] = DEFAULT_ROLES,
    lifetime: float = 3600,
    now: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """Issue an app-only access token for ``resource``; returns ``(token, claims)``.

    ``jti`` is random so that every issued token differs, which lets tests see a refresh happen.
    A negative ``lifetime`` gives an already expired token.
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": int(issued + lifetime),
        "appid": client_id,
        "oid": object_id or client_id,
        "sub": object_id or client_id,
        "tid": tenant_id,
        "idtyp": "app",
        "roles": list(roles),
        "jti": uuid.uuid4().hex,
        "ver": "1.0",
    }
    return encode(claims, key), claims


def decode(token: str, key: bytes, *, now: float | None = None) -> dict[str, Any]:
    """Check structure, signature and expiry; return the claims or raise :class:`InvalidToken`."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidToken("the token is not a JWT (expected header.payload.signature)")
    if not hmac.compare_digest(_sign(parts[0] + "." + parts[1], key), parts[2]):
        raise InvalidToken("the token signature is invalid")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("the token cannot be decoded") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise InvalidToken("the token header or payload is malformed")
    exp = claims.get("exp")
    if not isinstance(exp, int):
        raise InvalidToken("the token has no expiry")
    if exp <= (time.time() if now is None else now):
        raise InvalidToken("the token is expired")
    return claims
