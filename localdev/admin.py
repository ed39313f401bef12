"""Clients for the emulators' admin endpoints (standard library ``urllib``), so tests and scripts drive an
emulator the same way whether it runs in-process or as ``python -m localdev...`` in another process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode


class AdminError(RuntimeError):
    """An admin call answered with an error status (a bad fault kind, an unknown config key...)."""


class AdminClient:
    def __init__(self, base_url: str, *, timeout: float = 10) -> None:
        if not base_url.startswith("http://"):
            raise ValueError(f"emulator admin URLs are plain http on loopback, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        """One admin request; returns the parsed JSON answer (``None`` for an empty one)."""
        url = self.base_url + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http only
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - loopback admin URL
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AdminError(f"{method} {path} -> {exc.code}: {exc.read().decode(errors='replace')}") from exc
        return json.loads(raw) if raw else None


class DefenderAdmin(AdminClient):
    """Admin API of :mod:`localdev.defender_emulator`."""

    def reset(self, *, keep_config: bool = False) -> None:
        self.call("POST", "/admin/reset", {"keep_config": keep_config})

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change options at runtime (see ``DefenderOptions``); returns the effective configuration."""
        return self.call("POST", "/admin/config", options)

    def config(self) -> dict[str, Any]:
        return self.call("GET", "/admin/config")

    def add_fault(self, kind: str, count: int = 1, **params: Any) -> dict[str, Any]:
        """Queue a fault for the next ``count`` matching calls (params: path, method, status, retry_after,
        seconds, then, process, drop, indicator)."""
        return self.call("POST", "/admin/faults", {"kind": kind, "count": count, **params})

    def faults(self) -> list[dict[str, Any]]:
        return self.call("GET", "/admin/faults")["faults"]

    def clear_faults(self) -> None:
        self.call("DELETE", "/admin/faults")

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every non-admin call so far, oldest first (optionally only those to ``path``)."""
        return self.call("GET", "/admin/calls", query={"path": path})["calls"]

    def indicators(self) -> list[dict[str, Any]]:
        """The raw store (expired records already purged), sorted by id."""
        return self.call("GET", "/admin/indicators")["value"]

    def seed(self, *records: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Store records directly, as if someone else (an analyst, by default) had created them."""
        return self.call("POST", "/admin/indicators", {"Indicators": list(records)})["value"]

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the emulator's clock forward (indicator expiry and rate-limit windows), no sleeping."""
        return self.call("POST", "/admin/clock", {"advance": seconds})


class IdentityAdmin(AdminClient):
    """Admin API of :mod:`localdev.identity_emulator`."""

    def reset(self, *, keep_config: bool = False) -> None:
        self.call("POST", "/admin/reset", {"keep_config": keep_config})

    def configure(self, **options: Any) -> dict[str, Any]:
        """roles, roles_by_client, lifetime, delay, tenant_id, system_client_id, identity_header, client_ids."""
        return self.call("POST", "/admin/config", options)

    def fail_next(self, count: int = 1, status: int = 500, message: str | None = None) -> None:
        self.call("POST", "/admin/faults", {"count": count, "status": status, "message": message})

    def requests(self) -> dict[str, Any]:
        """``{"count": n, "resources": [...], "requests": [{resource, client_id, status, ...}]}``."""
        return self.call("GET", "/admin/requests")
