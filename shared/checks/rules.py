"""Defender's rules for one indicator: value checks per type, and the per-field rules and defaults.

Core module: standard library only, no I/O. Each value rule is a small generator that yields
`Problem`s and never raises; each cites its source (defender-api.md section or CONTRACT.md).
Field rules return the resolved value or a `Problem`. `validate.py` runs them in order.

Limits we chose where Defender documents none (defender-api.md §1.5, §4 "Length limits: UNCONFIRMED"):
- Url ≤ 2048 characters (the long-standing browser/IE limit; longer URLs are rarely real indicators).
- DomainName ≤ 253 characters, labels ≤ 63 (RFC 1035 §2.3.4).
- title ≤ 4000 (the largest value a public connector sends), description and recommendedActions
  ≤ 10000 characters. Longer values are rejected with a reason, never silently truncated.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from shared.checks.normalise import HASH_LENGTHS, canonical_ip, split_url
from shared.checks.suffixes import suffix_problem
from shared.core.model import Action, IndicatorType, Problem, Severity
from shared.core.options import RowDefaults
from shared.core.text import TRIM
from shared.core.times import format_utc, parse_iso_utc
from shared.core.vocab import FILE_TYPES, NETWORK_TYPES, legacy_action, yes_no

T = IndicatorType

MAX_URL_LENGTH = 2048
MAX_DOMAIN_LENGTH = 253
MAX_TITLE_LENGTH = 4000
MAX_DESCRIPTION_LENGTH = 10000
MAX_RECOMMENDED_ACTIONS_LENGTH = 10000

_HEX = re.compile(r"[0-9a-f]+").fullmatch
_DROP_LOWER_HEX = str.maketrans("", "", "0123456789abcdef")  # `not s.translate(...)`: a faster _HEX(s)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?").fullmatch
_WHITESPACE = re.compile(f"[{re.escape(TRIM)}]").search
_CATEGORY = re.compile(r"[A-Z][A-Za-z]+").fullmatch
_MITRE = re.compile(r"T\d{4}(?:\.\d{3})?").fullmatch

# ---------------------------------------------------------------------------------------------
# Value rules (one candidate: .type, .value already canonical)
# ---------------------------------------------------------------------------------------------


def hash_hex(value: str, t: IndicatorType) -> Iterator[Problem]:
    """Hashes and thumbprints are hex only; a shortened `32f8...d4c2` is not a hash (defender-api.md §4)."""
    if "..." in value or "…" in value:
        yield Problem("hash-truncated", f"{t.value} value is truncated ({value!r}); the full hash is needed")
    elif not _HEX(value):
        yield Problem("hash-not-hex", f"{t.value} must be hexadecimal (0-9, a-f), got {value!r}")


def hash_length(value: str, t: IndicatorType) -> Iterator[Problem]:
    """MD5 32, SHA-1 40, SHA-256 64, certificate thumbprint (SHA-1) 40 hex characters (defender-api.md §4)."""
    want = HASH_LENGTHS[t]
    if _HEX(value) and len(value) != want:
        yield Problem("hash-length", f"{t.value} needs {want} hex characters, got {len(value)}")


# Addresses Defender cannot use: it takes "only external IPs" (defender-api.md §4, §8 item 9). Python's
# `is_global` misses several of these (multicast, 100.64/10 in 3.11, NAT64, IPv4-mapped), so the list is
# explicit. 6to4 (2002::/16) stays allowed: those are real, globally routed host addresses.
# Teredo (2001::/32) is refused: the address names a NAT mapping through a relay, not a host.
_NOT_PUBLIC = [
    (ipaddress.ip_network(n), why)
    for n, why in [
        ("0.0.0.0/8", "'this network' (RFC 1122)"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared address space / CGNAT (RFC 6598)"),
        ("127.0.0.0/8", "loopback (RFC 1122)"),
        ("169.254.0.0/16", "link-local (RFC 3927)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
        ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
        ("224.0.0.0/4", "multicast (RFC 5771)"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
        ("::/128", "unspecified (RFC 4291)"),
        ("::1/128", "loopback (RFC 4291)"),
        ("::ffff:0:0/96", "IPv4-mapped (RFC 4291); use the IPv4 address"),
        ("::/96", "deprecated IPv4-compatible (RFC 4291)"),
        ("64:ff9b::/96", "NAT64 well-known prefix (RFC 6052); use the IPv4 address"),
        ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        ("2001::/32", "Teredo (RFC 4380)"),
        ("2001:2::/48", "benchmarking (RFC 5180)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("2001::/23", "IETF protocol assignments (RFC 2928)"),
        ("fc00::/7", "unique local (RFC 4193)"),
        ("fe80::/10", "link-local (RFC 4291)"),
        ("fec0::/10", "deprecated site-local (RFC 3879)"),
        ("ff00::/8", "multicast (RFC 4291)"),
    ]
]


# The same networks as integers per IP version, in the same order: (network address, netmask, why).
_NOT_PUBLIC_BY_VERSION: dict[int, list[tuple[int, int, str]]] = {
    v: [(int(n.network_address), int(n.netmask), why) for n, why in _NOT_PUBLIC if n.version == v] for v in (4, 6)
}


# Shapes of a CIDR block and of an address range; any other `/` or `-` (a URL or a host name in an
# IpAddress row) is simply not an address, and the reason must not speak of CIDR or ranges.
_CIDR_SHAPE = re.compile(r"[0-9A-Fa-f:.]+/\d{1,3}").fullmatch
_RANGE_SHAPE = re.compile(r"[0-9A-Fa-f:.]+\s*-\s*[0-9A-Fa-f:.]+").fullmatch


def ip_single(value: str) -> Iterator[Problem]:
    """One address: no CIDR, no ranges, no wildcards, no zone (defender-api.md §4, §6)."""
    if "/" in value and _CIDR_SHAPE(value):
        yield Problem("ip-cidr", f"CIDR notation is not supported ({value}); give single addresses")
    elif "*" in value and "/" not in value:
        yield Problem("ip-wildcard", f"wildcards are not supported ({value})")
    elif "-" in value and _RANGE_SHAPE(value):
        yield Problem("ip-range", f"address ranges are not supported ({value}); give single addresses")
    elif "%" in value:
        yield Problem("ip-zone", f"an IPv6 zone index is not part of an address ({value})")
    elif canonical_ip(value) is None:
        if re.fullmatch(r"\d+(?:\.\d+){3}", value):
            yield Problem(
                "ip-leading-zero", f"{value} is ambiguous (leading zeros may mean octal); write a dotted quad"
            )
        else:
            yield Problem("ip-syntax", f"{value!r} is not an IPv4 or IPv6 address")


def ip_public(value: str) -> Iterator[Problem]:
    """Defender takes only external (public unicast) addresses (defender-api.md §4, §8 item 9)."""
    if canonical_ip(value) is None:
        return  # ip_single explains what is wrong
    addr = ipaddress.ip_address(value)
    bits = int(addr)
    for net, mask, why in _NOT_PUBLIC_BY_VERSION[addr.version]:
        if bits & mask == net:  # `addr in network`, as ipaddress tests it, without its cost per network
            yield Problem("ip-not-public", f"{value} is not a public address: {why}")
            return
    if addr.version == 4 and addr == ipaddress.IPv4Address("255.255.255.255"):
        yield Problem("ip-not-public", f"{value} is the broadcast address")


def ip_canonical(value: str) -> Iterator[Problem]:
    """IPv6 written with all eight groups (defender-api.md §4); normalise.py produces that form."""
    canon = canonical_ip(value)
    if canon is not None and canon != value:
        yield Problem("ip-form", f"{value} is not in canonical form ({canon})")


def domain_problems(host: str, what: str = "domain name") -> Iterator[Problem]:
    """Host-name syntax (RFC 1035 §2.3.1, RFC 1123 §2.1; wildcards unsupported: defender-api.md §4)."""
    if _WHITESPACE(host):
        yield Problem("domain-space", f"a {what} cannot contain spaces ({host!r})")
        return
    if "*" in host:
        yield Problem("domain-wildcard", f"wildcards are not supported ({host}); example.com covers sub-domains")
        return
    if canonical_ip(host) is not None:
        yield Problem("domain-is-ip", f"{host} is an IP address, not a {what}")
        return
    if len(host) > MAX_DOMAIN_LENGTH:
        yield Problem("domain-length", f"a {what} has at most {MAX_DOMAIN_LENGTH} characters, got {len(host)}")
        return
    labels = host.split(".")
    if len(labels) < 2:
        yield Problem("domain-single-label", f"{host!r} is a single-label name; a {what} needs at least two labels")
        return
    for label in labels:
        if not _LABEL(label):
            yield Problem(
                "domain-label",
                f"label {label!r} of {host!r} is not 1-63 letters, digits or inner hyphens",
            )
            return
    if labels[-1].isdigit():
        yield Problem("domain-numeric-tld", f"{host!r} has an all-numeric top-level label")
        return
    # The name must end in a public suffix and not be one (issue "Nothing silently dropped": `igfxtray.exe`,
    # `config.php`, `printer.lan` are no domains; `co.uk` covers every domain under it).
    found = suffix_problem(host.rstrip(".").lower())
    if found is not None:
        yield Problem(*found)


def domain_syntax(value: str) -> Iterator[Problem]:
    """DomainName: a bare host name, no scheme, path or port (defender-api.md §4)."""
    if "://" in value:
        yield Problem("domain-scheme", f"a domain name has no scheme ({value!r})")
    elif "/" in value:
        yield Problem("domain-path", f"a domain name has no path ({value!r})")
    elif ":" in value and canonical_ip(value) is None:
        yield Problem("domain-port", f"a domain name has no port ({value!r})")
    else:
        yield from domain_problems(value)


def url_shape(value: str) -> Iterator[Problem]:
    """Url: http or https, no whitespace or wildcards, at most MAX_URL_LENGTH characters (our limit)."""
    if len(value) > MAX_URL_LENGTH:
        yield Problem("url-length", f"a URL has at most {MAX_URL_LENGTH} characters here, got {len(value)}")
        return
    if _WHITESPACE(value):
        yield Problem("url-space", f"a URL cannot contain whitespace ({value[:100]!r}); encode it as %20")
        return
    if "<" in value or ">" in value:
        # RFC 3986 §2 and Appendix C: < and > are never part of a URI; in IOC lists they mark a
        # placeholder (`/d/<target_email_address>`, SOURCES.md file 16) that no real request matches.
        yield Problem("url-placeholder", f"a URL cannot contain < or > ({value[:100]!r}); replace the placeholder")
        return
    parts = split_url(value)
    if parts.scheme not in ("http", "https"):
        yield Problem("url-scheme", f"only http and https URLs are supported, got {parts.scheme or 'none'!r}")
        return
    if "*" in parts.host:
        yield Problem("url-wildcard", f"wildcards are not supported in the host ({parts.host})")
        return
    if parts.userinfo is not None:
        yield Problem("url-userinfo", "a URL with user information (user@host) is not supported")
        return
    if parts.port is not None and not (parts.port.isdigit() and 0 < int(parts.port) < 65536):
        yield Problem("url-port", f"port {parts.port!r} is not a number from 1 to 65535")


def url_host(value: str) -> Iterator[Problem]:
    """The URL's host is a valid domain name or a public IP address (defender-api.md §4)."""
    parts = split_url(value)
    if parts.scheme not in ("http", "https"):
        return
    host = parts.host
    if host == "":
        yield Problem("url-no-host", "the URL has no host")
        return
    if canonical_ip(host) is not None:
        yield from ip_public(host)
        return
    yield from domain_problems(host, "URL host")


