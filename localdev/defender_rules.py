"""The Defender indicator rules the emulator enforces, as pure functions (no I/O, no state).

Two levels, because Defender itself has two (defender-api.md §1.4, §3.1, §3.3):

* request errors (:class:`RequestError`): the body cannot be bound at all (not JSON, wrong casing of a
  field name, a missing required field, a value outside an enum, a date that does not parse, more than
  500 items). The whole call is answered 400; nothing is stored.
* item problems (:class:`ItemProblem`): the body binds but a value breaks a rule (§1.5, §1.6, §4). Whether
  one item problem fails only that item or the whole call is the emulator's ``value_error_mode``.

Decisions on what the docs leave open are marked "UNCONFIRMED" with the strict choice taken here.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

MAX_BATCH = 500  # Import and BatchDelete (defender-api.md §2)
REQUIRED_FIELDS = ("indicatorValue", "indicatorType", "action", "title", "description")  # §1.5
INDICATOR_TYPES = frozenset(
    {"FileSha1", "FileSha256", "FileMd5", "CertificateThumbprint", "IpAddress", "DomainName", "Url"}
)
CURRENT_ACTIONS = frozenset({"Allowed", "Audit", "Warn", "Block", "BlockAndRemediate"})
LEGACY_ACTIONS = frozenset({"Alert", "AlertAndBlock"})  # "supported until January 2022" (§1.5)
SEVERITIES = frozenset({"Informational", "Low", "Medium", "High"})
_FILE_ACTIONS = frozenset({"Allowed", "Audit", "Warn", "Block", "BlockAndRemediate"})
_NETWORK_ACTIONS = frozenset({"Allowed", "Audit", "Warn", "Block"})
# Which action each type takes (§1.6, from the indicators overview).
ACTIONS_BY_TYPE: Mapping[str, frozenset[str]] = {
    "FileSha1": _FILE_ACTIONS,
    "FileSha256": _FILE_ACTIONS,
    "FileMd5": _FILE_ACTIONS,
    "IpAddress": _NETWORK_ACTIONS,
    "DomainName": _NETWORK_ACTIONS,
    "Url": _NETWORK_ACTIONS,
    "CertificateThumbprint": frozenset({"Allowed", "BlockAndRemediate"}),
}
HEX_LENGTH = {"FileSha1": 40, "FileSha256": 64, "FileMd5": 32, "CertificateThumbprint": 40}  # §4
VALUE_ERROR_CODE = {
    "FileSha1": "InvalidHashValue",
    "FileSha256": "InvalidHashValue",
    "FileMd5": "InvalidHashValue",
    "CertificateThumbprint": "InvalidHashValue",
    "IpAddress": "InvalidIpAddress",
    "DomainName": "InvalidDomainName",
    "Url": "InvalidUrl",
}
_STRING_FIELDS = ("recommendedActions", "application", "educateUrl", "externalId", "externalID", "category")
_LIST_FIELDS = ("rbacGroupNames", "rbacGroupIds", "mitreTechniques")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
_IPV6_GROUP = re.compile(r"[0-9a-f]{1,4}", re.IGNORECASE)


class RequestError(Exception):
    """The whole call fails with ``status`` and Defender error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ItemProblem:
    code: str  # the error code a whole-call 400 would carry (InvalidHashValue, InvalidInput, ...)
    message: str


# -- request level --------------------------------------------------------------------------------------
def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(400, "InvalidRequestBody", "Request body is incorrect: not valid JSON") from exc


