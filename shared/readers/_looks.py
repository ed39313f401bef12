"""Does a token look like an indicator? Used by the text reader to tell IOC lines from prose.

Pure, no I/O. This only DECIDES, on a token already refanged by `core.text.refang` (the table
normalisation uses too); the value passed on is the original token, and the separate normalise/validate
step refangs and checks it properly (CONTRACT.md "Normalisation").
"""

from __future__ import annotations

import ipaddress
import re

_HASH = re.compile(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}")
_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")
_IPV4_PORT_PATH = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?:[:|]\d{1,5})?(?:/\S*)?")
_URL = re.compile(r"(?:https?|ftp)://[^\s/?#]+\S*", re.I)
_LABEL = r"(?!-)[\w-]{1,63}(?<!-)"
_HOST = re.compile(rf"(?:{_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[\w-]{{2,59}})\.?", re.I)
_HOST_REST = re.compile(rf"(?P<host>{_HOST.pattern})(?::\d{{1,5}})?(?:[/?]\S*)?", re.I)
_EMAIL = re.compile(rf"[\w.+-]+@{_HOST.pattern}", re.I)

# File names look like host names (`payload.exe`); these endings are files and not TLDs (real TLDs
# that are also file endings, such as .sh, .py, .pl, .md, .zip, stay host names).
_FILE_ENDINGS = frozenset(
    "exe dll sys bat cmd ps1 psm1 vbs vbe js jse hta lnk scr msi msp jar elf bin dat tmp log ini cfg "
    "conf txt csv json xml yml yaml doc docx docm xls xlsx xlsm ppt pptx pdf rtf iso img gz tgz 7z rar "
    "php asp aspx jsp html htm png jpg jpeg gif svg".split()
)


def kind(token: str) -> str | None:
    """'hash', 'ip', 'url', 'host', 'email', 'path' or None for a single refanged token."""
    t = token
    if not t:
        return None
    if _HASH.fullmatch(t):
        return "hash"
    if _IPV4_PORT_PATH.fullmatch(t):
        return "ip" if _ipv4_ok(t) else None
    if _is_ipv6(t):
        return "ip"
    if _URL.fullmatch(t):
        return "url"
    if _EMAIL.fullmatch(t):
        return "email"
    return _host_kind(t)


def _host_kind(t: str) -> str | None:
    """'host', 'url' (a host with a path), 'path' or None for a token that is no hash, IP, URL or email."""
    if t.startswith("*.") and _HOST_REST.fullmatch(t[2:]):
        # A wildcard domain is meant as an indicator: pass it on so validation rejects it with a
        # reason (Defender takes no wildcards; `example.com` already covers its sub-domains).
        return "host"
    m = _HOST_REST.fullmatch(t)
    if m:
        host = m.group("host").rstrip(".")
        tld = host.rsplit(".", 1)[-1].lower()
        if tld in _FILE_ENDINGS and len(t) == len(m.group("host")):
            return None
        return "url" if len(t) > len(m.group("host")) and "/" in t else "host"
    if t.startswith("/") and not t.startswith("//") and len(t) > 1 and " " not in t:
        return "path"
    return None


def _ipv4_ok(t: str) -> bool:
    m = _IPV4.match(t)
    return m is not None and all(int(p) <= 255 for p in m.group(0).split("."))


def _is_ipv6(t: str) -> bool:
    if ":" not in t or t.count(":") < 2:
        return False
    core = t.strip("[]")
    if "]:" in t:  # [v6]:port
        core = t[1 : t.index("]:")]
    try:
        ipaddress.IPv6Address(core.split("%", 1)[0])
    except ValueError:
        return False
    return True
