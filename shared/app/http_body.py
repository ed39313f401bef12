"""The HTTP import's request checks and response shapes (CONTRACT.md "HTTP API"). No I/O.

`check_body()` decides 400/413/415 before anything goes into the pipeline and names the synthetic file
the body is parsed as (`http.json`, `http.csv`, `http.txt`, `http.ndjson`), so an HTTP body goes through
the same readers as a dropped file. It decodes the body once: the items it read are kept
(`pipeline.job.SavedItems`) and are what the job iterates. `value_entries()` turns the run's outcomes into
Defender's `value` list: one entry per indicator, in input order, per the contract's status table.

Choices (documented in README "HTTP API"):
- A JSON object must carry the Defender key `Indicators` (exact case, as Defender's own endpoint
  requires, defender-api.md §1.4); an object without it is a malformed body (400 naming the key).
- An entry without `indicatorValue` is not a malformed body: it becomes an `invalid` entry in a 200
  answer, like a bad row in a file, so one bad entry never costs the caller the rest.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.core.model import FileProblem, Outcome, RawRow, ReadLimits, Status, warning
from shared.core.options import OVERRIDE_KEYS
from shared.core.text import quote
from shared.pipeline.job import SavedItems, decode_once

JSON_TYPES = frozenset({"application/json", "text/json"})
CSV_TYPES = frozenset({"text/csv", "application/csv"})
TEXT_TYPES = frozenset({"text/plain"})
# JSON Lines: one indicator object or string per line, read like an `.ndjson` file.
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"})


class HttpProblem(Exception):
    """A request the import refuses: HTTP status, a message that says what and where, extra headers."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return error_body(self.status, self.message)


def error_body(status: int, message: str) -> dict[str, object]:
    """Defender's error shape (defender-api.md §3.3), so callers handle ours like theirs."""
    codes = {
        400: "InvalidRequestBody",
        413: "RequestTooLarge",
        415: "UnsupportedMediaType",
        500: "InternalServerError",
        503: "ServiceUnavailable",
    }
    return {"error": {"code": codes.get(status, "Error"), "message": message}}


@dataclass(frozen=True)
class Body:
    """A body accepted for import: the synthetic file name that picks the reader, its size, and its items
    as the readers decoded them (once)."""

    name: str
    size: int
    items: SavedItems

    @property
    def count(self) -> int:
        """Indicator entries (rows) in the body."""
        return self.items.rows


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def media_type(headers: Mapping[str, str]) -> str:
    return _lower_keys(headers).get("content-type", "").split(";", 1)[0].strip().lower()


def check_size(headers: Mapping[str, str], body: bytes, max_bytes: int) -> None:
    """413 when Content-Length or the body actually received is over MAX_HTTP_BODY_BYTES."""
    declared = _lower_keys(headers).get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise HttpProblem(413, f"request body is {int(declared)} bytes; the limit is {max_bytes} (MAX_HTTP_BODY_BYTES)")
    if len(body) > max_bytes:
        raise HttpProblem(413, f"request body is {len(body)} bytes; the limit is {max_bytes} (MAX_HTTP_BODY_BYTES)")


def body_name(headers: Mapping[str, str]) -> str:
    """The synthetic file name a body is read as, from its content type; 415 for any other type."""
    mtype = media_type(headers)
    if mtype in NDJSON_TYPES:
        return "http.ndjson"
    if mtype in JSON_TYPES or mtype.endswith("+json"):
        return "http.json"
    if mtype in CSV_TYPES:
        return "http.csv"
    if mtype in TEXT_TYPES:
        return "http.txt"
    shown = mtype or "none"
    accepted = "application/json, application/x-ndjson, text/csv or text/plain"
    raise HttpProblem(415, f"unsupported content type {quote(shown, 80)}: send {accepted}")


