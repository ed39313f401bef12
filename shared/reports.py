"""Reports: the per-input JSON and CSV reports, streamed entry by entry (CONTRACT.md "Reports").

Core module: standard library only; it writes to text streams it is given and opens nothing.
The JSON report starts with the `indicators` array, written one entry at a time; every other
top-level key is written by `finish` (key order in a JSON object carries no meaning), so no
report is ever held whole in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.model import FileProblem, Outcome, Status, Summary

SCHEMA_VERSION = 1
CSV_COLUMNS = ("line", "status", "indicatorType", "indicatorValue", "action", "id", "reason")
COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
FAILED = "failed"
MAX_REPORTED_ERRORS = 1000  # file-level problems kept in `errors`; a count of the rest follows

# OWASP "CSV Injection": a cell starting with = + - @ tab or CR can start a formula in a spreadsheet.
# Every CSV cell except `line` is text, so every one of them is neutralised with a leading `'`,
# also when the trigger follows leading whitespace. `line` is always a positive integer.
_FORMULA_START = frozenset("=+-@\t\r")
# First characters after which neutralise() has to look closer: the formula starts and every character
# str.isspace() accepts (all of them lie in the Basic Multilingual Plane, U+0009 to U+3000).
_LOOK_FIRST = _FORMULA_START | frozenset(filter(str.isspace, map(chr, range(0x10000))))
# One JSON report entry (`line` is an int); every string goes through the C encoder (`_enc`).
_JSON_ENTRY = (
    '%s{"line": %s, "indicatorValue": %s, "indicatorType": %s, "action": %s, "status": "%s", "id": %s, "reason": %s%s'
)
_STATUS = {s: s.value for s in Status}  # Enum.value is a slow descriptor on the hot path
_enc = json.encoder.encode_basestring  # type: ignore[attr-defined]  # the C string encoder, no ASCII escaping


def neutralise(cell: str) -> str:
    """The cell, prefixed with `'` if a spreadsheet could read it as a formula."""
    if not cell:
        return cell
    first = cell[0]
    if first in _FORMULA_START:
        return "'" + cell
    if first.isspace():
        stripped = cell.lstrip(" \n\x0b\x0c\xa0")
        if stripped[:1] in _FORMULA_START:
            return "'" + cell
    return cell


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_names(blob_path: str) -> tuple[str, str]:
    """`<path>` → (`<path>.report.json`, `<path>.report.csv`): the full path is kept (CONTRACT.md)."""
    return f"{blob_path}.report.json", f"{blob_path}.report.csv"


def run_status(summary: Summary, errors: Sequence[FileProblem], *, nothing_read: bool, unreachable: bool) -> str:
    """`completed`, `completed_with_errors` or `failed` (CONTRACT.md "Reports").

    `nothing_read`: a fatal file-level problem before any row; `unreachable`: Defender or the identity
    endpoint could not be reached at all. Either makes the run `failed`.
    """
    if nothing_read or unreachable:
        return FAILED
    if summary.failed or summary.invalid or errors:
        return COMPLETED_WITH_ERRORS
    return COMPLETED


class ReportWriter:
    """Streams one JSON and one CSV report; `add` once per final Outcome, `finish` once at the end."""

    def __init__(
        self, json_out: TextIO, csv_out: TextIO, *, source: dict[str, Any], started_at: datetime, dry_run: bool
    ) -> None:
        self.source = dict(source)  # `format` may be added once the reader knows it
        self.started_at = started_at
        self.dry_run = dry_run
        self.entries = 0
        self._json = json_out
        self._csv_out = csv_out
        self._csv = csv.writer(csv_out, lineterminator="\r\n")
        self._errors: list[dict[str, Any]] = []
        self._errors_omitted = 0
        self._finished = False
        self._json.write('{"schemaVersion": 1, "indicators": [')
        self._csv.writerow(CSV_COLUMNS)

    def add(self, outcome: Outcome) -> None:
        """Write one entry to both reports; the outcome must carry its final status."""
        status = outcome.status
        if status is None:
            raise ValueError(f"line {outcome.line}: an entry without a final status cannot be reported")
        status_text = _STATUS[status]
        value = outcome.value
        typ = outcome.type
        action = outcome.action
        oid = outcome.id
        reason = outcome.reason
        self._json.write(
            _JSON_ENTRY
            % (
                "\n" if self.entries == 0 else ",\n",
                outcome.line,
                _enc(value),
                "null" if typ is None else _enc(typ),
                "null" if action is None else _enc(action),
                status_text,
                "null" if oid is None else _enc(oid),
                "null" if reason is None else _enc(reason),
                ', "position": true}' if outcome.position else "}",
            )
        )
        # neutralise() only where the first character could start a formula (most cells are plain).
        n = neutralise
        look = _LOOK_FIRST
        cells = (
            str(outcome.line),
            status_text,
            (n(typ) if typ[0] in look else typ) if typ else "",
            n(value) if value and value[0] in look else value,
            (n(action) if action[0] in look else action) if action else "",
            (n(oid) if oid[0] in look else oid) if oid else "",
            (n(reason) if reason[0] in look else reason) if reason else "",
        )
        row = ",".join(cells)
        if row.count(",") == 6 and '"' not in row and "\r" not in row and "\n" not in row and "\0" not in row:
            # Nothing csv.writer would quote (QUOTE_MINIMAL: delimiter, quote, line breaks): the same
            # line, a third of the cost.
            self._csv_out.write(row + "\r\n")
        else:
            self._csv.writerow(cells)
        self.entries += 1

    def error(self, problem: FileProblem) -> None:
        """Record a file-level problem for the JSON report's `errors`."""
        if len(self._errors) < MAX_REPORTED_ERRORS:
            self._errors.append(problem.as_dict())
        else:
            self._errors_omitted += 1

    def finish(
        self, summary: Summary, status: str, *, finished_at: datetime, extra: dict[str, Any] | None = None
    ) -> None:
        """Close the `indicators` array and write the other top-level keys; `extra` adds keys (e.g. `tenant`)."""
        if self._finished:
            raise RuntimeError("report already finished")
        self._finished = True
        errors = list(self._errors)
        if self._errors_omitted:
            errors.append({"message": f"{self._errors_omitted} further file-level problems not listed"})
        tail: dict[str, Any] = {
            "source": self.source,
            "startedAt": _utc(self.started_at),
            "finishedAt": _utc(finished_at),
            "dryRun": self.dry_run,
            "status": status,
            "summary": summary.as_dict(),
            "errors": errors,
        }
        for key, val in (extra or {}).items():
            if key in tail or key in ("schemaVersion", "indicators"):
                raise ValueError(f"extra key {key!r} would overwrite a report field")
            tail[key] = val
        body = json.dumps(tail, ensure_ascii=False, indent=None)
        self._json.write(("\n]" if self.entries else "]") + ", " + body[1:] + "\n")