def parse_import_body(raw: bytes, *, max_items: int = MAX_BATCH) -> list[dict[str, Any]]:
    """``{"Indicators": [...]}`` -> the items, each structurally checked. Names are case-sensitive
    (common-errors doc, §1.4): ``{"indicators": [...]}`` is a missing parameter."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise RequestError(400, "InvalidRequestBody", "Request body is incorrect: expected a JSON object")
    if "Indicators" not in body:
        near = [k for k in body if k.lower() == "indicators"]
        hint = f" (field names are case-sensitive; got {near[0]!r})" if near else ""
        raise RequestError(400, "MissingRequiredParameter", f"Missing required parameter 'Indicators'{hint}")
    items = body["Indicators"]
    if not isinstance(items, list):
        raise RequestError(400, "InvalidRequestBody", "Request body is incorrect: 'Indicators' must be a list")
    if len(items) > max_items:
        raise _too_many(len(items), max_items)
    if not items:
        # UNCONFIRMED (§3.1): an empty list is answered as invalid input rather than an empty 200.
        raise RequestError(400, "InvalidInput", "The 'Indicators' list is empty")
    for index, item in enumerate(items):
        check_structure(item, index)
    return items


def _too_many(received: int, allowed: int) -> RequestError:
    # Message shape from the common-errors table (defender-api.md §3.3).
    return RequestError(
        400, "MaximumBatchSizeExceeded", f"Maximum batch size exceeded. Received: {received}, allowed: {allowed}"
    )


def check_structure(item: Any, index: int) -> None:
    """Binding rules: required fields present (exact casing), JSON types, enum members."""
    where = f"Indicators[{index}]"
    if not isinstance(item, dict):
        raise RequestError(400, "InvalidRequestBody", f"Request body is incorrect: {where} is not an object")
    _check_required(item, where)
    _check_enums(item, where)
    _check_optional(item, where)


def _check_required(item: dict[str, Any], where: str) -> None:
    for name in REQUIRED_FIELDS:
        if item.get(name) is None:
            near = [k for k in item if k.lower() == name.lower() and k != name]
            hint = f" (field names are case-sensitive; got {near[0]!r})" if near else ""
            raise RequestError(400, "MissingRequiredParameter", f"Missing required parameter '{name}' in {where}{hint}")
        if not isinstance(item[name], str):
            raise RequestError(400, "InvalidRequestBody", f"{where}.{name} must be a string")


def _check_enums(item: dict[str, Any], where: str) -> None:
    """What .NET's binder converts to an enum (indicatorType, action, severity) or a bool (generateAlert)."""
    if item["indicatorType"] not in INDICATOR_TYPES:
        raise RequestError(
            400, "InvalidRequestBody", f"Error converting value {item['indicatorType']!r} to type 'IndicatorType'"
        )
    if item["action"] not in CURRENT_ACTIONS | LEGACY_ACTIONS:
        raise RequestError(400, "InvalidRequestBody", f"Error converting value {item['action']!r} to type 'Action'")
    severity = item.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise RequestError(400, "InvalidRequestBody", f"Error converting value {severity!r} to type 'Severity'")
    if "generateAlert" in item and parse_bool(item["generateAlert"]) is None and item["generateAlert"] is not None:
        raise RequestError(400, "InvalidRequestBody", f"{where}.generateAlert must be true or false")


def _check_optional(item: dict[str, Any], where: str) -> None:
    """The optional fields' JSON types, and an expiry that parses as a date."""
    for name in _STRING_FIELDS:
        if item.get(name) is not None and not isinstance(item[name], str):
            raise RequestError(400, "InvalidRequestBody", f"{where}.{name} must be a string")
    for name in _LIST_FIELDS:  # the Submit page also speaks of a comma-separated string: accept both
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RequestError(400, "InvalidRequestBody", f"{where}.{name} must be a list of strings")
    expiration = item.get("expirationTime")
    if expiration is not None:
        try:
            parse_time(expiration)
        except (TypeError, ValueError) as exc:
            raise RequestError(
                400, "InvalidRequestBody", f"{where}.expirationTime {expiration!r} is not an ISO 8601 date"
            ) from exc


def parse_bool(value: Any) -> bool | None:
    """JSON booleans; "true"/"false" strings in any case, as .NET's binder accepts them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def parse_time(value: Any) -> datetime:
    """ISO 8601 (``2021-12-12T00:00:00Z``, fractions, offsets); a time without offset is read as UTC."""
    if not isinstance(value, str):
        raise TypeError("a date must be a string")
    parsed = datetime.fromisoformat(value.strip())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_batch_delete_body(raw: bytes, *, max_ids: int = MAX_BATCH) -> list[str]:
    """``{"IndicatorIds": [...]}``: 400 for an empty list or more than 500 ids (defender-api.md §5)."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise RequestError(400, "InvalidRequestBody", "Request body is incorrect: expected a JSON object")
    if "IndicatorIds" not in body:
        raise RequestError(400, "MissingRequiredParameter", "Missing required parameter 'IndicatorIds'")
    ids = body["IndicatorIds"]
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        raise RequestError(400, "InvalidRequestBody", "'IndicatorIds' must be a list of ids")
    if not ids:
        raise RequestError(400, "InvalidInput", "The 'IndicatorIds' list is empty")
    if len(ids) > max_ids:
        raise _too_many(len(ids), max_ids)
    return [str(i) for i in ids]