def check_body(
    headers: Mapping[str, str], body: bytes, *, max_bytes: int, max_indicators: int, limits: ReadLimits | None = None
) -> Body:
    """Check size, content type and shape, decoding the body once; raise HttpProblem (413, 415, 400) or
    return the Body with its items."""
    check_size(headers, body, max_bytes)
    name = body_name(headers)
    if not body.strip():
        raise HttpProblem(400, "the request body is empty")
    if name == "http.json":
        items = decode_json_body(body, max_rows=max_indicators)
    else:
        from shared.readers import read

        reading = read(io.BytesIO(body), name, limits=limits)
        items = decode_once(reading, format=reading.format, max_rows=max_indicators)
        _refused(items, reading.format)
    if items.rows > max_indicators:
        raise HttpProblem(
            413, f"request holds {items.rows} indicators; the limit is {max_indicators} (MAX_HTTP_INDICATORS)"
        )
    return Body(name, len(body), items)


def _refused(items: SavedItems, fmt: str) -> None:
    """415 or 400 with the reader's reason for a text or CSV body it refused before any row (binary bytes, a
    PDF, a CSV header naming no indicator column): the caller gets the reason, not a 200 with nothing in it."""
    if items.rows:
        return
    problem = next((i for i in items if isinstance(i, FileProblem) and i.fatal), None)
    if problem is None:
        return
    where = f" (line {problem.line})" if problem.line else ""
    if fmt == "unsupported" or problem.message.startswith("unsupported format"):
        raise HttpProblem(415, f"the body cannot be read as {fmt_name(fmt)}: {problem.message}{where}")
    raise HttpProblem(400, f"the body cannot be read: {problem.message}{where}")


def fmt_name(fmt: str) -> str:
    return "CSV or text" if fmt in ("unsupported", "empty") else fmt


# Where a Defender import body keeps its indicators: a bare array's elements, or `Indicators`'s (the key is
# case-sensitive, as in Defender's own endpoint, defender-api.md §1.4).
_ELEMENTS = {("[]",): "", ("Indicators", "[]"): "indicators"}


def decode_json_body(body: bytes, *, max_rows: int) -> SavedItems:
    """The rows of a Defender import body, decoded once by the JSON reader's streaming walk (physical lines).

    400 with line and column when the JSON is malformed, or when it is not an import body: an object
    without `Indicators`, `Indicators` not an array, a document that is neither object nor array.
    """
    from shared.readers._json import JsonSyntaxError, element_rows, walk
    from shared.readers._unicode import scrubbed

    saved = SavedItems(format="json")
    text = _body_text(body, saved)
    elements = 0
    try:
        for path, obj, line in walk(io.StringIO(text).read):
            key = _ELEMENTS.get(path)
            if key is None:
                if path in ((), ("Indicators",)):
                    _shape_problem(text)  # a scalar document, or `Indicators` that is no array: 400
                continue
            elements += 1
            for row in scrubbed(element_rows(line, obj, strict=True, key=key)):
                if saved.rows >= max_rows and isinstance(row, RawRow):
                    saved.rows += 1  # counted for the 413 message, not kept
                else:
                    saved.add(row)
    except JsonSyntaxError as e:
        raise HttpProblem(400, f"malformed JSON at line {e.line}, column {e.column}: {e.msg}") from None
    except RecursionError:
        raise HttpProblem(400, "the JSON body is nested too deeply (arrays or objects within each other)") from None
    if not elements:
        _shape_problem(text)  # an empty array is fine; `{}` or another object is a 400 naming the key
    return saved


def _body_text(body: bytes, saved: SavedItems) -> str:
    """The JSON body as text, as files are read: UTF-16/32 after a byte order mark, else UTF-8, a line that is
    not UTF-8 read as Windows-1252; each with a file-level warning in the report."""
    from shared.readers._stream import TextLines, bom_encoding

    bom = bom_encoding(body[:4])
    if bom is not None:
        size, codec, label = bom
        saved.add(warning(f"the body is {label} text (byte order mark): decoded as {label}"))
        return body[size:].decode(codec, "replace")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        lines = TextLines(io.BytesIO(body))
        text = "".join(lines.blocks())
        shown = ", ".join(map(str, lines.fallback[:10]))
        saved.add(warning(f"not UTF-8, read as Windows-1252: line {shown}", lines.fallback[0]))
        return text