_HASH_RULES = (hash_hex, hash_length)

VALUE_RULES: dict[IndicatorType, tuple[Callable[..., Iterator[Problem]], ...]] = {
    T.FileMd5: _HASH_RULES,
    T.FileSha1: _HASH_RULES,
    T.FileSha256: _HASH_RULES,
    T.CertificateThumbprint: _HASH_RULES,
    T.IpAddress: (ip_single, ip_public, ip_canonical),
    T.DomainName: (domain_syntax,),
    T.Url: (url_shape, url_host),
}


def check_value(t: IndicatorType, value: str) -> Iterator[Problem]:
    """Run the type's value rules in order, yielding every problem found."""
    for rule in VALUE_RULES[t]:
        if t in HASH_LENGTHS:
            yield from rule(value, t)
        else:
            yield from rule(value)


def first_problem(t: IndicatorType, value: str) -> Problem | None:
    """The first problem with a value (the fast path: a valid SHA-256 costs two regex calls)."""
    if t in HASH_LENGTHS:
        if len(value) == HASH_LENGTHS[t] and not value.translate(_DROP_LOWER_HEX):
            return None
    for p in check_value(t, value):
        return p
    return None


# ---------------------------------------------------------------------------------------------
# Field rules
# ---------------------------------------------------------------------------------------------

