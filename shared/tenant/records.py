"""What the tenant holds, as the app sees it: records read back from List, the key that identifies
an indicator, and the view over all of them.

Pure: standard library only, no I/O. Facts relied on (design/defender-api.md):
- §2: 15,000 active indicators per tenant, no increase; expired indicators are deleted by Defender.
- §3.2: Import is an upsert whose key is undocumented (probably includes `action`), so an action change
  is "import the new one first, delete the old one only if the import returned a different id".
- §5: List returns `externalId` and `createdBy`; `externalId` is free text we own, `createdBy` is set by
  Defender from the caller's identity. Together they are the ownership mark (`tenant.ownership`).
- indicator-ip-domain (§4 "Network conflicts"): Allow > Warn > Block, so a stale Allow silently wins.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.core.model import Indicator
from shared.core.times import parse_iso_utc
from shared.core.vocab import HASH_TYPES, legacy_action, yes_no


def tenant_key(indicator_type: str, value: str) -> tuple[str, str]:
    """(type, value) written the way validation writes it (CONTRACT.md "Normalisation").

    Defender stores values as submitted (defender-api.md §4 "Hash case"), so our own records already
    match; this catches what analysts typed by hand (upper-case hashes, compressed IPv6, `HTTP://Host`).
    A value this cannot parse is kept as given: at worst it is not recognised and gets resubmitted.
    """
    v = value.strip()
    if indicator_type in HASH_TYPES:
        return indicator_type, v.lower()
    if indicator_type == "DomainName":
        return indicator_type, v.lower().rstrip(".")
    if indicator_type == "IpAddress":
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            return indicator_type, v
        if ip.version == 6:
            # All eight groups, no leading zeros (CONTRACT.md "Normalisation").
            return indicator_type, ":".join(f"{int(g, 16):x}" for g in ip.exploded.split(":"))
        return indicator_type, str(ip)
    if indicator_type == "Url":
        try:
            parts = urlsplit(v)
        except ValueError:
            return indicator_type, v
        if parts.scheme and parts.netloc:
            return indicator_type, urlunsplit((parts.scheme.lower(), parts.netloc.lower(), *parts[2:]))
        return indicator_type, v
    return indicator_type, v


# Values per `$filter` of a look-up by value (a peer's figure for Defender's OData, fidelity-review [NS]).
MAX_FILTER_VALUES = 20


def odata_string(value: str) -> str:
    """An OData string literal: in single quotes, a quote inside doubled (OData ABNF `SQUOTE-in-string`).
    The query string's own escaping (`?`, `&`, `#`, `%`, spaces) is the HTTP client's, through `params`."""
    return "'" + value.replace("'", "''") + "'"


def value_filter(values: Sequence[str]) -> str:
    """`indicatorValue eq 'a' or indicatorValue eq 'b'`: a List filter for up to MAX_FILTER_VALUES values."""
    if not values or len(values) > MAX_FILTER_VALUES:
        raise ValueError(f"a value filter takes 1 to {MAX_FILTER_VALUES} values, got {len(values)}")
    return " or ".join(f"indicatorValue eq {odata_string(v)}" for v in values)


def parse_time(text: Any) -> datetime | None:
    """Defender's DateTimeOffset (`2025-01-02T03:04:05Z`, `.0000000Z`, `+00:00`) as aware UTC; None if absent.

    Built on `core.times.parse_iso_utc`, the ISO parser validation's `parse_datetime` uses for users'
    dates, so both read an expiry as the same instant. What differs is Defender's side: a value may be
    absent or already a datetime, and the fraction is dropped because the second is all we compare
    (delta.expiry_unchanged). Users' US `M/D/YYYY` is not read here: Defender never writes it.
    """
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    dt = parse_iso_utc(str(text).strip())
    return dt.replace(microsecond=0) if dt is not None else None


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """One indicator as the List API returns it, reduced to what the decisions read."""

    id: str
    type: str
    value: str
    action: str
    severity: str | None = None
    title: str | None = None
    description: str | None = None
    rbacGroupNames: tuple[str, ...] = ()
    generateAlert: bool = False
    expirationTime: datetime | None = None
    externalId: str | None = None
    createdBy: str | None = None
    recommendedActions: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return tenant_key(self.type, self.value)

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> TenantRecord:
        """From one List `value` item. Tolerates missing fields and `externalID` spelling (defender-api.md §1.5)."""
        groups = item.get("rbacGroupNames") or ()
        if isinstance(groups, str):
            groups = [g for g in (p.strip() for p in groups.split(",")) if g]
        alert = item.get("generateAlert")
        if isinstance(alert, str):
            alert = yes_no(alert) is True
        ext = item.get("externalId", item.get("externalID"))
        return cls(
            id=str(item.get("id", "")),
            type=str(item.get("indicatorType", "")),
            value=str(item.get("indicatorValue", "")),
            action=_legacy_action(str(item.get("action", "")), str(item.get("indicatorType", ""))),
            severity=item.get("severity"),
            title=item.get("title"),
            description=item.get("description"),
            rbacGroupNames=tuple(sorted(str(g) for g in groups)),
            generateAlert=bool(alert),
            expirationTime=parse_time(item.get("expirationTime")),
            externalId=str(ext) if ext is not None else None,
            createdBy=item.get("createdBy"),
            recommendedActions=item.get("recommendedActions"),
        )

    def active(self, now: datetime) -> bool:
        """Defender deletes an indicator when it expires, to the second (defender-api.md §1.5)."""
        return self.expirationTime is None or self.expirationTime > now


def _legacy_action(action: str, t: str) -> str:
    # Legacy actions as validation maps them (core.vocab.LEGACY_ACTIONS, CONTRACT.md "Normalisation"), so
    # an old AlertAndBlock record compares equal to the row it maps to instead of being "replaced" by it.
    mapped = legacy_action(action, t)
    return mapped.value if mapped is not None else action


class TenantView:
    """The tenant's indicators at one moment, indexed by id and by (type, value). At most ~15,000 records (§2).

    `owner_inferred`: ids whose `createdBy` this app wrote itself when it followed an import result
    (`tenant.drain.DrainTenant.imported`) rather than read from a List. Defender's upsert may have updated a
    record someone else made in place, which only a List would show; so such a record's ownership is confirmed
    by a List before the app deletes it (`steward.Steward.after_submit`).
    """

    def __init__(
        self,
        records: Iterable[TenantRecord | Mapping[str, Any]],
        *,
        now: datetime,
        owner_inferred: Iterable[str] = (),
    ) -> None:
        self.now = now
        self._by_id: dict[str, TenantRecord] = {}
        self._by_key: dict[tuple[str, str], list[TenantRecord]] = {}
        for r in records:
            rec = r if isinstance(r, TenantRecord) else TenantRecord.from_wire(r)
            if not rec.active(now):
                continue  # expired: Defender is about to delete it; it neither counts nor matches
            self._put(rec)
        self.owner_inferred: set[str] = {i for i in owner_inferred if i in self._by_id}

    def _put(self, record: TenantRecord) -> None:
        old = self._by_id.get(record.id)
        if old is not None:
            self._unindex(old)
        self._by_id[record.id] = record
        self._by_key.setdefault(record.key, []).append(record)

    def _unindex(self, record: TenantRecord) -> None:
        kept = [r for r in self._by_key.get(record.key, []) if r.id != record.id]
        if kept:
            self._by_key[record.key] = kept
        else:
            self._by_key.pop(record.key, None)

    def add(self, record: TenantRecord, *, owner_inferred: bool = False) -> None:
        """What an import just created or updated (a drain's view follows its own results, `tenant.drain`):
        the record with this id replaced, or added. `owner_inferred`: its `createdBy` is the app's guess."""
        self._put(record)
        if owner_inferred:
            self.owner_inferred.add(record.id)
        else:
            self.owner_inferred.discard(record.id)

    def remove(self, ids: Iterable[str]) -> int:
        """Forget deleted indicators; how many the view held."""
        n = 0
        for i in ids:
            rec = self._by_id.pop(i, None)
            if rec is not None:
                self._unindex(rec)
                self.owner_inferred.discard(i)
                n += 1
        return n

    @property
    def records(self) -> list[TenantRecord]:
        return list(self._by_id.values())

    @property
    def ids(self) -> Set[str]:
        return self._by_id.keys()

    def by_id(self, id: str) -> TenantRecord | None:
        return self._by_id.get(id)

    @property
    def active_count(self) -> int:
        return len(self._by_id)

    def get(self, indicator_type: str, value: str) -> list[TenantRecord]:
        return self._by_key.get(tenant_key(indicator_type, value), [])

    def for_indicator(self, indicator: Indicator) -> list[TenantRecord]:
        return self.get(indicator.indicatorType.value, indicator.indicatorValue)
