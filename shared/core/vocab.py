"""Words more than one layer reads: yes and no, legacy action names, type groups, the URL-scheme rule.

Core module: standard library only, no I/O. Each table has this one home so that settings, validation,
the MISP reader and the tenant's records cannot drift apart (the refang table and the trimming
vocabulary live beside it in `core/text.py`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from shared.core.model import Action, IndicatorType
from shared.core.text import TRIM

T = IndicatorType

# Yes and no as settings, file metadata, HTTP query parameters, CSV cells (`generateAlert`) and MISP's
# `to_ids` (`0`/`1`, `False`/`True` in CSV exports) write them; compared lower-cased and trimmed.
# An empty value is neither: each caller decides what it means (settings: false; a row: the default).
YES_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
NO_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})
_YES_NO = {**dict.fromkeys(YES_WORDS, True), **dict.fromkeys(NO_WORDS, False)}


def yes_no(text: str) -> bool | None:
    """True for a yes word, False for a no word, None for anything else (the empty string included)."""
    return _YES_NO.get(text.strip(TRIM).lower())


# Type groups (defender-api.md §1.6: which action is valid for which type). The members are StrEnums whose
# value is their name, so a plain string from the wire (`"Url" in NETWORK_TYPES`) is found too.
NETWORK_TYPES = frozenset({T.IpAddress, T.DomainName, T.Url})
FILE_TYPES = frozenset({T.FileMd5, T.FileSha1, T.FileSha256})
HASH_TYPES = FILE_TYPES | {T.CertificateThumbprint}


# Legacy action names Defender still lists (defender-api.md §1.5), keyed lower-case, mapped as in rows
# (CONTRACT.md "Normalisation"): `Alert` → `Audit`; `AlertAndBlock` → `BlockAndRemediate` for file hashes and
# certificates ("alert and block was renamed to block and remediate", fidelity-review.md [Ovw]) and `Block` for
# network types, which cannot take BlockAndRemediate; both with generateAlert true.
# Used for row actions (checks/rules.py), DEFAULT_ACTION and file metadata (core/settings.py) and the
# tenant's own records (tenant/records.py), so an old AlertAndBlock record compares equal to its mapped row.
# localdev's emulator keeps an independent copy on purpose: it plays Defender, not this app.
LEGACY_ACTIONS: dict[str, Action] = {"alert": Action.Audit, "alertandblock": Action.Block}


def legacy_action(name: str, t: IndicatorType | str | None = None) -> Action | None:
    """The current action a legacy name (any case, trimmed) maps to for type `t`, or None when `name` is not
    one. Without a type, `AlertAndBlock` gives the network mapping (`Block`)."""
    key = name.strip().lower()
    if key == "alertandblock" and t is not None and t in HASH_TYPES:
        return Action.BlockAndRemediate
    return LEGACY_ACTIONS.get(key)


def secure_url(url: str) -> bool:
    """https, or plain http only to a loopback host (the local emulators and Azurite).

    Used for DEFENDER_API_URL and the storage service URI: a token or storage traffic must not travel
    unencrypted off the machine. The host is parsed, not prefix-matched, so `http://localhost.example`
    and `http://127.0.0.1.example` are not loopback.
    """
    if url.startswith("https://"):
        return True
    if not url.startswith("http://"):
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
