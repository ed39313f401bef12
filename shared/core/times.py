"""Times as the app reads and writes them: ISO 8601 in, `YYYY-MM-DDTHH:MM:SSZ` out.

Core module: standard library only, no I/O. The shared part of two parsers that must differ around it:
`checks.rules.parse_datetime` reads what users write (adds US `M/D/YYYY`, CONTRACT.md "Normalisation") and
`tenant.records.parse_time` reads Defender's answers (adds absent values and datetimes, compares to the
second). Both build on `parse_iso_utc`, so an ISO time means the same instant to validation and to the
tenant's decisions.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso_utc(text: str) -> datetime | None:
    """ISO 8601 (any offset, `Z` or `z`, date only, .NET's seven fractional digits) → aware UTC, or None.

    A time without offset is UTC. None when `text` (already trimmed) is not an ISO time, or when it lies
    past the last datetime once in UTC (`9999-12-31T23:59:59-01:00`).
    """
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        return None


def format_utc(dt: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: how expiry dates are sent (CONTRACT.md "Normalisation") and reports stamp times."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
