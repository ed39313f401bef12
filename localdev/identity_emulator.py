"""Managed identity emulator: the App Service / Azure Functions identity endpoint that azure-identity's
``ManagedIdentityCredential`` (and ``DefaultAzureCredential``) use when ``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER`` are set.

Request (local-tooling.md §5): ``GET /msi/token?api-version=2019-08-01&resource=<resource>[&client_id=..]``
with header ``X-IDENTITY-HEADER``. Answer: ``{"access_token", "expires_on" (epoch seconds as a string),
"resource", "token_type": "Bearer", "client_id"}``. Errors use App Service's ``{"statusCode", "message"}``
shape, which msal folds into the credential's error text.

Tokens come from :mod:`localdev.tokens` and are signed with the key the Defender emulator checks.

Run: ``python -m localdev.identity_emulator --port 0 [--identity-header H] [--roles a,b] [--lifetime S]``.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from localdev._server import HttpEmulator, Reply, Request, base_arg_parser, serve_until_signalled
from localdev.admin import IdentityAdmin
from localdev.tokens import DEFAULT_ROLES, DEFAULT_SIGNING_KEY, DEFAULT_SYSTEM_CLIENT_ID, DEFAULT_TENANT_ID, mint

TOKEN_PATH = "/msi/token"
API_VERSION = "2019-08-01"
DEFAULT_IDENTITY_HEADER = "localdev-identity-header"


@dataclass
class IdentityOptions:
    """Everything an admin ``POST /admin/config`` may change (``signing_key`` only at construction)."""

    identity_header: str = DEFAULT_IDENTITY_HEADER
    roles: list[str] = field(default_factory=lambda: list(DEFAULT_ROLES))
    roles_by_client: dict[str, list[str]] = field(default_factory=dict)  # client/object id -> roles
    lifetime: float = 3600.0  # seconds; real MI tokens live about an hour (defender-api.md §1.2)
    delay: float = 0.0  # seconds before every token answer
    tenant_id: str = DEFAULT_TENANT_ID
    system_client_id: str = DEFAULT_SYSTEM_CLIENT_ID  # identity of the system-assigned MI
    client_ids: list[str] | None = None  # user-assigned identities that exist; None = any
    omit_expires_on: bool = False  # a misbehaving endpoint: token answers without `expires_on`


def _error(status: int, message: str) -> Reply:
    # App Service's token endpoint answers errors as {"statusCode", "message", "correlationId"}.
    return Reply(status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())})


class IdentityEmulator(HttpEmulator):
    """``IdentityEmulator(**options).start() -> base_url``; ``.endpoint`` is the IDENTITY_ENDPOINT value."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, signing_key: bytes = DEFAULT_SIGNING_KEY, **options: Any
    ) -> None:
        super().__init__(host=host, port=port)
        self.signing_key = signing_key
        self._initial = IdentityOptions(**options)
        self.options = copy.deepcopy(self._initial)
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._faults: list[dict[str, Any]] = []

    @property
    def endpoint(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def identity_header(self) -> str:
        return self.options.identity_header

    @property
    def admin(self) -> IdentityAdmin:
        return IdentityAdmin(self.base_url)

    def dispatch(self, request: Request) -> Reply:
        if request.path.startswith("/admin/"):
            return self._admin(request)
        if request.path.rstrip("/") != TOKEN_PATH:
            return _error(404, f"no such endpoint: {request.path}")
        if request.method != "GET":
            return _error(405, "the token endpoint accepts GET only")
        reply = self._token(request)
        reply.delay = self.options.delay
        return reply

    def _token(self, request: Request) -> Reply:
        q = {k: v[-1] for k, v in request.query.items()}
        entry: dict[str, Any] = {
            "resource": q.get("resource"),
            "client_id": q.get("client_id"),
            "object_id": q.get("object_id"),
            "mi_res_id": q.get("mi_res_id"),
            "monotonic": time.monotonic(),
            "wall": time.time(),
        }
        reply = self._decide(request, q)
        entry["status"] = reply.status
        with self._lock:
            self._log.append(entry)
        return reply

    def _decide(self, request: Request, q: dict[str, str]) -> Reply:
        refused = self._refused(request, q)
        if refused is not None:
            return refused
        client_id = self._client_id(q)
        if isinstance(client_id, Reply):
            return client_id
        opts = self.options
        roles = opts.roles_by_client.get(client_id, opts.roles)
        token, claims = mint(
            key=self.signing_key,
            resource=q["resource"],
            client_id=client_id,
            tenant_id=opts.tenant_id,
            roles=roles,
            lifetime=opts.lifetime,
        )
        answer = {
            "access_token": token,
            "expires_on": str(claims["exp"]),
            "resource": q["resource"],
            "token_type": "Bearer",
            "client_id": client_id,
        }
        if opts.omit_expires_on:
            del answer["expires_on"]
        return Reply(200, answer)

    def _refused(self, request: Request, q: dict[str, str]) -> Reply | None:
        """The protocol's refusals, in the order the host checks them (secret header, an injected fault, the
        api-version, the resource), or None."""
        secret = request.headers.get("X-IDENTITY-HEADER")
        if secret is None:
            return _error(400, "The X-IDENTITY-HEADER header is missing.")
        if secret != self.options.identity_header:
            return _error(401, "The X-IDENTITY-HEADER header value is not valid.")
        fault = self._next_fault()
        if fault is not None:
            return _error(fault["status"], fault.get("message") or "Injected failure.")
        if q.get("api-version") != API_VERSION:
            return _error(400, f"api-version must be {API_VERSION}.")
        if not q.get("resource"):
            return _error(400, "The resource parameter is required.")
        return None

    def _next_fault(self) -> dict[str, Any] | None:
        with self._lock:
            fault = self._faults[0] if self._faults else None
            if fault is not None:
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self._faults.pop(0)
        return fault

    def _client_id(self, q: dict[str, str]) -> str | Reply:
        """The identity asked for (client_id, object_id or mi_res_id; none: the system-assigned one)."""
        opts = self.options
        chosen = [k for k in ("client_id", "object_id", "mi_res_id") if q.get(k)]
        if len(chosen) > 1:
            return _error(400, "Only one of client_id, object_id, mi_res_id may be given.")
        if not chosen:
            return opts.system_client_id
        asked = q[chosen[0]]
        if chosen[0] == "mi_res_id":  # a stable id derived from the ARM resource id
            asked = str(uuid.uuid5(uuid.NAMESPACE_URL, asked.lower()))
        if opts.client_ids is not None and asked not in opts.client_ids:
            return _error(400, "Unable to load the requested managed identity.")
        return asked

    # -- admin ------------------------------------------------------------------------------------------
    def _admin(self, request: Request) -> Reply:
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return _error(400, "admin bodies are JSON")
        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/admin/reset"):
            self.reset(keep_config=bool(body.get("keep_config")))
            return Reply(200, {"reset": True})
        if route == ("GET", "/admin/config"):
            return Reply(200, dataclasses.asdict(self.options))
        if route == ("POST", "/admin/config"):
            try:
                self.configure(**body)
            except (TypeError, ValueError) as exc:
                return _error(400, str(exc))
            return Reply(200, dataclasses.asdict(self.options))
        if route == ("POST", "/admin/faults"):
            count, status = int(body.get("count", 1)), int(body.get("status", 500))
            if count < 1 or not 400 <= status <= 599:
                return _error(400, "count must be >= 1 and status a 4xx/5xx code")
            with self._lock:
                self._faults.append({"count": count, "status": status, "message": body.get("message")})
            return Reply(200, {"faults": copy.deepcopy(self._faults)})
        if route == ("GET", "/admin/requests"):
            with self._lock:
                log = copy.deepcopy(self._log)
            return Reply(200, {"count": len(log), "resources": [e["resource"] for e in log], "requests": log})
        return _error(404, f"no admin route {request.method} {request.path}")

    def configure(self, **changes: Any) -> IdentityOptions:
        known = {f.name for f in dataclasses.fields(IdentityOptions)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown identity option(s): {', '.join(sorted(unknown))}")
        with self._lock:
            self.options = dataclasses.replace(self.options, **changes)
        return self.options

    def reset(self, *, keep_config: bool = False) -> None:
        """Forget the request log and pending faults; restore the constructor's options unless told not to."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
            if not keep_config:
                self.options = copy.deepcopy(self._initial)


def main(argv: list[str] | None = None) -> None:
    parser = base_arg_parser("Local App Service managed identity endpoint")
    parser.add_argument("--identity-header", default=DEFAULT_IDENTITY_HEADER, help="expected X-IDENTITY-HEADER")
    parser.add_argument("--roles", default=",".join(DEFAULT_ROLES), help="comma-separated roles claim")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="token lifetime in seconds")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--system-client-id", default=DEFAULT_SYSTEM_CLIENT_ID)
    args = parser.parse_args(argv)
    emulator = IdentityEmulator(
        host=args.host,
        port=args.port,
        signing_key=args.signing_key.encode() if args.signing_key else DEFAULT_SIGNING_KEY,
        identity_header=args.identity_header,
        roles=[r for r in args.roles.split(",") if r],
        lifetime=args.lifetime,
        tenant_id=args.tenant_id,
        system_client_id=args.system_client_id,
    )
    serve_until_signalled(emulator)


if __name__ == "__main__":
    main()