def _shape_problem(text: str) -> None:
    """Raise the 400 for a well-formed document that is no import body (only for bodies without elements:
    the one case in which such a body is decoded a second time)."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise HttpProblem(400, "the JSON body is nested too deeply (arrays or objects within each other)") from None
    if isinstance(doc, list):
        return
    if isinstance(doc, dict):
        if "Indicators" not in doc:
            keys = ", ".join(quote(k, 60) for k in list(doc)[:5]) or "none"
            raise HttpProblem(
                400,
                "missing key 'Indicators': send {\"Indicators\": [...]} (the key is case-sensitive, as in "
                f"Defender's API) or a bare array; keys found: {keys}",
            )
        items = doc["Indicators"]
        if not isinstance(items, list):
            raise HttpProblem(400, f"'Indicators' must be an array, got {type(items).__name__}")
        return
    raise HttpProblem(400, f"expected a JSON object or array, got {type(doc).__name__}")


def overrides_from_params(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters as per-file overrides (CONTRACT.md: same names as blob metadata, `dryRun` too).

    An unknown name is a 400, not ignored: `?DRY-RUN=true` silently ignored would submit for real.
    `code` is the function key, which the host checks.
    """
    out = {k: v for k, v in params.items() if k.lower() != "code"}
    unknown = sorted(k for k in out if k.strip().lower() not in OVERRIDE_KEYS)
    if unknown:
        known = ", ".join(sorted((OVERRIDE_KEYS - {"dryrun"}) | {"dryRun"}))
        shown = ", ".join(quote(k, 60) for k in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise HttpProblem(400, f"unknown query parameter {shown}; accepted: {known}")
    return out


def _where(o: Outcome) -> str:
    return f"entry {o.line}" if o.position else f"line {o.line}"


@dataclass
class _First:
    id: str | None
    is_failed: bool
    reason: str | None
    where: str


@dataclass
class ValueBuilder:
    """Collects final outcomes (in input order) and builds the `value` list from them."""

    entries: list[dict[str, object]] = field(default_factory=list)
    _first: dict[tuple[str | None, str], _First] = field(default_factory=dict)
    _first_by_line: dict[int, _First] = field(default_factory=dict)

    def add(self, o: Outcome) -> None:
        if o.status is None:
            raise ValueError("an outcome without a final status reached the HTTP answer")
        if o.status is Status.duplicate:
            first = self._first.get((o.type, o.value))
            if first is None and o.duplicate_of is not None:
                first = self._first_by_line.get(o.duplicate_of)
            if first is None:
                first = _First(None, False, None, f"line {o.duplicate_of}" if o.duplicate_of else "an earlier entry")
            dup_reason = f"duplicate of {first.where}"
            if first.reason:
                dup_reason += f" ({first.reason})"
            self.entries.append(_entry(first.id, o.value, first.is_failed, dup_reason))
            return
        is_failed, reason = _failure(o)
        entry = _entry(o.id, o.value, is_failed, reason)
        self.entries.append(entry)
        rec = _First(o.id, is_failed, reason, _where(o))
        self._first.setdefault((o.type, o.value), rec)
        self._first_by_line.setdefault(o.line, rec)


def _failure(o: Outcome) -> tuple[bool, str | None]:
    """isFailed and failureReason per CONTRACT.md "Outcome of every indicator"."""
    if o.status in (Status.submitted, Status.unchanged):
        return False, None
    if o.status is Status.failed:
        return True, o.reason or "failed"
    if o.status is Status.invalid:
        return True, f"invalid: {o.reason or 'rejected by validation'}"
    return True, f"skipped: {o.reason or 'not submitted'}"  # Status.skipped


def _entry(id_: str | None, value: str, is_failed: bool, reason: str | None) -> dict[str, object]:
    return {"id": id_, "indicator": value, "isFailed": is_failed, "failureReason": reason}


def value_entries(outcomes: Iterable[Outcome]) -> list[dict[str, object]]:
    b = ValueBuilder()
    for o in outcomes:
        b.add(o)
    return b.entries
