"""Import jobs as records: what a queued job is, the states it goes through, and how its pieces are written.

Pure: standard library only, no I/O (the job store in `storage/jobs.py` keeps these as blobs). The model
(CONTRACT.md "HTTP API" [jobs]): a job record in JOBS_CONTAINER is the truth about one input's import; a queue
message is only a doorbell naming the job.

- A blob job's id is derived from the blob's container, name and ETag, so two deliveries of one event are one
  job; an HTTP job's id is a random 128-bit value.
- `checkpoint` counts the input's entries whose final outcome is already in the job's progress log: a retried
  or redelivered job continues after it (at most the batch in flight is sent again; import is an upsert).
- `first_failure_at` starts the retry window of an unavailable Defender or identity endpoint (or of a `403`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from shared.core.model import FileProblem, Ignored, Outcome, RawRow, ReaderItem, Status
from shared.core.times import format_utc, parse_iso_utc

DEFAULT_TENANT = "default"


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    retrying = "retrying"
    completed = "completed"
    failed = "failed"


FINAL_STATES = frozenset({JobState.completed, JobState.failed})


def blob_job_id(container: str, name: str, etag: str) -> str:
    """One id per blob version: the same event delivered twice (or concurrently) is one job."""
    digest = hashlib.sha256(f"{container}\n{name}\n{etag.strip().strip(chr(34))}".encode()).hexdigest()
    return "b" + digest[:31]


def http_job_id() -> str:
    """A random 128-bit id (32 hex digits): unguessable, so a job's status URL names it alone."""
    return secrets.token_hex(16)


def looks_like_job_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text[1:]) and text[0] in "0123456789abcdefb"


@dataclass
class JobRecord:
    """One job's state. `input` says where its input is (claim check): a blob's `container`, `name`, `etag`,
    `size`; or, for HTTP, the saved rows' blob (`rows`), the body's synthetic `name`, `size` and `format`."""

    id: str
    kind: str  # "blob" | "http"
    input: dict[str, object]
    report: str  # the JSON report's blob name; the CSV's is beside it
    created_at: str
    started: str  # validation's clock, the same on every attempt (defaulted expiries stay equal)
    tenant: str = DEFAULT_TENANT
    state: JobState = JobState.queued
    options: dict[str, str] = field(default_factory=dict)  # per-input overrides (blob metadata, query)
    attempt: int = 0
    next_attempt_at: str | None = None
    first_failure_at: str | None = None
    checkpoint: int = 0
    total: int | None = None
    submitter: dict[str, str] | None = None
    heartbeat_at: str | None = None
    finished_at: str | None = None
    status: str | None = None  # the report's run status once final
    error: str | None = None  # why it is retrying, or why it failed
    result: str | None = None  # blob name of an HTTP job's final answer body
    coalescible: bool = False  # an HTTP job that may share import calls with others (not a dry run, not a sync)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def summary_metadata(self) -> dict[str, str]:
        """What a scan of the records reads without downloading them (blob metadata: ASCII words only)."""
        return {
            "state": self.state.value,
            "kind": self.kind,
            "tenant": self.tenant,
            "created": self.created_at,
            "coalescible": "1" if self.coalescible else "0",
            "due": self.next_attempt_at or "",
        }

    def to_json(self) -> bytes:
        out = asdict(self)
        out["state"] = self.state.value
        return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> JobRecord:
        raw = json.loads(data)
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in raw.items() if k in known}
        kw["state"] = JobState(kw.get("state", "queued"))
        return cls(**kw)


def now_text(now: datetime | None = None) -> str:
    return format_utc(now or datetime.now(UTC))


def parse_when(text: str | None) -> datetime | None:
    return parse_iso_utc(text) if text else None


def seconds_until(text: str | None, now: datetime) -> float:
    """Seconds from `now` to the time `text` names (0 when it is past or unset)."""
    when = parse_when(text)
    return max(0.0, (when - now).total_seconds()) if when else 0.0


def parse_schedule(text: str) -> tuple[float, ...]:
    """`1,5,15,60` → delays in minutes between retries (the last one repeats); fractions allowed."""
    parts = tuple(float(p) for p in (x.strip() for x in text.split(",")) if p)
    if not parts or any(p <= 0 for p in parts):
        raise ValueError(f"a comma list of positive minutes is needed, got {text!r}")
    return parts


def retry_delay(schedule: tuple[float, ...], retry: int) -> timedelta:
    """The wait before retry number `retry` (1-based): the schedule's entry, the last one repeated."""
    return timedelta(minutes=schedule[min(max(retry, 1), len(schedule)) - 1])


# --------------------------------------------------------------------------------------- saved pieces

_STATUS = {s.value: s for s in Status}


def item_to_json(item: ReaderItem) -> str:
    """One reader item as a JSON line (an HTTP body's rows, saved at POST time)."""
    if isinstance(item, RawRow):
        row: dict[str, object] = {"t": "r", "line": item.line, "fields": dict(item.fields)}
        for key in ("position", "invalid", "skip", "note"):
            value = getattr(item, key)
            if value:
                row[key] = value
        return json.dumps(row, ensure_ascii=False)
    if isinstance(item, Ignored):
        return json.dumps({"t": "i", "line": item.line, "reason": item.reason}, ensure_ascii=False)
    return json.dumps({"t": "p", **item.as_dict(), "fatal": item.fatal}, ensure_ascii=False)


def item_from_json(line: str) -> ReaderItem:
    raw = json.loads(line)
    kind = raw.pop("t")
    if kind == "r":
        return RawRow(
            line=raw["line"],
            fields=raw["fields"],
            position=raw.get("position", False),
            invalid=raw.get("invalid"),
            skip=raw.get("skip"),
            note=raw.get("note"),
        )
    if kind == "i":
        return Ignored(line=raw["line"], reason=raw["reason"])
    return FileProblem(raw["message"], line=raw.get("line"), column=raw.get("column"), fatal=raw.get("fatal", True))


_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome) if f.name != "indicator")


def outcome_to_json(o: Outcome) -> str:
    """A final outcome as one line of a job's progress log (the indicator itself is not needed any more)."""
    out: dict[str, object] = {}
    for name in _OUTCOME_FIELDS:
        value = getattr(o, name)
        if name == "status":
            value = value.value if value is not None else None
        elif isinstance(value, tuple):
            value = list(value)
        if value not in (None, False, (), []):
            out[name] = value
    return json.dumps(out, ensure_ascii=False)


def outcome_from_json(line: str) -> Outcome:
    raw = json.loads(line)
    status = raw.get("status")
    kw: dict[str, object] = {k: v for k, v in raw.items() if k in _OUTCOME_FIELDS}
    kw["status"] = _STATUS[status] if status else None
    if "notes" in kw:
        kw["notes"] = tuple(kw["notes"])  # type: ignore[arg-type]
    kw.setdefault("type", None)
    kw.setdefault("action", None)
    return Outcome(**kw)  # type: ignore[arg-type]