# -- item level -----------------------------------------------------------------------------------------
def check_item(
    item: Mapping[str, Any], *, now: datetime, accept_legacy_actions: bool = False, reject_past_expiration: bool = True
) -> ItemProblem | None:
    """The first rule a structurally valid item breaks, or None."""
    value, kind, action = item["indicatorValue"], item["indicatorType"], item["action"]
    if not value.strip():
        # Wording of a real Defender-family answer (defender-api.md §3.3), typo included.
        return ItemProblem("InvalidInput", "Recieved an empty indicator value.")
    problem = value_problem(kind, value)
    if problem:
        return problem
    if action in LEGACY_ACTIONS:
        if not accept_legacy_actions:
            return ItemProblem("InvalidInput", f"Action '{action}' is no longer supported; use Audit or Block")
    elif action not in ACTIONS_BY_TYPE[kind]:
        allowed = ", ".join(sorted(ACTIONS_BY_TYPE[kind]))
        return ItemProblem("InvalidInput", f"Action '{action}' is not supported for {kind} (allowed: {allowed})")
    if action == "Audit" and parse_bool(item.get("generateAlert")) is not True:
        return ItemProblem("InvalidInput", "Action 'Audit' requires generateAlert to be true")  # §1.5
    for name in ("title", "description"):
        if not item[name].strip():
            return ItemProblem("InvalidInput", f"'{name}' must not be empty")
    expiration = item.get("expirationTime")
    if reject_past_expiration and expiration is not None and parse_time(expiration) <= now:
        # UNCONFIRMED (§1.5): what Defender does with a past expiry; strict default rejects it.
        return ItemProblem("InvalidInput", f"Expiration time {expiration} is in the past")
    return None


def value_problem(kind: str, value: str) -> ItemProblem | None:
    """§4 value rules; the message names the value, as a whole-call 400 would."""
    reason = _value_reason(kind, value)
    if reason is None:
        return None
    return ItemProblem(VALUE_ERROR_CODE[kind], f"Invalid {kind} value '{value}': {reason}")


def _value_reason(kind: str, value: str) -> str | None:
    if kind in HEX_LENGTH:
        # Hex-only and exact length (UNCONFIRMED beyond the algorithms' lengths); case kept as sent.
        want = HEX_LENGTH[kind]
        if not re.fullmatch(rf"[0-9a-fA-F]{{{want}}}", value):
            return f"expected {want} hexadecimal characters"
        return None
    if kind == "IpAddress":
        return _ip_reason(value)
    if kind == "DomainName":
        return _domain_reason(value)
    return _url_reason(value)


def _ip_reason(value: str) -> str | None:
    if "/" in value:
        return "CIDR notation is not supported"
    if "-" in value:
        return "address ranges are not supported"
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    if ":" in value:
        groups = value.split(":")
        # Documented form: all 8 groups, no "::" compression (defender-api.md §4).
        if len(groups) != 8 or not all(_IPV6_GROUP.fullmatch(g) for g in groups):
            return "IPv6 addresses must be written with all 8 groups"
        addr = ipaddress.IPv6Address(value)
    else:
        try:
            addr = ipaddress.IPv4Address(value)
        except ValueError:
            return "not a single IPv4 or IPv6 address"
    if not addr.is_global:
        return "only external (public) addresses are supported"  # indicator-ip-domain (§4)
    return None


def _domain_reason(value: str) -> str | None:
    if "://" in value or "/" in value:
        return "a domain name carries no scheme or path"
    if "*" in value:
        return "wildcards are not supported"
    if not value.isascii():
        return "internationalised names must be sent as punycode"  # UNCONFIRMED; strict
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return "not a valid host name"
    if labels[-1].isdigit():
        return "looks like an IP address; use IpAddress"
    return None


def _url_reason(value: str) -> str | None:
    if any(ch.isspace() for ch in value):
        return "URLs contain no whitespace"
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        return "an http or https scheme is required"  # UNCONFIRMED; strict
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        return "the port is not valid"
    if not host:
        return "the URL has no host"
    if "*" in host:
        return "wildcards are not supported"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if _domain_reason(host) is not None:
        return f"host {host!r} is not a valid host name"
    return None


def upsert_key(item: Mapping[str, Any], mode: str) -> tuple[str, ...]:
    """The record an import updates: (type, value) or (type, value, action). UNCONFIRMED (§3.2)."""
    key = (item["indicatorType"], item["indicatorValue"])
    return (*key, item["action"]) if mode == "type_value_action" else key
