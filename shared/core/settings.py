"""Settings: the contract's app settings, parsed once, checked all at once.

Core module: no I/O. `Settings.from_env(os.environ)` is called once per process by the entry points and
never changes; an input's blob metadata or query parameters are `core.options.InputOptions`, beside it.
Every bad value is reported in one `SettingsError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from shared.core.model import (
    DEFAULT_MAX_GZIP_BYTES,
    DEFAULT_MAX_GZIP_RATIO,
    DEFAULT_MAX_VALUE_LENGTH,
    Action,
    IndicatorType,
    ReadLimits,
    Severity,
)
from shared.core.text import quote
from shared.core.vocab import legacy_action, secure_url, yes_no

DEFAULT_API_URL = "https://api.securitycenter.microsoft.com"
DEFAULT_SCOPE = "https://api.securitycenter.microsoft.com/.default"

# Longest expiry a setting or file override may ask for (about 100 years): `now + days` must stay a date
# (datetime ends at year 9999), and an indicator that should never expire says 0.
MAX_EXPIRATION_DAYS = 36500


class SettingsError(ValueError):
    """One or more settings are invalid; the message lists every one of them."""


def parse_bool(text: str) -> bool:
    """A yes/no word (`core.vocab.yes_no`); an empty value is false. Raises ValueError otherwise."""
    value = yes_no(text)
    if value is not None:
        return value
    if not text.strip():
        return False
    raise ValueError(f"expected true or false, got {quote(text)}")


def enum_ci(enum: type[StrEnum], text: str) -> Any:
    t = text.strip().lower()
    for member in enum:
        if member.value.lower() == t:
            return member
    raise ValueError(f"expected one of {', '.join(m.value for m in enum)}, got {quote(text)}")


def parse_action(text: str) -> tuple[Action, str | None]:
    """A current action name, or a legacy one mapped as in rows (`core.vocab.LEGACY_ACTIONS`): (action,
    the legacy name as written or None)."""
    legacy = legacy_action(text)
    if legacy is not None:
        return legacy, text.strip()
    return enum_ci(Action, text), None


def parse_expiration_by_type(text: str) -> dict[IndicatorType, int]:
    """`IpAddress=30,Url=90` → {IpAddress: 30, Url: 90}; type names are case-insensitive."""
    out: dict[IndicatorType, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, days = part.partition("=")
        if not sep:
            raise ValueError(f"expected Type=days, got {quote(part)}")
        t = enum_ci(IndicatorType, name)
        out[t] = parse_expiration_days(days)
    return out


def parse_expiration_days(text: str) -> int:
    try:
        d = int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number of days, got {quote(text)}") from None
    if not 0 <= d <= MAX_EXPIRATION_DAYS:
        raise ValueError(f"days must be 0 to {MAX_EXPIRATION_DAYS} (0 = never expire), got {d}")
    return d


def split_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


@dataclass(frozen=True)
class Settings:
    """The contract's settings (CONTRACT.md "Settings") plus a few operational tunables."""

    defender_api_url: str = DEFAULT_API_URL
    defender_token_scope: str = DEFAULT_SCOPE
    azure_client_id: str | None = None
    indicators_container: str = "indicators"
    reports_container: str = "indicator-reports"
    default_action: Action = Action.Audit
    default_severity: Severity = Severity.Medium
    default_expiration_days: int = 90  # 0 = never expire
    expiration_days_by_type: Mapping[IndicatorType, int] = field(default_factory=dict)
    default_title: str = "Imported indicator"
    default_description: str = "Imported from {source}"
    default_rbac_groups: tuple[str, ...] = ()
    batch_size: int = 500
    max_calls_per_minute: int = 30
    list_calls_per_minute: int = 100
    list_calls_per_hour: int = 1500
    batch_delete_calls_per_minute: int = 30
    batch_delete_calls_per_hour: int = 1500
    dry_run: bool = False
    max_http_body_bytes: int = 20 * 1024 * 1024
    max_http_indicators: int = 15000
    max_tenant_indicators: int = 15000
    capacity_reserve: int = 500
    # Age in minutes after which the tenant mirror is refreshed by a full List (0: list at every drain) [mirror].
    tenant_refresh_minutes: float = 60.0
    # Order in which new indicators get the room left (tenant.capacity.Priority); None: the default order.
    capacity_priority: str | None = None
    # True when DEFAULT_ACTION is a legacy name (rows taking it send generateAlert true); else unset.
    generate_alert: bool | None = None
    # Set when DEFAULT_ACTION is a legacy name mapped (`legacy action Alert mapped to Audit
    # (DEFAULT_ACTION)`): rows that take the default carry the note.
    default_action_note: str | None = None
    # (legacy name as written, where it came from) when `default_action` is a legacy name: mapped per type.
    default_action_legacy: tuple[str, str] | None = None
    # Bounds on what one input may cost (CONTRACT.md "Settings" [hostile]).
    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    max_gzip_bytes: int = DEFAULT_MAX_GZIP_BYTES
    max_gzip_ratio: float = DEFAULT_MAX_GZIP_RATIO
    duplicate_index_max_mb: int = 256
    # Operational tunables (not in the contract; documented in the README).
    request_timeout_seconds: float = 180.0  # DEFENDER_REQUEST_TIMEOUT_SECONDS (CONTRACT.md [recall]; 60 before)
    retry_after_max_seconds: float = 120.0
    max_attempts: int = 6

    @property
    def read_limits(self) -> ReadLimits:
        """The readers' bounds (MAX_VALUE_LENGTH, MAX_GZIP_BYTES, MAX_GZIP_RATIO)."""
        return ReadLimits(self.max_value_length, self.max_gzip_bytes, self.max_gzip_ratio)

    def expiration_days_for(self, t: IndicatorType) -> int:
        return self.expiration_days_by_type.get(t, self.default_expiration_days)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build from app settings; unset or empty values take the contract's defaults."""
        errors: list[str] = []
        kw: dict[str, object] = {}

        def get(name: str) -> str | None:
            v = env.get(name)
            return v if v is not None and v.strip() != "" else None

        def take(name: str, attr: str, conv, check=None) -> None:  # type: ignore[no-untyped-def]
            raw = get(name)
            if raw is None:
                return
            try:
                val = conv(raw)
                if check is not None:
                    problem = check(val)
                    if problem:
                        raise ValueError(problem)
                kw[attr] = val
            except ValueError as e:
                errors.append(f"{name}: {e}")

        def positive(v: int) -> str | None:
            return None if v > 0 else "must be greater than 0"

        def non_negative(v: int) -> str | None:
            return None if v >= 0 else "must be 0 or more"

        take("DEFENDER_API_URL", "defender_api_url", lambda s: s.strip().rstrip("/"), _check_url)
        take("DEFENDER_TOKEN_SCOPE", "defender_token_scope", str.strip)
        take("AZURE_CLIENT_ID", "azure_client_id", str.strip)
        take("INDICATORS_CONTAINER", "indicators_container", str.strip)
        take("REPORTS_CONTAINER", "reports_container", str.strip)
        take("DEFAULT_ACTION", "default_action", parse_action)
        take("DEFAULT_SEVERITY", "default_severity", lambda s: enum_ci(Severity, s))
        take("DEFAULT_EXPIRATION_DAYS", "default_expiration_days", parse_expiration_days)
        take("EXPIRATION_DAYS_BY_TYPE", "expiration_days_by_type", parse_expiration_by_type)
        take("DEFAULT_TITLE", "default_title", str)
        take("DEFAULT_DESCRIPTION", "default_description", str)
        take("DEFAULT_RBAC_GROUPS", "default_rbac_groups", split_list)
        take("BATCH_SIZE", "batch_size", int, lambda v: None if 1 <= v <= 500 else "must be 1 to 500")
        take("MAX_CALLS_PER_MINUTE", "max_calls_per_minute", int, positive)
        take("LIST_CALLS_PER_MINUTE", "list_calls_per_minute", int, positive)
        take("LIST_CALLS_PER_HOUR", "list_calls_per_hour", int, positive)
        take("BATCH_DELETE_CALLS_PER_MINUTE", "batch_delete_calls_per_minute", int, positive)
        take("BATCH_DELETE_CALLS_PER_HOUR", "batch_delete_calls_per_hour", int, positive)
        take("DRY_RUN", "dry_run", parse_bool)
        take("MAX_HTTP_BODY_BYTES", "max_http_body_bytes", int, positive)
        take("MAX_HTTP_INDICATORS", "max_http_indicators", int, positive)
        take("MAX_TENANT_INDICATORS", "max_tenant_indicators", int, positive)
        take("CAPACITY_RESERVE", "capacity_reserve", int, non_negative)
        take("TENANT_REFRESH_MINUTES", "tenant_refresh_minutes", float,
             lambda v: None if 0 <= v <= 1440 else "must be 0 to 1440 (a day)")  # fmt: skip
        take("CAPACITY_PRIORITY", "capacity_priority", _capacity_priority)
        take("MAX_VALUE_LENGTH", "max_value_length", int, lambda v: None if v >= 256 else "must be 256 or more")
        take("MAX_GZIP_BYTES", "max_gzip_bytes", int, positive)
        take("MAX_GZIP_RATIO", "max_gzip_ratio", float, lambda v: None if v >= 1 else "must be 1 or more")
        take("DUPLICATE_INDEX_MAX_MB", "duplicate_index_max_mb", int, positive)
        take(
            "DEFENDER_REQUEST_TIMEOUT_SECONDS",
            "request_timeout_seconds",
            float,
            lambda v: None if v > 0 else "must be greater than 0",
        )
        take("DEFENDER_RETRY_AFTER_MAX_SECONDS", "retry_after_max_seconds", float)
        take("DEFENDER_MAX_ATTEMPTS", "max_attempts", int, positive)

        if "default_action" in kw:
            mapped = legacy_default(kw.pop("default_action"), "DEFAULT_ACTION", None)  # type: ignore[arg-type]
            kw.update(
                default_action=mapped.action,
                default_action_note=mapped.note,
                default_action_legacy=mapped.legacy,
                generate_alert=mapped.alert,
            )
        s = cls(**kw)  # type: ignore[arg-type]
        if s.reports_container == s.indicators_container:
            errors.append("REPORTS_CONTAINER: must differ from INDICATORS_CONTAINER (reports would re-trigger imports)")
        if errors:
            raise SettingsError("invalid settings: " + "; ".join(errors))
        return s


