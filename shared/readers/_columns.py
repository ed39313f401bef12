"""Column and key names: which CSV header or JSON key holds which canonical field.

Pure lookup tables, no I/O. CSV headers and JSON keys go through the same `norm()` so that
`IndicatorValue`, `indicator_value` and `Indicator Value` are one name (CONTRACT.md "Inputs":
case-insensitive header, any column order).
"""

from __future__ import annotations

import re

from shared.core.model import (
    FIELD_ACTION,
    FIELD_APPLICATION,
    FIELD_CATEGORY,
    FIELD_DESCRIPTION,
    FIELD_EDUCATE_URL,
    FIELD_EXPIRATION,
    FIELD_EXTERNAL_ID,
    FIELD_GENERATE_ALERT,
    FIELD_MITRE,
    FIELD_RBAC_GROUPS,
    FIELD_RECOMMENDED_ACTIONS,
    FIELD_SEVERITY,
    FIELD_TITLE,
)

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def norm(name: str) -> str:
    """`IoC_Type` -> `ioctype`, `SHA-256` -> `sha256`, `\\ufeffIndicatorValue` -> `indicatorvalue`."""
    return _NOT_ALNUM.sub("", name.lower())


# Columns that hold "the" indicator value, best first. `indicator` is only a value column when no
# `data` column sits beside it: Sophos writes `Indicator,Data,Note` with the type under Indicator.
VALUE_ALIASES = (
    "indicatorvalue",
    "value",
    "ioc",
    "iocvalue",
    "observable",
    "observablevalue",
    "indicator",
    "data",
    # Names real feeds use (issue "Nothing silently dropped"): the type is inferred from the value.
    "address",
    "iocaddress",
    "artifact",
    "artifactvalue",
    "attributevalue",
    "threatvalue",
    "entity",
    "entityvalue",
)

# Columns that state the type of the value column, best first (MSTIC has both `IoC_Type` and a
# `Type` holding "Rapid Release TI": the specific name wins).
TYPE_ALIASES = ("indicatortype", "ioctype", "observabletype", "valuetype", "type")

# Columns named after a type: each non-empty cell is an indicator with that type hint (the hint
# is the column's own name, which validation maps like any foreign type name).
TYPED_COLUMNS = {
    "md5": "md5",
    "md5hash": "md5",
    "sha1": "sha1",
    "sha1hash": "sha1",
    "sha256": "sha256",
    "sha256hash": "sha256",
    "url": "url",
    "urls": "url",
    "domain": "domain",
    "domains": "domain",
    "domainname": "domain",
    "hostname": "hostname",
    "host": "hostname",
    "ip": "ip",
    "ips": "ip",
    "ipaddress": "ip",
    "ipv4": "ip",
    "ipv6": "ip",
    "c2domain": "domain",
    "c2ip": "ip",
    "c2url": "url",
    # Names real feeds use (issue "Nothing silently dropped"): abuse.ch `dst_ip`, firewall exports, Hash (SHA256).
    "dstip": "ip",
    "srcip": "ip",
    "destip": "ip",
    "destinationip": "ip",
    "sourceip": "ip",
    "ipdst": "ip",
    "ipsrc": "ip",
    "remoteip": "ip",
    "c2ipaddress": "ip",
    "dsthost": "hostname",
    "srchost": "hostname",
    "desthost": "hostname",
    "fqdn": "hostname",
    "c2host": "hostname",
    "c2server": "hostname",
    "hostnames": "hostname",
    "hashmd5": "md5",
    "hashsha1": "sha1",
    "hashsha256": "sha256",
    "filehashmd5": "md5",
    "filehashsha1": "sha1",
    "filehashsha256": "sha256",
    "md5sum": "md5",
    "sha1sum": "sha1",
    "sha256sum": "sha256",
    "certificatethumbprint": "CertificateThumbprint",
    "thumbprint": "CertificateThumbprint",
}

# Typed columns that add indicators beside a value column (NOBELIUM's SHA1/MD5/C2Domain next to
# IoC). A plain `url` or `domain` column beside a value column is context (the host of the value,
# a reference link), so it is not mined: deriving domains from URLs would block hosting sites.
EXTRA_TYPED_COLUMNS = frozenset(
    {"md5", "md5hash", "sha1", "sha1hash", "sha256", "sha256hash", "c2domain", "c2ip", "c2url"}
    | {"hashmd5", "hashsha1", "hashsha256", "filehashmd5", "filehashsha1", "filehashsha256"}
    | {"md5sum", "sha1sum", "sha256sum"}
)

# Other columns -> canonical fields (first alias present wins for each field).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    FIELD_ACTION: ("action",),
    FIELD_SEVERITY: ("severity",),
    FIELD_TITLE: ("title",),
    FIELD_DESCRIPTION: ("description", "comment", "comments", "note", "notes"),
    FIELD_EXPIRATION: ("expirationtime", "expirationdatetime", "expiration", "expires", "validuntil"),
    FIELD_RECOMMENDED_ACTIONS: ("recommendedactions",),
    FIELD_RBAC_GROUPS: ("rbacgroups", "rbacgroupnames"),
    FIELD_MITRE: ("mitretechniques",),
    FIELD_GENERATE_ALERT: ("generatealert",),
    FIELD_EXTERNAL_ID: ("externalid",),
    FIELD_APPLICATION: ("application",),
    FIELD_EDUCATE_URL: ("educateurl",),
}
# `category` is Defender's only in the portal template; elsewhere (MISP, MSTIC) it means something
# else, and CONTRACT.md "Normalisation" forbids guessed categories.
DEFENDER_ONLY_FIELDS: dict[str, tuple[str, ...]] = {FIELD_CATEGORY: ("category",)}

# The Defender portal's CSV template (CONTRACT.md "Inputs").
DEFENDER_TEMPLATE = frozenset(
    {
        "indicatortype",
        "indicatorvalue",
        "expirationtime",
        "action",
        "severity",
        "title",
        "description",
        "recommendedactions",
        "rbacgroups",
        "category",
        "mitretechniques",
        "generatealert",
    }
)

# A type cell holding one of these labels marks a pseudo-record, not an indicator (Sophos starts
# with `Description,<blog url>,...`).
PSEUDO_RECORD_TYPES = frozenset(
    {"description", "reference", "references", "note", "notes", "comment", "source", "link", "title", "author"}
)


def typed_column(name: str) -> str | None:
    """The type hint a column named after a type gives, or None."""
    return TYPED_COLUMNS.get(norm(name))
