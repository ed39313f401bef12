"""The tenant mirror's format: what the app keeps of a tenant between drains, so that it lists the tenant only
when the view is old, missing or known to be wrong (CONTRACT.md "Settings" [mirror], TENANT_REFRESH_MINUTES).

Pure: standard library only, no I/O. `storage.mirror` keeps the bytes in `indicator-state/<tenant key>/mirror…`
(gzip) and guards every write with the blob's ETag; `tenant.mirrored` decides when to read, list and write.

The format is NDJSON, one JSON object a line (ASCII: other characters as JSON escapes):

    {"mirror": 1, "tenant": "default", "listedAt": "…Z", "writtenAt": "…Z", "count": 2, "refresh": null}
    {"id": "17", "indicatorType": "DomainName", "indicatorValue": "evil.example", "action": "Block", …}
    {"id": "18", …, "ownerInferred": true}

- the header: `listedAt` is when the List this view descends from started (its age decides the refresh and
  the capacity margin, `capacity.analyst_margin`); `count` the record lines that follow (a blob cut short is
  unreadable, never a smaller tenant); `refresh`, when set, a drift signal seen by the last drain: the next
  one lists first.
- one line per active indicator, with the fields the steward compares (type, value, action, severity, title,
  description, device groups, alert, expiry, recommended actions), its id, owner (`createdBy`) and mark
  (`externalId`), under Defender's own names, so a line reads back through `TenantRecord.from_wire` like a
  List item. `ownerInferred`: the owner was written by the app from its own import result, not read from a
  List (see `records.TenantView`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.tenant.records import TenantRecord, TenantView, parse_time

MIRROR_FORMAT = 1
MIRROR_NAME = "mirror.ndjson.gz"


class MirrorUnreadable(ValueError):
    """The mirror's bytes are not a mirror of this tenant (cut short, another format, another tenant): list."""


def blob_name(tenant: str) -> str:
    """`<tenant key>/mirror.ndjson.gz`, inside the state container (`indicator-state`)."""
    return f"{tenant}/{MIRROR_NAME}"


@dataclass(frozen=True)
class MirrorHeader:
    tenant: str
    listed_at: datetime
    written_at: datetime
    count: int
    refresh: str | None = None  # a drift signal of the last drain: the next one lists first


# id -> the record as read or written, its `ownerInferred` flag, and its line: a record the next write finds
# unchanged (the same object, the same flag) is written with that line again instead of being encoded anew.
Lines = dict[str, tuple[TenantRecord, bool, bytes]]


@dataclass
class Mirror:
    """A mirror read back (or just written): its header and its records (expired ones still in; `view()` drops
    them), and the lines they were read from."""

    header: MirrorHeader
    records: list[TenantRecord]
    owner_inferred: set[str]
    lines: Lines = field(default_factory=dict, repr=False, compare=False)

    def view(self, now: datetime) -> TenantView:
        return TenantView(self.records, now=now, owner_inferred=self.owner_inferred)

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.header.listed_at).total_seconds())


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_to_wire(rec: TenantRecord, *, owner_inferred: bool = False) -> dict[str, Any]:
    """One record under Defender's field names (what `TenantRecord.from_wire` reads back to an equal record)."""
    out: dict[str, Any] = {
        "id": rec.id,
        "indicatorType": rec.type,
        "indicatorValue": rec.value,
        "action": rec.action,
        "severity": rec.severity,
        "title": rec.title,
        "description": rec.description,
        "rbacGroupNames": list(rec.rbacGroupNames),
        "generateAlert": rec.generateAlert,
        "expirationTime": _time(rec.expirationTime) if rec.expirationTime is not None else None,
        "externalId": rec.externalId,
        "createdBy": rec.createdBy,
        "recommendedActions": rec.recommendedActions,
    }
    if owner_inferred:
        out["ownerInferred"] = True
    return out


def encode(header: MirrorHeader, view: TenantView, *, reuse: Lines | None = None,
           keep: Lines | None = None) -> Iterator[bytes]:  # fmt: skip
    """The mirror's lines, header first, each ending in a newline (streamed: no whole-blob string is built).

    `reuse`: the lines of the mirror read at the start of the turn (`Mirror.lines`), written again for records
    that did not change; `keep`: filled with this mirror's lines, for the next write (`written`).
    """
    records = view.records
    head = {
        "mirror": MIRROR_FORMAT,
        "tenant": header.tenant,
        "listedAt": _time(header.listed_at),
        "writtenAt": _time(header.written_at),
        "count": len(records),
        "refresh": header.refresh,
    }
    yield _line(head)
    inferred = view.owner_inferred
    for rec in records:
        flag = rec.id in inferred
        old = reuse.get(rec.id) if reuse is not None else None
        if old is not None and old[0] is rec and old[1] == flag:
            line = old[2]
        else:
            line = _line(record_to_wire(rec, owner_inferred=flag))
        if keep is not None:
            keep[rec.id] = (rec, flag, line)
        yield line