# defender-api.md §1.6: which action is valid for which type.
VALID_ACTIONS: dict[IndicatorType, frozenset[Action]] = {
    **{t: frozenset(Action) for t in FILE_TYPES},
    **{t: frozenset({Action.Allowed, Action.Audit, Action.Warn, Action.Block}) for t in NETWORK_TYPES},
    T.CertificateThumbprint: frozenset({Action.Allowed, Action.BlockAndRemediate}),
}

_ACTION_NAMES = {a.value.lower(): a for a in Action}
# Legacy names (`core.vocab.LEGACY_ACTIONS`) are mapped with generateAlert true (CONTRACT.md).


class ActionChoice:
    """The resolved action, whether it forces generateAlert, and notes for the report."""

    __slots__ = ("action", "force_alert", "notes")

    def __init__(self, action: Action, force_alert: bool, notes: tuple[str, ...]) -> None:
        self.action = action
        self.force_alert = force_alert
        self.notes = notes


def resolve_action(raw: str | None, t: IndicatorType, defaults: RowDefaults) -> ActionChoice | Problem:
    """The row's action (case-insensitive, trimmed) or the default, checked against the type.

    - Legacy `Alert` → `Audit`, `AlertAndBlock` → `BlockAndRemediate` for file hashes and certificates and
      `Block` for network types, both with generateAlert true (CONTRACT.md, `core.vocab.legacy_action`);
      also as the default (DEFAULT_ACTION or file metadata, mapped in settings.py), noted the same way.
    - `Audit` always sends generateAlert true (defender-api.md §1.5).
    - Certificates need an explicit `Allowed`/`BlockAndRemediate` from the row or file metadata;
      the app-wide DEFAULT_ACTION does not count (CONTRACT.md "Settings").
    - A *default* that the type cannot take (DEFAULT_ACTION=BlockAndRemediate on a domain) falls back
      to `Block` with a note: one setting should not invalidate every network row of a mixed file.
      An explicit row action the type cannot take is invalid.
    """
    text = raw.strip(TRIM) if raw else ""
    notes: tuple[str, ...] = ()
    if text:
        key = text.lower()
        action = _ACTION_NAMES.get(key)
        if action is None:
            legacy = legacy_action(key, t)
            if legacy is None:
                return Problem(
                    "action-unknown",
                    f"unknown action {text!r}; use one of {', '.join(a.value for a in Action)}",
                )
            action = legacy
            notes = (f"legacy action {text} mapped to {legacy.value} with generateAlert true",)
            return _action_for_type(action, t, notes, True, explicit=True)
        return _action_for_type(action, t, notes, False, explicit=True)
    action = defaults.action
    if t is T.CertificateThumbprint and not defaults.action_from_input:
        return Problem(
            "certificate-action-required",
            "a CertificateThumbprint needs an explicit action Allowed or BlockAndRemediate (row or file metadata)",
        )
    note = defaults.action_note
    if defaults.action_legacy is not None:
        # The legacy default maps per type (AlertAndBlock: BlockAndRemediate for hashes, Block for the rest).
        name, origin = defaults.action_legacy
        action = legacy_action(name, t) or action
        note = f"legacy action {name} mapped to {action.value} ({origin})"
    if note:
        # A legacy DEFAULT_ACTION or input `action` (core.settings.legacy_default): noted, generateAlert true as
        # for a row.
        choice = _action_for_type(action, t, (note,), True, explicit=False)
        return Problem(choice.code, f"{note}; {choice.message}") if isinstance(choice, Problem) else choice
    return _action_for_type(action, t, notes, False, explicit=False)