class DefaultAction(NamedTuple):
    """A parsed default action: the action, its note and (name as written, origin) when legacy, and the
    generateAlert it brings (True for a legacy name unless one was given; else None: nothing implied)."""

    action: Action
    note: str | None
    legacy: tuple[str, str] | None
    alert: bool | None


def legacy_default(parsed: tuple[Action, str | None], origin: str, given_alert: object) -> DefaultAction:
    """A parsed default action (DEFAULT_ACTION or an input's `action`); a legacy name also brings generateAlert true.

    An explicit `generate_alert` is kept: it still applies to rows with an action of their own. Rows
    that take the legacy default send generateAlert true whatever it says, as a legacy row action
    does, and as `Audit` always does (defender-api.md §1.5).
    """
    action, legacy = parsed
    if legacy is None:
        return DefaultAction(action, None, None, None)
    note = f"legacy action {legacy} mapped to {action.value} ({origin})"
    return DefaultAction(action, note, (legacy, origin), True if given_alert is None else None)


# The criteria CAPACITY_PRIORITY may name (`tenant.capacity.Priority` ranks by them).
PRIORITY_FIELDS = ("severity", "action", "expiry")
DEFAULT_PRIORITY = "severity,action,expiry"


def parse_priority_fields(text: str | None) -> tuple[str, ...]:
    """`severity,action,expiry` in any order, any subset, each once; raises ValueError otherwise."""
    parts = tuple(p.strip().lower() for p in (text or DEFAULT_PRIORITY).split(",") if p.strip())
    bad = [p for p in parts if p not in PRIORITY_FIELDS]
    if bad or len(set(parts)) != len(parts):
        fields = ", ".join(PRIORITY_FIELDS)
        raise ValueError(f"capacity priority must list some of {fields} once each, got {quote(text or '')}")
    return parts


def _capacity_priority(text: str) -> str:
    """CAPACITY_PRIORITY checked and kept as text (`tenant.capacity.Priority.parse` reads it)."""
    return ",".join(parse_priority_fields(text))


def _check_url(url: str) -> str | None:
    if not secure_url(url):
        return "must be an https:// URL (plain http only on loopback)"
    return None
