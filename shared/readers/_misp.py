"""MISP attributes -> RawRows: composite types split, unsupported types flagged, `to_ids` honoured.

Pure functions, no I/O; shared by the MISP CSV and MISP JSON readers. The type hint stays MISP's
own name (`ip-dst`, `sha256`, ...): validation maps it with `MISP_TYPES` below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from shared.core.model import FIELD_DESCRIPTION, FIELD_TYPE, FIELD_VALUE, IndicatorType, RawRow
from shared.core.vocab import yes_no

# MISP types Defender can take, and the Defender type each becomes (defender-api.md §1.5).
MISP_TYPES: dict[str, IndicatorType] = {
    "md5": IndicatorType.FileMd5,
    "sha1": IndicatorType.FileSha1,
    "sha256": IndicatorType.FileSha256,
    "ip-dst": IndicatorType.IpAddress,
    "ip-src": IndicatorType.IpAddress,
    "ip": IndicatorType.IpAddress,
    "domain": IndicatorType.DomainName,
    "hostname": IndicatorType.DomainName,
    "url": IndicatorType.Url,
    "uri": IndicatorType.Url,
    "x509-fingerprint-sha1": IndicatorType.CertificateThumbprint,
}

# Parts of a composite type that are context, not indicators: `filename|sha256` is the hash,
# `ip-dst|port` is the IP (CONTRACT.md "Normalisation": an ip|port value is the IP).
_CONTEXT_PARTS = frozenset({"filename", "port"})

# The status already says "skipped" (the HTTP API writes `skipped: <reason>`, CONTRACT.md "Outcome").
SKIP_TO_IDS = "MISP to_ids is false"
# MISP's CSV export writes `to_ids` as 1 or 0; an empty cell is a flag nobody set: not for detection.
SKIP_TO_IDS_UNSET = "MISP to_ids not set (an empty to_ids cell is false)"
SKIP_CODE = "misp-to-ids-false"


def to_ids_false(value: object) -> bool:
    """MISP writes `to_ids` as a JSON bool, or `0`/`1`, `False`/`True` in CSV exports.

    Only a no word (`core.vocab.NO_WORDS`) turns detection off: an empty or unknown value keeps MISP's
    default, true.
    """
    if isinstance(value, bool):
        return not value
    if value is None:
        return False
    return yes_no(str(value)) is False


def attribute_rows(
    line: int,
    misp_type: str,
    value: str,
    *,
    to_ids: object = True,
    comment: str | None = None,
    position: bool = False,
) -> Iterator[RawRow]:
    """One MISP attribute -> one RawRow per indicator it holds.

    `to_ids` false wins over an unsupported type (the row is `skip`, not `invalid`): the publisher
    said "not for detection", the more useful reason in a report, and MISP objects mark their
    context attributes (filename, size, port) that way. An attribute with no usable part becomes
    one row with its whole value naming its MISP type (CONTRACT.md "Outcome": unsupported type
    is `invalid`).
    """
    extra = {FIELD_DESCRIPTION: comment} if comment else {}
    skip = SKIP_TO_IDS if to_ids_false(to_ids) else None
    if isinstance(to_ids, str) and not to_ids.strip():
        skip = SKIP_TO_IDS_UNSET
    t = misp_type.strip()
    types = t.split("|")
    parts = value.split("|", len(types) - 1) if len(types) > 1 else [value]
    if len(parts) != len(types):
        yield _whole(line, value, t, extra, position, skip)
        return
    usable = [
        (pt, part)
        for pt, part in zip(types, parts, strict=True)
        if pt.lower() not in _CONTEXT_PARTS and pt.lower() in MISP_TYPES
    ]
    if not usable:
        # Nothing Defender can take (`yara`, `regkey`, `filename|ssdeep`, ...): one entry, whole value.
        yield _whole(line, value, t, extra, position, skip)
        return
    for part_type, part in usable:
        yield RawRow(
            line,
            {FIELD_VALUE: part, FIELD_TYPE: part_type, **extra},
            position,
            skip=skip,
            code=SKIP_CODE if skip else None,
        )


def _whole(line: int, value: str, t: str, extra: dict[str, str], position: bool, skip: str | None) -> RawRow:
    """The attribute as one entry: skipped when to_ids is false, else invalid for its unsupported type."""
    fields = {FIELD_VALUE: value, FIELD_TYPE: t, **extra}
    if skip:
        return RawRow(line, fields, position, skip=skip, code=SKIP_CODE)
    return RawRow(line, fields, position, invalid=_bad(t), code="unsupported-type")


def _bad(misp_type: str) -> str:
    return f"unsupported type {misp_type}: not a Defender indicator type (MISP)"


def json_attribute_rows(line: int, attr: Mapping[str, object], *, position: bool = False) -> Iterator[RawRow]:
    """A MISP JSON attribute object (`{"type","value","to_ids","comment",...}`)."""
    comment = attr.get("comment")
    yield from attribute_rows(
        line,
        str(attr.get("type") or ""),
        str(attr.get("value") if attr.get("value") is not None else ""),
        to_ids=attr.get("to_ids", True),
        comment=comment if isinstance(comment, str) and comment else None,
        position=position,
    )