def _action_for_type(
    action: Action, t: IndicatorType, notes: tuple[str, ...], force: bool, *, explicit: bool
) -> ActionChoice | Problem:
    if action not in VALID_ACTIONS[t]:
        if explicit or t is T.CertificateThumbprint:
            allowed = ", ".join(a.value for a in Action if a in VALID_ACTIONS[t])
            return Problem("action-type", f"action {action.value} is not valid for {t.value}; use {allowed}")
        notes = (*notes, f"default action {action.value} is not valid for {t.value}; Block used")
        action = Action.Block
    return ActionChoice(action, force or action is Action.Audit, notes)


def resolve_generate_alert(raw: str | None, defaults: RowDefaults, choice: ActionChoice) -> bool | Problem | None:
    """Row value (a yes/no word of `core.vocab`: `true/false/TRUE/1/0/on/off`), else the file's
    `generate_alert`, else unset; Audit forces true. An empty cell takes the file's value."""
    value = yes_no(raw) if raw else None
    if value is None:
        if raw and raw.strip(TRIM):
            return Problem("generate-alert", f"generateAlert must be true or false, got {raw!r}")
        value = defaults.generate_alert
    if choice.force_alert:
        return True
    return value


_SEVERITY_NAMES = {s.value.lower(): s for s in Severity}


def resolve_severity(raw: str | None, defaults: RowDefaults) -> Severity | Problem:
    """Row severity (case-insensitive, trimmed) or the default (DEFAULT_SEVERITY or the input's `severity`)."""
    text = raw.strip(TRIM) if raw else ""
    if not text:
        return defaults.severity
    found = _SEVERITY_NAMES.get(text.lower())  # one look-up, not a loop reading each member's `.value`
    if found is not None:
        return found
    return Problem("severity-unknown", f"unknown severity {text!r}; use {', '.join(s.value for s in Severity)}")


