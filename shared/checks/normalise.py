"""Normalisation: one raw value (and an optional type hint) → one typed, canonical candidate.

Core module: standard library and `idna` only, no I/O. Owns lower-casing, IDN → punycode, canonical IP
forms, type inference and the type corrections the contract allows (CONTRACT.md "Normalisation"); it trims,
unwraps and refangs by `core/text.py`, the vocabulary the text reader decides by too. Whether the canonical
value is acceptable to Defender is `rules.py`'s job; this module only refuses what it cannot even put into a
typed form.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from shared.core.model import IndicatorType, Problem
from shared.core.text import TRIM, WRAP_OPENERS, hex_digits, refang, unwrap

T = IndicatorType

HASH_LENGTHS = {T.FileMd5: 32, T.FileSha1: 40, T.FileSha256: 64, T.CertificateThumbprint: 40}
_HASH_BY_LENGTH = {32: T.FileMd5, 40: T.FileSha1, 64: T.FileSha256}
_FILE_HASHES = (T.FileMd5, T.FileSha1, T.FileSha256)

_HEX = re.compile(r"[0-9a-fA-F]+").fullmatch
# Hex bytes (pairs of digits) with one kind of separator throughout (`AA:BB:CC`, `aa bb cc`, `aa-bb-cc`),
# as fingerprint tools write them; group 1 is the separator. Pairs only: a full-form IPv6 address
# (`2a00:1450:…`, groups of four) or a GUID in a hash column is not a hash written with separators.
_SEPARATED_HEX = re.compile(r"[0-9a-fA-F]{2}([:\s-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2})*").fullmatch
_HAS_SPACE = re.compile(f"[{re.escape(TRIM)}]").search
# Domain-ish: letters, digits, hyphens, dots (and non-ASCII for IDN) — for inference only. One character class
# per label, and `_` ruled out apart (`_domainish`): an alternation inside the repeat cost ~115 bytes of
# backtracking state per character (2.4 GB for a 20 MB value).
_DOMAINISH_RE = re.compile(r"[\w-]+(?:\.[\w-]+)+\.?").fullmatch


def _domainish(value: str) -> bool:
    return "_" not in value and _DOMAINISH_RE(value) is not None


_CIDR = re.compile(r"[0-9a-fA-F:.]+/\d{1,3}").fullmatch
_IP_RANGE = re.compile(r"[0-9a-fA-F:.]+\s*-\s*[0-9a-fA-F:.]+").fullmatch
_IPV4ISH = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}").fullmatch
# A character no IPv4 or IPv6 address is written with: `ipaddress` takes ASCII hex digits, `.` and `:` only
# (a zone's `%` is refused apart).
_NOT_IP_TEXT = re.compile(r"[^0-9A-Fa-f.:]").search


class Candidate:
    """A typed, canonical value plus notes for the report (type corrected, scheme added, …)."""

    __slots__ = ("checked", "notes", "type", "value")

    def __init__(self, type: IndicatorType, value: str, notes: tuple[str, ...] = (), checked: bool = False) -> None:
        self.type = type
        self.value = value
        self.notes = notes
        # True when the value is already known to pass the type's value rules (a hash of the right
        # length in hex), so validation can skip them; not part of equality.
        self.checked = checked

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Candidate):
            return NotImplemented
        return (self.type, self.value, self.notes) == (other.type, other.value, other.notes)

    def __hash__(self) -> int:
        return hash((self.type, self.value, self.notes))

    def __repr__(self) -> str:
        return f"Candidate({self.type.value}, {self.value!r}, {self.notes!r})"


# Hint kinds beyond the Defender types.
_ANY_HASH = "any-hash"  # the length decides (Volexity `file`, generic `hash`)
_UNSUPPORTED = "unsupported"
_HASH_KINDS = frozenset({_ANY_HASH, *HASH_LENGTHS})

# Foreign type names (lower-cased) → what they mean. Sources: MISP attribute types; Sentinel/MSTIC
# (`domainname`, `IP`, `URL`); Volexity (`hostname`, `ipaddress`, `file`); Sophos (`url` holding bare
# domains, `url_path`, `ip`); ThreatFox (`domain`, `ip:port`, `url`, `*_hash`); OTX (`FileHash-*`).
TYPE_NAMES: dict[str, object] = {
    **{t.value.lower(): t for t in IndicatorType},
    "md5": T.FileMd5,
    "md5_hash": T.FileMd5,
    "filehash-md5": T.FileMd5,
    "sha1": T.FileSha1,
    "sha-1": T.FileSha1,
    "sha1_hash": T.FileSha1,
    "filehash-sha1": T.FileSha1,
    "sha256": T.FileSha256,
    "sha-256": T.FileSha256,
    "sha256_hash": T.FileSha256,
    "filehash-sha256": T.FileSha256,
    "file": _ANY_HASH,
    "hash": _ANY_HASH,
    "filehash": _ANY_HASH,
    "x509-fingerprint-sha1": T.CertificateThumbprint,
    "certificate": T.CertificateThumbprint,
    "ip": T.IpAddress,
    "ip-dst": T.IpAddress,
    "ip-src": T.IpAddress,
    "ip-dst|port": T.IpAddress,
    "ip-src|port": T.IpAddress,
    "ip:port": T.IpAddress,
    "ipv4": T.IpAddress,
    "ipv6": T.IpAddress,
    "ipv4-addr": T.IpAddress,
    "ipv6-addr": T.IpAddress,
    "ipaddress": T.IpAddress,
    "domain": T.DomainName,
    "domain-name": T.DomainName,
    "hostname": T.DomainName,
    "fqdn": T.DomainName,
    "url": T.Url,
    "uri": T.Url,
    "url_path": T.Url,
    # MISP `link` is a reference to a report about the event, not something to block.
    "link": _UNSUPPORTED,
}


# Raw type hint -> (kind, trimmed hint): a file repeats a handful of hints on every row.
_HINTS: dict[str, tuple[object, str]] = {}
_MAX_HINTS = 256


def clean(text: str) -> str:
    """Trim Unicode whitespace (NBSP included) and zero-width characters at both ends."""
    return text.strip(TRIM)


def hash_type_for_length(n: int) -> IndicatorType | None:
    return _HASH_BY_LENGTH.get(n)


def idna_host(host: str) -> str | Problem:
    """Lower-case a host name; non-ASCII labels become punycode (IDNA 2008 with UTS 46 mapping)."""
    if host.isascii():
        return host.lower()
    import idna  # small pure-Python parser; loaded only when a non-ASCII host shows up

    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as e:
        return Problem("idn-invalid", f"host name {host!r} cannot be converted to punycode: {e}")


@lru_cache(maxsize=64)  # one value is asked about by several steps of its row (type, normalise, each rule)
def canonical_ip(text: str) -> str | None:
    """The canonical form Defender expects, or None when `text` is not one IP address.

    IPv4: dotted quad; leading zeros are refused by `ipaddress` (octal ambiguity, CVE-2021-29921).
    IPv6: all eight groups, each without leading zeros, lower-case (defender-api.md §4).
    """
    if "%" in text:
        return None  # a zone index (`fe80::1%eth0`) is local to one host, never an indicator
    if not text or _NOT_IP_TEXT(text):
        return None  # what `ipaddress` refuses anyway, without the cost of its ValueError (host names, URLs)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.version == 4:
        return str(addr)
    # From the bytes, not `exploded`: Python 3.13 writes IPv4-mapped addresses as `::ffff:1.2.3.4` there.
    packed = addr.packed
    return ":".join(f"{int.from_bytes(packed[i : i + 2], 'big'):x}" for i in range(0, 16, 2))


def split_ip_port(value: str) -> tuple[str, str | None]:
    """`ip:port`, `ip|port`, `[v6]:port` → (ip, port); anything else → (value, None)."""
    if value.startswith("["):
        end = value.find("]")
        if end > 0:
            rest = value[end + 1 :]
            if rest == "":
                return value[1:end], None
            if rest[0] in ":|" and rest[1:].isdigit():
                return value[1:end], rest[1:]
        return value, None
    for sep in ("|", ":"):
        head, found, port = value.rpartition(sep)
        if found and port.isdigit() and _IPV4ISH(head):
            return head, port
    return value, None


class UrlParts:
    """A URL split the way the rules need it; `rest` (path, query, fragment) is kept byte for byte."""

    __slots__ = ("host", "port", "rest", "scheme", "userinfo")

    def __init__(self, scheme: str, userinfo: str | None, host: str, port: str | None, rest: str) -> None:
        self.scheme = scheme
        self.userinfo = userinfo
        self.host = host
        self.port = port
        self.rest = rest

    def unsplit(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = f"{self.userinfo}@{host}" if self.userinfo is not None else host
        if self.port is not None:
            auth += f":{self.port}"
        return f"{self.scheme}://{auth}{self.rest}" if self.scheme else f"{auth}{self.rest}"


def split_url(value: str) -> UrlParts:
    """Split without `urllib` so that nothing in the path or query is re-encoded."""
    scheme, sep, rest = value.partition("://")
    if not sep or not scheme.isascii() or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        scheme, rest = "", value
    end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if 0 <= i < end:
            end = i
    authority, tail = rest[:end], rest[end:]
    userinfo = None
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
    port = None
    if authority.startswith("["):
        close = authority.find("]")
        if close > 0:
            host = authority[1:close]
            after = authority[close + 1 :]
            if after.startswith(":"):
                port = after[1:]
        else:
            host = authority
    elif authority.count(":") == 1:
        host, _, port = authority.partition(":")
    else:
        host = authority
    return UrlParts(scheme.lower(), userinfo, host, port, tail)


def infer_type(value: str) -> IndicatorType | None:
    """The type an untyped (refanged, trimmed) value most plausibly has, or None."""
    n = len(value)
    if n in _HASH_BY_LENGTH and _HEX(value):
        return _HASH_BY_LENGTH[n]
    ip = split_ip_port(value)[0]
    if canonical_ip(ip) is not None or _IPV4ISH(ip) or _CIDR(value) or _IP_RANGE(value):
        return T.IpAddress
    if "://" in value or "/" in value or "?" in value:
        return T.Url
    if _domainish(value):
        head = value.rpartition(".")[2]
        if not head.isdigit():
            return T.DomainName
    return None


def _type_note(old: IndicatorType | str, new: IndicatorType) -> str:
    name = old.value if isinstance(old, IndicatorType) else old
    return f"type corrected from {name} to {new.value}"


def normalise(raw_value: str, type_hint: str | None = None) -> Candidate | Problem:
    """Trim, refang and type one raw value; the canonical form or why there is none.

    `type_hint` is a Defender type name (any case) or a foreign one (MISP, Sentinel, ThreatFox, …);
    empty or None means "infer from the value". A value wrapped in one pair of quotes or angle
    brackets is the value inside, noted (`unwrap`).
    """
    value = raw_value.strip(TRIM)
    if not value:
        return Problem("empty-value", "the indicator value is empty")
    kind, hint_name = (_HINTS.get(type_hint) or _hint(type_hint)) if type_hint else _NO_HINT
    if kind is _UNSUPPORTED:
        return Problem("unsupported-type", f"unsupported type {hint_name}")
    # Fast path (most rows of big hash feeds): a bare hex string of a hash length needs no refanging.
    n = len(value)
    if n in _HASH_BY_LENGTH and (kind is None or kind in _HASH_KINDS) and hex_digits(value):
        if kind is None or kind is _ANY_HASH:
            return Candidate(_HASH_BY_LENGTH[n], value.lower(), (), True)
        assert isinstance(kind, IndicatorType)
        if HASH_LENGTHS[kind] == n:
            return Candidate(kind, value.lower(), (), True)
        return _hash(value, kind)
    if value[0] in WRAP_OPENERS:
        return _unwrapped(value, kind, hint_name)
    return _typed(value, kind, hint_name)


_NO_HINT: tuple[object, str] = (None, "")


def _hint(type_hint: str) -> tuple[object, str]:
    """(kind, trimmed name) of a raw type hint, kept in `_HINTS`: what `TYPE_NAMES` says, `_UNSUPPORTED` for a
    name it does not know, None (infer from the value) for a blank hint."""
    hint_name = type_hint.strip(TRIM)
    known = (TYPE_NAMES.get(hint_name.lower(), _UNSUPPORTED) if hint_name else None, hint_name)
    if len(_HINTS) < _MAX_HINTS:
        _HINTS[type_hint] = known
    return known


def _unwrapped(value: str, kind: object, hint_name: str) -> Candidate | Problem:
    """A value wrapped in one pair of quotes or angle brackets is the value inside, noted (`unwrap`)."""
    unwrapped = unwrap(value)
    if unwrapped is None:
        return _typed(value, kind, hint_name)
    inner, note = unwrapped
    if not inner:
        return Problem("empty-value", f"{note}; the indicator value is empty")
    c = _typed(inner, kind, hint_name)
    if isinstance(c, Candidate):
        return Candidate(c.type, c.value, (note, *c.notes), c.checked)
    return Problem(c.code, f"{note}; {c.message}")  # as validate.py writes notes before a reason


def _typed(value: str, kind: object, hint_name: str) -> Candidate | Problem:
    """Refang and type a trimmed, unwrapped value; `kind` is the resolved hint (None: infer)."""
    if kind in _HASH_KINDS:
        grouped = _SEPARATED_HEX(value)
        if grouped is not None:
            # `AA:BB:…` (openssl -fingerprint), `aa bb …` (Windows certificate dialog), `aa-bb-…`: only
            # in a row typed as a hash or thumbprint; an untyped value is never guessed to be one.
            c = _hash_of_kind(value.replace(grouped[1], ""), kind, hint_name)
            if isinstance(c, Candidate):
                return Candidate(c.type, c.value, ("separators removed", *c.notes))
            return Problem(c.code, f"separators removed; {c.message}")
    value = refang(value)
    if kind is None:
        inferred = infer_type(value)
        if inferred is None:
            if value.startswith("\\\\"):
                return Problem("not-an-indicator", "a UNC path is not an indicator Defender accepts")
            if value.startswith("/"):
                return Problem("not-an-indicator", "a path without a host is not an indicator")
            if value.startswith("*.") and infer_type(value[2:]) is IndicatorType.DomainName:
                return Problem(
                    "domain-wildcard",
                    f"wildcards are not supported ({_short(value)}); {_short(value[2:])} covers its sub-domains",
                )
            return Problem("not-an-indicator", f"{_short(value)} is not a hash, IP address, domain name or URL")
        return _as_type(value, inferred, None)
    if kind is _ANY_HASH:
        return _hash_of_kind(value, kind, hint_name)
    assert isinstance(kind, IndicatorType)
    return _as_type(value, kind, hint_name)


def _hash_of_kind(value: str, kind: object, hint_name: str) -> Candidate | Problem:
    """A value under a hash hint: a Defender hash type, or any hash whose length decides."""
    if kind is _ANY_HASH:
        lowered = value.lower()
        t = _HASH_BY_LENGTH.get(len(lowered))
        if t is None:
            return Problem("hash-length", f"a {hint_name} hash has 32, 40 or 64 hex characters, got {len(value)}")
        return Candidate(t, lowered)
    assert isinstance(kind, IndicatorType)
    return _hash(value, kind)


def _short(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _as_type(value: str, t: IndicatorType, hint: str | None) -> Candidate | Problem:
    if t in HASH_LENGTHS:
        return _hash(value, t)
    if t is T.IpAddress:
        return _ip(value, hint)
    if t is T.DomainName:
        return _domain(value, hint is not None)
    return _url(value, hint is not None)


def _hash(value: str, t: IndicatorType) -> Candidate:
    lowered = value.lower()
    n = len(lowered)
    if n != HASH_LENGTHS[t] and t in _FILE_HASHES and n in _HASH_BY_LENGTH and _HEX(lowered):
        # A hash column holding another algorithm's hash: the length says which (defender-api.md §4).
        new = _HASH_BY_LENGTH[n]
        return Candidate(new, lowered, (_type_note(t, new),))
    return Candidate(t, lowered)


def _ip(value: str, hint: str | None) -> Candidate | Problem:
    ip, port = split_ip_port(value)
    canon = canonical_ip(ip)
    if canon is None:
        # Left as given: rules.py explains what is wrong (CIDR, range, zone, leading zeros, …).
        return Candidate(T.IpAddress, value)
    notes = (f"port {port} removed",) if port is not None else ()
    return Candidate(T.IpAddress, canon, notes)


def _domain(value: str, typed: bool) -> Candidate | Problem:
    notes: tuple[str, ...] = ()
    if "://" in value or "/" in value:
        parts = split_url(value)
        if parts.rest.strip("/") == "" and parts.scheme and parts.userinfo is None and parts.port is None:
            # `scheme://host` or `scheme://host/` in a DomainName row is that host (CONTRACT.md "Normalisation").
            value = parts.host
            notes = ("URL reduced to its host name",)
        else:
            # A DomainName row holding a URL with a path becomes a Url (CONTRACT.md "Normalisation").
            c = _url(value, False)
            if isinstance(c, Candidate) and typed:
                return Candidate(c.type, c.value, (_type_note(T.DomainName, c.type), *c.notes))
            return c
    canon = canonical_ip(value)
    if canon is not None:
        return Candidate(T.IpAddress, canon, (*notes, _type_note(T.DomainName, T.IpAddress)) if typed else notes)
    if value.endswith(".") and not value.endswith(".."):
        value = value[:-1]
    host = idna_host(value) if not _HAS_SPACE(value) else value
    if isinstance(host, Problem):
        return host
    return Candidate(T.DomainName, host, notes)


def _url(value: str, typed: bool) -> Candidate | Problem:
    if value.startswith("\\\\"):
        return Problem("not-a-url", "a UNC path (\\\\host\\share) is not a URL Defender accepts")
    notes: list[str] = []
    if value.startswith("//") and not value.startswith("///"):
        # A scheme-relative URL (`//host/path`, as copied from HTML): its host follows the two slashes.
        value = "http:" + value
        notes.append("http: added (scheme-relative URL)")
    parts = split_url(value)
    if not parts.scheme:
        if parts.host == "":
            return Problem("not-an-indicator", "a path without a host is not an indicator")
        if typed and parts.rest == "" and parts.userinfo is None:
            bare = _bare_host(value, parts)
            if bare is not None:
                return bare
        parts.scheme = "http"
        notes.append("http:// added (no scheme)")
    host = _url_host(parts.host)
    if isinstance(host, Problem):
        return host
    parts.host = host
    return Candidate(T.Url, parts.unsplit(), tuple(notes))


def _bare_host(value: str, parts: UrlParts) -> Candidate | Problem | None:
    """A Url row holding a bare host (Sophos `url` columns hold domains): DomainName or IpAddress; None when it
    is neither (a host name with a port stays a URL)."""
    ip = canonical_ip(split_ip_port(value)[0])
    if ip is not None:
        c = _ip(value, None)
        assert isinstance(c, Candidate)
        return Candidate(c.type, c.value, (_type_note(T.Url, T.IpAddress), *c.notes))
    if parts.port is None:
        d = _domain(value, False)
        if isinstance(d, Candidate):
            return Candidate(d.type, d.value, (_type_note(T.Url, d.type), *d.notes))
        return d
    return None


def _url_host(host: str) -> str | Problem:
    """A URL's host in canonical form: an IP address as `canonical_ip` writes it, a name lower-cased and in
    punycode (a trailing dot dropped); left as given where the rules explain what is wrong."""
    if host.startswith("[") or ":" in host:
        canon = canonical_ip(host.strip("[]"))
        return canon if canon is not None else host
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    return idna_host(host) if host and not _HAS_SPACE(host) else host
