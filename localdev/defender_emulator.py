"""Defender for Endpoint indicators API emulator, faithful to the documented API (defender-api.md), not
to any one client: ``POST /api/indicators/import``, ``GET /api/indicators``, ``DELETE /api/indicators/{id}``,
``POST /api/indicators/BatchDelete``, with bearer-token checks, per-caller rate limits, an in-memory
tenant store with a cap and expiry, and an admin API for configuration, faults and inspection.

Where the docs are silent (UNCONFIRMED in defender-api.md) the behaviour is an option, so tests can pin a
client against each plausible answer. Options (constructor keywords, ``POST /admin/config``, CLI flags):
see :class:`DefenderOptions`.

Admin API (no token; loopback only): ``POST /admin/reset`` ``{"keep_config": false}``;
``GET|POST /admin/config``; ``POST /admin/faults`` ``{"kind", "count", "path", "method", ...}``,
``GET|DELETE /admin/faults``; ``GET /admin/calls[?path=]``; ``GET|POST|DELETE /admin/indicators``
(dump / seed ``{"Indicators": [...]}`` / clear); ``GET|POST /admin/clock`` ``{"advance": seconds}``.
Fault kinds: ``status`` (status, retry_after), ``throttle`` (retry_after seconds or text,
retry_after_date), ``reset``, ``hang`` (seconds, then=close|respond), ``malformed_json``,
``drop_results`` (drop=N|"all"), ``extra_result`` (indicator); ``process`` runs the real call first.

Run: ``python -m localdev.defender_emulator --port 0 [--time-scale 60] [...]``; prints
``listening on http://127.0.0.1:PORT`` and serves until killed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

from localdev import defender_odata as odata
from localdev import defender_rules as rules
from localdev._server import HttpEmulator, Reply, Request, base_arg_parser, serve_until_signalled
from localdev.admin import DefenderAdmin
from localdev.ratelimit import DEFAULT_LIMITS, SlidingWindows
from localdev.tokens import DEFAULT_SIGNING_KEY, InvalidToken, decode

# WindowsDefenderATP identifier URIs (defender-api.md §1.2, §7); compared without a trailing slash.
DEFAULT_AUDIENCES = (
    "https://api.securitycenter.microsoft.com",
    "https://api-us.securitycenter.microsoft.com",
    "https://api-eu.securitycenter.microsoft.com",
    "https://api-uk.securitycenter.microsoft.com",
    "https://api-gcc.securitycenter.microsoft.us",
    "https://api-gov.securitycenter.microsoft.us",
    "https://securitycenter.onmicrosoft.com/windowsatpservice",
)
WRITE_ROLES: tuple[str, ...] = ("Ti.ReadWrite.All", "Ti.ReadWrite")  # §1.3; 403 text quoted in §8.2
READ_ROLES: tuple[str, ...] = ("Ti.ReadWrite.All", "Ti.ReadWrite", "Ti.Read.All")
ALL_ROLES = frozenset({"Ti.ReadWrite.All", "Ti.Read.All"})  # roles that see every indicator (List page)
NEVER_UPDATED = ("application", "version", "certificateInfo")  # applied on create only (§1.5, §3.2)
_CHOICES = {
    "upsert_key": ("type_value", "type_value_action"),
    "value_error_mode": ("item", "batch"),
    "cap_mode": ("item", "batch"),
    "result_order": ("request", "reversed", "shuffled"),
    "past_expiration": ("reject", "accept"),
}
FAULT_KINDS = (
    "status",
    "throttle",
    "reset",
    "hang",
    "malformed_json",
    "drop_results",
    "extra_result",
    "misreport_results",
)
_STATUS_CODES = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


@dataclass
class DefenderOptions:
    """Behaviour switches; every one may be changed at runtime through ``POST /admin/config``."""

    upsert_key: str = "type_value_action"  # §3.2: the maintainer's answer suggests action is part of the key
    value_error_mode: str = "item"  # "item": isFailed per item; "batch": whole call 400 naming the value
    # With value_error_mode "batch": the 400's code for one bad row (None: the value's own code). A code no
    # document lists (`InvalidIndicatorProperties`) is how a real tenant may answer one odd row.
    batch_error_code: str | None = None
    cap_mode: str = "item"  # past the tenant cap: "item" fails the items, "batch" fails the call (400)
    tenant_cap: int = 15_000  # active indicators per tenant (§2)
    result_order: str = "request"  # order of import results: "request" | "reversed" | "shuffled"
    seed: int = 0  # seeds "shuffled"
    limits: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_LIMITS))
    time_scale: float = 1.0  # 60 makes a rate-limit "minute" last one real second
    retry_after: int | None = None  # fixed Retry-After for 429s instead of the computed wait
    count_rejected_calls: bool = False  # whether a 429'd call also occupies the window
    accepted_audiences: list[str] = field(default_factory=lambda: list(DEFAULT_AUDIENCES))
    accept_legacy_actions: bool = False  # Alert/AlertAndBlock were retired in January 2022 (§1.5)
    past_expiration: str = "reject"  # "accept": stored, then expires at once
    max_batch: int = rules.MAX_BATCH
    page_size: int | None = None  # list page size when $top is absent; None = everything
    next_link: bool = False  # add @odata.nextLink when a page is cut short (UNCONFIRMED, §5)
    # A server-side maximum page size, applied below `$top` too (None: `$top` is honoured in full). With
    # `next_link` off, a capped page ends without a link: only a client that pages on until an empty page
    # sees the whole tenant (fidelity-review 1.27).
    max_page: int | None = None
    display_names: dict[str, str] = field(default_factory=dict)  # appid -> createdByDisplayName
    import_seconds: float = 0.0  # how long an import call takes to answer (real seconds; a slow Defender)

    def validate(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.time_scale <= 0 or self.tenant_cap < 0 or not 1 <= self.max_batch:
            raise ValueError("time_scale must be > 0, tenant_cap >= 0, max_batch >= 1")
        if self.max_page is not None and self.max_page < 1:
            raise ValueError("max_page must be at least 1 (or null)")
        for group, windows in self.limits.items():
            if group not in DEFAULT_LIMITS or not all(len(w) == 2 for w in windows):
                raise ValueError(f"limits: unknown group {group!r} or a window that is not [calls, seconds]")


def _misreport(values: list[dict[str, Any]], how: str, items: int) -> None:
    """A stand-in that stored every indicator but answers wrongly for the first `items` results: `rewrite`
    names them in another form (`.` written `[.]`), `duplicate` repeats the last result in their place."""
    for i in range(min(items, len(values))):
        if how == "duplicate" and len(values) > 1:
            values[i] = dict(values[-1])
        else:
            values[i]["indicator"] = str(values[i]["indicator"]).replace(".", "[.]") + "/"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    # Defender's error body (common-errors doc, defender-api.md §3.3); target is a per-request id.
    body = {"error": {"code": code, "message": message, "target": str(uuid.uuid4())}}
    return Reply(status, body, headers=headers or {})


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# An API route's handler: (request, the token's claims, the call-log entry) → the answer.
Handler = Callable[[Request, dict[str, Any], dict[str, Any]], Reply]


class DefenderEmulator(HttpEmulator):
    """``DefenderEmulator(**options).start() -> base_url``, ``.stop()``, context manager; ``.admin`` is a
    :class:`~localdev.admin.DefenderAdmin` for this instance."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, signing_key: bytes = DEFAULT_SIGNING_KEY, **options: Any
    ) -> None:
        super().__init__(host=host, port=port)
        self.signing_key = signing_key
        if "limits" in options:  # partial: groups not given keep their documented limits
            options["limits"] = {**copy.deepcopy(DEFAULT_LIMITS), **options["limits"]}
        self._initial = DefenderOptions(**options)
        self._initial.validate()
        self._lock = threading.RLock()
        self._reset_state(copy.deepcopy(self._initial))

    def _reset_state(self, options: DefenderOptions) -> None:
        self.options = options
        self._windows = SlidingWindows(options.limits)
        self._rng = random.Random(options.seed)
        self._records: dict[str, dict[str, Any]] = {}
        self._index: dict[tuple[str, ...], str] = {}
        self._expiry: dict[str, float] = {}
        self._next_id = 1
        self._faults: list[dict[str, Any]] = []
        self._calls: list[dict[str, Any]] = []
        self._clock_offset = 0.0

    @property
    def admin(self) -> DefenderAdmin:
        return DefenderAdmin(self.base_url)

    # -- clock: real time plus an offset that admin calls can advance ---------------------------------------
    def now(self) -> float:
        """Emulated wall time (epoch seconds): indicator timestamps and expiry."""
        return time.time() + self._clock_offset

    def _mono(self) -> float:
        return time.monotonic() + self._clock_offset

    # -- dispatch -----------------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Reply:
        if request.path.startswith("/admin/"):
            with self._lock:
                return self._admin(request)
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": {k: v[-1] for k, v in request.query.items()},
            "monotonic": time.monotonic(),
            "wall": time.time(),
            "items": None,
            "oid": None,
            "fault": None,
            "code": None,
        }
        with self._lock:
            fault = self._take_fault(request)
            if fault is None or fault["process"]:
                reply = self._api(request, entry)
            else:
                reply = Reply(200)
            if fault is not None:
                reply = self._apply_fault(fault, reply)
                entry["fault"] = fault["kind"]
            entry["status"] = reply.status if reply.then == "respond" else 0
            if reply.then == "respond" and isinstance(reply.body, dict) and "error" in reply.body:
                entry["code"] = reply.body["error"].get("code")
            entry["seq"] = len(self._calls) + 1
            self._calls.append(entry)
            if self.options.import_seconds and request.path.rstrip("/").lower() == "/api/indicators/import":
                reply.delay = max(reply.delay or 0.0, self.options.import_seconds)
        return reply

    def _api(self, request: Request, entry: dict[str, Any]) -> Reply:
        route = self._route(request)
        if isinstance(route, Reply):
            return route
        group, roles, handler = route
        claims, denied = self._authorise(request, roles)
        entry["oid"] = claims.get("oid")  # the caller's identity, never the token
        if denied is not None:
            return denied
        refused = self._throttled(group, claims) or self._unsupported_media(request)
        if refused is not None:
            return refused
        self._purge()
        try:
            return handler(request, claims, entry)
        except rules.RequestError as exc:
            return _error(exc.status, exc.code, exc.message)
        except odata.ODataError as exc:
            return _error(400, "ODataError", str(exc))

    def _route(self, request: Request) -> tuple[str, tuple[str, ...], Handler] | Reply:
        """(rate-limit group, roles, handler) of an API request, or its 404/405/501."""
        path = request.path.rstrip("/").lower()  # ASP.NET routes ignore case
        method = request.method
        routes: dict[str, tuple[str, tuple[str, ...], Handler]] = {
            "/api/indicators/import": ("import", WRITE_ROLES, self._import),
            "/api/indicators/batchdelete": ("batch_delete", WRITE_ROLES, self._batch_delete),
            "/api/indicators": ("list", READ_ROLES, self._list),
        }
        found = routes.get(path)
        if found is None and path.startswith("/api/indicators/") and path.count("/") == 3:
            found = ("delete", WRITE_ROLES, self._delete)
        if found is None:
            return _error(404, "ResourceNotFound", f"No resource at {request.path}")
        if found[0] == "list" and method == "POST":
            return _error(501, "NotImplemented", "Single-indicator submit is not emulated; use import")
        wanted = {"import": "POST", "batch_delete": "POST", "list": "GET", "delete": "DELETE"}[found[0]]
        if method != wanted:
            return _error(405, "MethodNotAllowed", f"{method} is not allowed on {request.path}")
        return found

    def _throttled(self, group: str, claims: dict[str, Any]) -> Reply | None:
        """A 429 with Retry-After when the caller's window for `group` is full (per application + tenant, §2)."""
        wait = self._windows.acquire(
            group,
            f"{claims.get('tid')}/{claims.get('appid')}",
            self._mono(),
            time_scale=self.options.time_scale,
            count_rejected=self.options.count_rejected_calls,
        )
        if wait is None or wait <= 0:
            return None
        retry = self.options.retry_after if self.options.retry_after is not None else max(1, math.ceil(wait))
        return _error(
            429,
            "TooManyRequests",
            "API calls quota exceeded! Retry after the time given in the Retry-After header.",
            {"Retry-After": str(retry)},
        )

    @staticmethod
    def _unsupported_media(request: Request) -> Reply | None:
        if request.method != "POST":
            return None
        ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":  # §1.2: Content-Type application/json is required
            return _error(415, "UnsupportedMediaType", f"Content-Type must be application/json, not {ctype!r}")
        return None

    def _authorise(self, request: Request, roles: tuple[str, ...]) -> tuple[dict[str, Any], Reply | None]:
        header = request.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return {}, _error(401, "Unauthorized", "Authorization header with a Bearer token is required")
        try:
            claims = decode(token.strip(), self.signing_key)
        except InvalidToken as exc:
            return {}, _error(401, "Unauthorized", f"Unauthorized: {exc}")
        audience = str(claims.get("aud", "")).rstrip("/")
        if audience not in {a.rstrip("/") for a in self.options.accepted_audiences}:
            # A token for another resource is a 403 even on a valid signature (defender-api.md §8.1).
            msg = f"The token audience '{claims.get('aud')}' is not valid for this API"
            return claims, _error(403, "Forbidden", msg)
        held = claims.get("roles") or []
        if not any(role in held for role in roles):
            msg = f"Missing application roles. API required roles: {', '.join(roles)}"  # quoted in §8.2
            return claims, _error(403, "Forbidden", msg)
        return claims, None

    # -- store -----------------------------------------------------------------------------------------
    def _purge(self) -> None:
        """Expired indicators are deleted (to the second, §1.5); done lazily on every access."""
        now = self.now()
        for rid in [rid for rid, exp in self._expiry.items() if exp <= now]:
            self._remove(rid)

    def _remove(self, rid: str) -> None:
        record = self._records.pop(rid)
        self._expiry.pop(rid, None)
        key = rules.upsert_key(record, self.options.upsert_key)
        if self._index.get(key) == rid:
            del self._index[key]

    def _reindex(self) -> None:
        self._index = {rules.upsert_key(r, self.options.upsert_key): rid for rid, r in self._records.items()}

    def _put(self, record: dict[str, Any]) -> None:
        rid = record["id"]
        self._records[rid] = record
        self._index[rules.upsert_key(record, self.options.upsert_key)] = rid
        self._expiry.pop(rid, None)
        if record.get("expirationTime"):
            self._expiry[rid] = rules.parse_time(record["expirationTime"]).timestamp()

    def _new_id(self) -> str:
        while str(self._next_id) in self._records:
            self._next_id += 1
        self._next_id += 1
        return str(self._next_id - 1)

    def _visible(self, claims: dict[str, Any]) -> list[dict[str, Any]]:
        """With only Ti.ReadWrite an app sees just the indicators it created (List page, §1.3)."""
        records = sorted(self._records.values(), key=lambda r: int(r["id"]) if r["id"].isdigit() else 0)
        if ALL_ROLES & set(claims.get("roles") or []):
            return records
        return [r for r in records if r.get("createdBy") == claims.get("appid")]

    def _upsert(self, item: dict[str, Any], claims: dict[str, Any]) -> str:
        now = _iso(self.now())
        who = claims.get("appid") or claims.get("oid")
        rid = self._index.get(rules.upsert_key(item, self.options.upsert_key))
        if rid is not None:
            record = self._records[rid]
            old_key = rules.upsert_key(record, self.options.upsert_key)
            updates = {k: v for k, v in item.items() if not (k in NEVER_UPDATED and record.get(k) is not None)}
            record.update(updates)
            record.update(lastUpdateTime=now, lastUpdatedBy=who)
            if old_key != rules.upsert_key(record, self.options.upsert_key):
                self._index.pop(old_key, None)
        else:
            record = dict(item)
            record.update(
                id=self._new_id(),
                createdBy=who,
                createdByDisplayName=self.options.display_names.get(str(who), str(who)),
                createdBySource="PublicApi",
                sourceType="AadApp",
                creationTimeDateTimeUtc=now,
                lastUpdateTime=now,
                lastUpdatedBy=who,
            )
        self._put(record)
        return record["id"]

    # -- API handlers ------------------------------------------------------------------------------------
    def _import(self, request: Request, claims: dict[str, Any], entry: dict[str, Any]) -> Reply:
        try:
            body = request.json()
            entry["items"] = len(body["Indicators"]) if isinstance(body.get("Indicators"), list) else None
        except (ValueError, AttributeError):
            pass
        opts = self.options
        items = rules.parse_import_body(request.body, max_items=opts.max_batch)
        problems = self._item_problems(items)
        first = next((p for p in problems if p is not None), None)
        if first is not None and opts.value_error_mode == "batch":
            raise rules.RequestError(400, opts.batch_error_code or first.code, first.message)  # nothing stored
        room = max(0, opts.tenant_cap - len(self._records))  # updates never count as new (§2)
        is_new = self._new_items(items, problems)
        cap_reason = (
            f"Tenant indicator limit reached: {len(self._records)} of {opts.tenant_cap} active indicators in use"
        )
        if opts.cap_mode == "batch" and sum(is_new) > room:
            # UNCONFIRMED (§2): how Defender answers at the cap; "batch" fails the whole call.
            raise rules.RequestError(400, "InvalidInput", f"{cap_reason}; this request would add {sum(is_new)}")
        results = []
        created = 0
        for item, problem, fresh in zip(items, problems, is_new, strict=True):
            result: dict[str, Any] = {"id": None, "indicator": item["indicatorValue"], "isFailed": True}
            if problem is not None:
                result["failureReason"] = problem.message
            elif fresh and created >= room:
                result["failureReason"] = cap_reason
            else:
                created += fresh
                result.update(id=self._upsert(item, claims), isFailed=False, failureReason=None)
            results.append(result)
        return Reply(200, {"value": self._ordered(results)})

    def _item_problems(self, items: list[dict[str, Any]]) -> list[rules.ItemProblem | None]:
        """The first rule each item breaks (None: valid), as Defender checks them."""
        opts = self.options
        now = datetime.fromtimestamp(self.now(), UTC)
        return [
            rules.check_item(
                item,
                now=now,
                accept_legacy_actions=opts.accept_legacy_actions,
                reject_past_expiration=opts.past_expiration == "reject",
            )
            for item in items
        ]

    def _new_items(self, items: list[dict[str, Any]], problems: list[rules.ItemProblem | None]) -> list[bool]:
        """Which valid items would add an indicator (their upsert key neither stored nor earlier in the body)."""
        new_keys: set[tuple[str, ...]] = set()
        is_new: list[bool] = []
        for item, problem in zip(items, problems, strict=True):
            key = rules.upsert_key(item, self.options.upsert_key)
            fresh = problem is None and key not in self._index and key not in new_keys
            if fresh:
                new_keys.add(key)
            is_new.append(fresh)
        return is_new

    def _ordered(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The results in the order the options ask (Defender's order is not documented: results match by value)."""
        if self.options.result_order == "reversed":
            results.reverse()
        elif self.options.result_order == "shuffled":
            self._rng.shuffle(results)
        return results

    def _list(self, request: Request, claims: dict[str, Any], entry: dict[str, Any]) -> Reply:
        terms, top, skip = odata.parse_query(request.query)
        records = [r for r in self._visible(claims) if odata.matches(r, terms)]
        limit = top if top is not None else self.options.page_size
        if self.options.max_page is not None:
            limit = min(limit, self.options.max_page) if limit is not None else self.options.max_page
        page = records[skip : skip + limit] if limit is not None else records[skip:]
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/api/$metadata#Indicators", "value": page}
        if self.options.next_link and limit is not None and skip + limit < len(records):
            query = "&".join(f"{k}={v[-1]}" for k, v in request.query.items() if k not in ("$skip", "$top"))
            query = (query + "&" if query else "") + f"$top={top or limit}&$skip={skip + limit}"
            body["@odata.nextLink"] = f"{self.base_url}/api/indicators?{query}"
        entry["items"] = len(page)
        return Reply(200, copy.deepcopy(body))

    def _delete(self, request: Request, claims: dict[str, Any], entry: dict[str, Any]) -> Reply:
        rid = request.path.rstrip("/").rsplit("/", 1)[1]
        visible = {r["id"] for r in self._visible(claims)}
        entry["items"] = 1
        if rid not in visible:
            return _error(404, "NotFound", f"Indicator {rid} was not found")
        self._remove(rid)
        return Reply(204)

    def _batch_delete(self, request: Request, claims: dict[str, Any], entry: dict[str, Any]) -> Reply:
        ids = rules.parse_batch_delete_body(request.body, max_ids=self.options.max_batch)
        entry["items"] = len(ids)
        visible = {r["id"] for r in self._visible(claims)}
        missing = [i for i in dict.fromkeys(ids) if i not in visible]
        if missing:
            # All or nothing: one unknown id fails the call and deletes nothing (§5, §8.10).
            return _error(404, "NotFound", f"Indicators not found: {', '.join(missing)}")
        for rid in dict.fromkeys(ids):
            self._remove(rid)
        return Reply(204)

    # -- faults ---------------------------------------------------------------------------------------
    def _take_fault(self, request: Request) -> dict[str, Any] | None:
        for fault in self._faults:
            path, method = fault.get("path"), fault.get("method")
            if method and method.upper() != request.method:
                continue
            if path and not (
                request.path.lower() == path.lower()
                or (path.endswith("*") and request.path.lower().startswith(path[:-1].lower()))
            ):
                continue
            fault["count"] -= 1
            if fault["count"] <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _apply_fault(self, fault: dict[str, Any], reply: Reply) -> Reply:
        kind = fault["kind"]
        if kind == "status":
            status = int(fault.get("status", 503))
            headers = self._retry_after_header(fault)
            return _error(status, _STATUS_CODES.get(status, "InternalServerError"), "Injected failure", headers)
        if kind == "throttle":
            headers = self._retry_after_header({"retry_after": 1, **fault})
            return _error(429, "TooManyRequests", "API calls quota exceeded! (injected)", headers)
        if kind == "reset":
            return Reply(then="reset")
        if kind == "hang":
            reply.delay = float(fault.get("seconds", 30))
            reply.then = "respond" if fault.get("then") == "respond" else "close"
            return reply
        if kind == "malformed_json":
            text = reply.payload() or b'{"value": []}'
            return Reply(200, text[: max(1, len(text) // 2)])
        if reply.status != 200 or not isinstance(reply.body, dict) or "value" not in reply.body:
            return reply
        values = reply.body["value"]
        if kind == "drop_results":
            drop = fault.get("drop", 1)
            reply.body["value"] = [] if drop == "all" else values[: max(0, len(values) - int(drop))]
        elif kind == "extra_result":
            extra = {"id": str(10**9 + len(self._calls)), "isFailed": False, "failureReason": None}
            values.append({"indicator": fault.get("indicator", "unexpected.example.org"), **extra})
        elif kind == "misreport_results":
            _misreport(values, fault.get("how", "rewrite"), int(fault.get("items", 1)))
        return reply

    def _retry_after_header(self, fault: dict[str, Any]) -> dict[str, str]:
        if fault.get("retry_after_date") is not None:  # HTTP-date form (RFC 9110 §10.2.3)
            return {"Retry-After": formatdate(time.time() + float(fault["retry_after_date"]), usegmt=True)}
        value = fault.get("retry_after")
        return {} if value is None else {"Retry-After": str(value)}

    # -- admin ----------------------------------------------------------------------------------------
    def _admin(self, request: Request) -> Reply:
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return _error(400, "InvalidRequestBody", "admin bodies are JSON")
        handler = self._admin_routes().get((request.method, request.path.rstrip("/")))
        if handler is None:
            return _error(404, "ResourceNotFound", f"no admin route {request.method} {request.path}")
        try:
            return handler(request, body)
        except (TypeError, ValueError, KeyError) as exc:
            return _error(400, "InvalidInput", f"{type(exc).__name__}: {exc}")

    def _admin_routes(self) -> dict[tuple[str, str], Callable[[Request, dict[str, Any]], Reply]]:
        """The admin endpoint's routes (tests and the demo drive the emulator through them)."""
        return {
            ("POST", "/admin/reset"): lambda _r, body: self._admin_reset(bool(body.get("keep_config"))),
            ("GET", "/admin/config"): lambda _r, _b: Reply(200, dataclasses.asdict(self.options)),
            ("POST", "/admin/config"): lambda _r, body: Reply(200, dataclasses.asdict(self.configure(**body))),
            ("POST", "/admin/faults"): lambda _r, body: Reply(200, {"faults": self.add_fault(**body)}),
            ("GET", "/admin/faults"): lambda _r, _b: Reply(200, {"faults": copy.deepcopy(self._faults)}),
            ("DELETE", "/admin/faults"): lambda _r, _b: self._admin_clear_faults(),
            ("GET", "/admin/calls"): lambda request, _b: self._admin_calls(request),
            ("GET", "/admin/indicators"): lambda _r, _b: self._admin_indicators(),
            ("POST", "/admin/indicators"): lambda _r, body: self._admin_seed(body.get("Indicators") or []),
            ("DELETE", "/admin/indicators"): lambda _r, _b: self._admin_clear_indicators(),
            ("POST", "/admin/clock"): lambda _r, body: self._admin_clock(float(body.get("advance", 0))),
            ("GET", "/admin/clock"): lambda _r, _b: self._admin_clock(0.0),
        }

    def _admin_reset(self, keep_config: bool) -> Reply:
        self.reset(keep_config=keep_config)
        return Reply(200, {"reset": True})

    def _admin_clear_faults(self) -> Reply:
        self._faults.clear()
        return Reply(200, {"faults": []})

    def _admin_calls(self, request: Request) -> Reply:
        path = request.query.get("path", [None])[-1]
        calls = [c for c in self._calls if path is None or c["path"] == path]
        return Reply(200, {"calls": copy.deepcopy(calls)})

    def _admin_indicators(self) -> Reply:
        self._purge()
        return Reply(200, {"value": copy.deepcopy(self._visible({"roles": list(ALL_ROLES)}))})

    def _admin_seed(self, records: list[dict[str, Any]]) -> Reply:
        return Reply(200, {"value": self.seed(records)})

    def _admin_clear_indicators(self) -> Reply:
        self._records.clear()
        self._index.clear()
        self._expiry.clear()
        return Reply(200, {"value": []})

    def _admin_clock(self, advance: float) -> Reply:
        self._clock_offset += advance
        return Reply(200, {"now": _iso(self.now()), "offset": self._clock_offset})

    def reset(self, *, keep_config: bool = False) -> None:
        """Clear store, call log, faults, rate windows and clock offset; restore constructor options
        unless ``keep_config``."""
        with self._lock:
            self._reset_state(self.options if keep_config else copy.deepcopy(self._initial))

    def configure(self, **changes: Any) -> DefenderOptions:
        known = {f.name for f in dataclasses.fields(DefenderOptions)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
        with self._lock:
            if "limits" in changes:  # partial: only the groups given change
                changes["limits"] = {**self.options.limits, **changes["limits"]}
            updated = dataclasses.replace(self.options, **changes)
            updated.validate()
            self.options = updated
            self._windows.limits = {g: [(int(c), float(s)) for c, s in v] for g, v in updated.limits.items()}
            if "seed" in changes:
                self._rng = random.Random(updated.seed)
            if "upsert_key" in changes:
                self._reindex()
        return self.options

    def add_fault(self, *, kind: str, count: int = 1, **params: Any) -> list[dict[str, Any]]:
        """Queue ``kind`` for the next ``count`` calls matching ``path`` (exact, or a prefix ending in
        ``*``) and ``method``. ``process``: run the real call first (default: only for faults that
        alter a real answer, and for a hang that then responds)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if int(count) < 1:
            raise ValueError("count must be >= 1")
        altering = kind in ("malformed_json", "drop_results", "extra_result", "misreport_results")
        params.setdefault("process", altering or (kind == "hang" and params.get("then") == "respond"))
        with self._lock:
            self._faults.append({"kind": kind, "count": int(count), **params})
            return copy.deepcopy(self._faults)

    def seed(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store records as another identity made them (default: an analyst in the portal), unvalidated."""
        stored = []
        with self._lock:
            self._purge()
            for raw in records:
                record = {
                    "action": "Block",
                    "title": "Analyst indicator",
                    "description": "Created in the portal",
                    "createdBy": "analyst@contoso.example",
                    "createdByDisplayName": "Analyst",
                    "createdBySource": "Portal",
                    "sourceType": "User",
                    "creationTimeDateTimeUtc": _iso(self.now()),
                    **raw,
                }
                record.setdefault("lastUpdateTime", record["creationTimeDateTimeUtc"])
                record.setdefault("lastUpdatedBy", record["createdBy"])
                if not record.get("indicatorValue") or not record.get("indicatorType"):
                    raise ValueError("seeded records need indicatorValue and indicatorType")
                existing = self._index.get(rules.upsert_key(record, self.options.upsert_key))
                record["id"] = str(record.get("id") or existing or self._new_id())
                if existing and existing != record["id"]:
                    self._remove(existing)
                if record["id"] in self._records:
                    self._remove(record["id"])  # an id seeded again is that record changed (its old key goes)
                self._put(record)
                stored.append(copy.deepcopy(record))
        return stored


def _parse_limit(text: str) -> tuple[str, list[tuple[int, float]]]:
    """``import=5/60`` or ``list=100/60,1500/3600``."""
    group, _, spec = text.partition("=")
    windows = []
    for part in spec.split(","):
        calls, _, seconds = part.partition("/")
        windows.append((int(calls), float(seconds)))
    return group.strip(), windows


def main(argv: list[str] | None = None) -> None:
    parser = base_arg_parser("Local Defender for Endpoint indicators API")
    parser.add_argument("--time-scale", type=float, default=1.0, help="60: a rate-limit minute lasts 1 s")
    parser.add_argument("--upsert-key", choices=_CHOICES["upsert_key"], default="type_value_action")
    parser.add_argument("--value-error-mode", choices=_CHOICES["value_error_mode"], default="item")
    parser.add_argument("--cap-mode", choices=_CHOICES["cap_mode"], default="item")
    parser.add_argument("--tenant-cap", type=int, default=15_000)
    parser.add_argument("--result-order", choices=_CHOICES["result_order"], default="request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=int, default=None, help="fixed Retry-After for 429s")
    parser.add_argument("--limit", action="append", default=[], metavar="GROUP=CALLS/SECONDS[,...]")
    parser.add_argument("--audience", action="append", default=None, help="accepted token audience (repeat)")
    parser.add_argument("--past-expiration", choices=_CHOICES["past_expiration"], default="reject")
    parser.add_argument("--accept-legacy-actions", action="store_true")
    parser.add_argument("--next-link", action="store_true")
    parser.add_argument("--page-size", type=int, default=None)
    parser.add_argument("--max-page", type=int, default=None, help="server-side page cap, below $top too")
    args = parser.parse_args(argv)
    limits = copy.deepcopy(DEFAULT_LIMITS)
    limits.update(_parse_limit(spec) for spec in args.limit)
    emulator = DefenderEmulator(
        host=args.host,
        port=args.port,
        signing_key=args.signing_key.encode() if args.signing_key else DEFAULT_SIGNING_KEY,
        time_scale=args.time_scale,
        upsert_key=args.upsert_key,
        value_error_mode=args.value_error_mode,
        cap_mode=args.cap_mode,
        tenant_cap=args.tenant_cap,
        result_order=args.result_order,
        seed=args.seed,
        retry_after=args.retry_after,
        limits=limits,
        accepted_audiences=args.audience or list(DEFAULT_AUDIENCES),
        past_expiration=args.past_expiration,
        accept_legacy_actions=args.accept_legacy_actions,
        next_link=args.next_link,
        page_size=args.page_size,
        max_page=args.max_page,
    )
    serve_until_signalled(emulator)


if __name__ == "__main__":
    main()