# Expiry dates: ISO 8601 any offset (date only allowed), US M/D/YYYY with optional time as in
# Microsoft's own exports (SOURCES.md file 15), compact YYYYMMDD (MISP). Naive times are UTC.
_US_DATE = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([AaPp][Mm])?)?"
).fullmatch


def parse_datetime(text: str) -> datetime | None:
    """Any date form a user may write → aware UTC datetime, or None when unparseable.

    The US form is read here; everything else is `core.times.parse_iso_utc`, the parser the tenant's
    records use for Defender's answers, so an ISO expiry means the same instant to both. Users' dates
    differ from Defender's only by the US form (Microsoft's own exports, SOURCES.md file 15).
    """
    t = text.strip(TRIM)
    m = _US_DATE(t)
    if not m:
        return parse_iso_utc(t)
    month, day, year = int(m[1]), int(m[2]), int(m[3])
    hour, minute, sec = int(m[4] or 0), int(m[5] or 0), int(m[6] or 0)
    if m[7]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m[7].lower() == "pm" else 0)
    try:
        return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)
    except ValueError:
        return None


def resolve_expiration(raw: str | None, t: IndicatorType, defaults: RowDefaults, now: datetime) -> str | Problem | None:
    """Row expiry, or now + the type's default days (0 = never: nothing sent); past expiry is invalid."""
    text = raw.strip(TRIM) if raw else ""
    if not text:
        return default_expiration(t, defaults, now)
    dt = parse_datetime(text)
    if dt is None:
        return Problem(
            "expiration-format",
            f"expirationTime {text!r} is not a date (use ISO 8601, M/D/YYYY or YYYYMMDD)",
        )
    if dt <= now:
        return Problem("expiration-past", f"expirationTime {format_utc(dt)} is in the past")
    return format_utc(dt)


def default_expiration(t: IndicatorType, defaults: RowDefaults, now: datetime) -> str | None:
    days = defaults.expiration_days_for(t)
    if days == 0:
        return None
    return format_utc(now + timedelta(days=days))


def resolve_text(raw: str | None, default: str, field: str, limit: int) -> str | Problem:
    """Row text (trimmed) or the default; over the limit is invalid rather than truncated."""
    text = raw.strip(TRIM) if raw else ""
    value = text or default
    if len(value) > limit:
        return Problem(f"{field.lower()}-length", f"{field} has at most {limit} characters here, got {len(value)}")
    return value


def default_description(template: str, source: str) -> str:
    """DEFAULT_DESCRIPTION with `{source}` filled in; other braces stay as written (never raises)."""
    return template.replace("{source}", source)


def split_names(raw: str) -> tuple[str, ...]:
    return tuple(p.strip(TRIM) for p in raw.split(",") if p.strip(TRIM))


def resolve_rbac(raw: str | None, defaults: RowDefaults) -> tuple[str, ...] | None:
    """Row device groups (comma-separated) or DEFAULT_RBAC_GROUPS; none means all devices (not sent)."""
    groups = split_names(raw) if raw else ()
    return groups or defaults.rbac_groups or None


# Defender alert categories (portal list, Pascal case: defender-api.md §6); lower-case or spaced
# spellings are mapped, anything else must already be Pascal case.
KNOWN_CATEGORIES = (
    "Collection CommandAndControl CredentialAccess DefenseEvasion Discovery Execution Exfiltration Exploit "
    "InitialAccess LateralMovement Malware Persistence PrivilegeEscalation Ransomware SuspiciousActivity "
    "UnwantedSoftware Impact"
).split()
_CATEGORY_KEYS = {c.lower(): c for c in KNOWN_CATEGORIES}


def resolve_category(raw: str | None) -> str | Problem | None:
    text = raw.strip(TRIM) if raw else ""
    if not text:
        return None
    known = _CATEGORY_KEYS.get(re.sub(r"[\s_-]+", "", text).lower())
    if known:
        return known
    if _CATEGORY(text):
        return text
    return Problem("category", f"category {text!r} must be a Pascal-case name such as SuspiciousActivity")


def resolve_mitre(raw: str | None) -> tuple[str, ...] | Problem | None:
    """`T1234` / `T1234.001`, comma-separated; one bad item makes the row invalid."""
    items = split_names(raw) if raw else ()
    if not items:
        return None
    out = []
    for item in items:
        up = item.upper()
        if not _MITRE(up):
            return Problem("mitre-technique", f"MITRE technique {item!r} must look like T1234 or T1234.001")
        out.append(up)
    return tuple(out)