def written(header: MirrorHeader, view: TenantView, lines: Lines) -> Mirror:
    """The mirror `encode(header, view, keep=lines)` wrote, as if read back (a process keeps it for its next turn)."""
    records = view.records
    head = MirrorHeader(header.tenant, header.listed_at, header.written_at, len(records), header.refresh)
    return Mirror(head, records, set(view.owner_inferred), lines)


def _line(obj: dict[str, Any]) -> bytes:
    # ASCII with \u escapes: whatever Defender answered (a lone surrogate in a title too) reads back the same.
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def decode(lines: Iterable[bytes], *, tenant: str) -> Mirror:
    """Read a mirror back; raises MirrorUnreadable when the lines are not a whole mirror of `tenant`.

    Whatever `lines` raises as a ValueError (the storage adapter's gzip errors) is unreadable too.
    """
    try:
        it = iter(lines)
        first = next(it, None)
        if first is None:
            raise MirrorUnreadable("the mirror is empty")
        header = _header(_object(first, 1), tenant)
        records, inferred, kept = _records(it)
        if len(records) != header.count:
            raise MirrorUnreadable(f"the mirror holds {len(records)} indicators, its header says {header.count}")
    except MirrorUnreadable:
        raise
    except (ValueError, TypeError) as e:
        raise MirrorUnreadable(str(e) or type(e).__name__) from e
    return Mirror(header, records, inferred, kept)


def _header(head: dict[str, Any], tenant: str) -> MirrorHeader:
    if head.get("mirror") != MIRROR_FORMAT:
        raise MirrorUnreadable(f"not a mirror of format {MIRROR_FORMAT} (header {str(head)[:80]})")
    if head.get("tenant") != tenant:
        raise MirrorUnreadable(f"the mirror is of tenant {head.get('tenant')!r}, not {tenant!r}")
    listed_at = parse_time(head.get("listedAt"))
    written_at = parse_time(head.get("writtenAt"))
    count = head.get("count")
    if listed_at is None or written_at is None or not isinstance(count, int) or count < 0:
        raise MirrorUnreadable("the mirror's header lacks listedAt, writtenAt or count")
    refresh = head.get("refresh")
    return MirrorHeader(tenant, listed_at, written_at, count, refresh if isinstance(refresh, str) else None)


def _records(lines: Iterator[bytes]) -> tuple[list[TenantRecord], set[str], Lines]:
    """The mirror's indicators after its header (line 1), the ids whose owner was only inferred, and each record's
    line as read (written back unchanged when the record did not change)."""
    records: list[TenantRecord] = []
    inferred: set[str] = set()
    kept: Lines = {}
    for n, raw in enumerate(lines, start=2):
        if not raw.strip():
            continue
        item = _object(raw, n)
        if not item.get("id") or not item.get("indicatorType") or not item.get("indicatorValue"):
            raise MirrorUnreadable(f"line {n} of the mirror is not an indicator")
        rec = TenantRecord.from_wire(item)
        records.append(rec)
        flag = item.get("ownerInferred") is True
        if flag:
            inferred.add(rec.id)
        kept[rec.id] = (rec, flag, raw if raw.endswith(b"\n") else raw + b"\n")
    return records, inferred, kept


def _object(raw: bytes, n: int) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError as e:
        raise MirrorUnreadable(f"line {n} of the mirror is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise MirrorUnreadable(f"line {n} of the mirror is not a JSON object")
    return obj


def refresh_reason(mirror: Mirror | None, problem: str | None, *, now: datetime, refresh_minutes: float) -> str | None:
    """Why the tenant must be listed before this drain decides anything; None when the mirror will do.

    In this order: no mirror (`problem` names why it could not be read, if it could not); the last drain's drift
    signal; TENANT_REFRESH_MINUTES 0 (list at the start of every drain); a mirror older than that.
    """
    if mirror is None:
        return f"the mirror cannot be used: {problem}" if problem else "there is no mirror yet"
    if mirror.header.refresh:
        return mirror.header.refresh
    if refresh_minutes <= 0:
        return "TENANT_REFRESH_MINUTES is 0: listed at the start of every drain"
    age = mirror.age_seconds(now)
    if age >= refresh_minutes * 60:
        return f"the mirror is {age / 60:.0f} minutes old (TENANT_REFRESH_MINUTES {refresh_minutes:g})"
    return None
