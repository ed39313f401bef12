"""Reports: the per-input JSON and CSV reports, streamed entry by entry, and the HTML page (CONTRACT.md "Reports").

Core module: standard library only; it writes to text streams it is given and opens nothing.
The JSON report starts with the `indicators` array, written one entry at a time; every other
top-level key is written by `finish` (key order in a JSON object carries no meaning), so no
report is ever held whole in memory. Given an `html_out` stream, the writer also collects the
bounded aggregates of `html_report.HtmlAggregate` as entries go by and writes the page at `finish`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from shared.core.model import FileProblem, Ignored, Outcome, Status, Summary
from shared.core.text import scrub
from shared.core.times import format_utc
from shared.pipeline.html_aggregate import LINES_PER_GROUP, HtmlAggregate, sample
from shared.pipeline.html_report import render_page

SCHEMA_VERSION = 1
CSV_COLUMNS = ("line", "status", "indicatorType", "indicatorValue", "action", "id", "reason")
COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
FAILED = "failed"
MAX_REPORTED_ERRORS = 1000  # file-level problems kept in `errors`; a count of the rest follows
MAX_REPORTED_IGNORED = 1000  # ignored lines listed in `ignored`; a count of the rest follows

# OWASP "CSV Injection": a cell starting with = + - @ tab or CR can start a formula in a spreadsheet.
# Every CSV cell except `line` is text, so every one of them is neutralised with a leading `'`,
# also when the trigger follows leading whitespace. `line` is always a positive integer.
# Their fullwidth forms (U+FF1D ＝, U+FF0B ＋, U+FF0D －, U+FF20 ＠) too, as a precaution: East Asian input
# setups may take them for the ASCII ones, and no indicator value starts with one, so the `'` costs nothing.
_FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
# Every character str.isspace() accepts (all of them lie in the Basic Multilingual Plane, U+0009 to U+3000).
_SPACES = "".join(filter(str.isspace, map(chr, range(0x10000))))
# Leading whitespace neutralise() looks through: all of it except tab and CR, which are formula starts themselves.
_SKIPPED_SPACES = _SPACES.replace("\t", "").replace("\r", "")
# First characters after which neutralise() has to look closer: the formula starts and every space.
_LOOK_FIRST = _FORMULA_START | frozenset(_SPACES)
MAX_MEMO = 1024  # distinct (status, type, action, id, reason, position, code) whose row parts a writer keeps
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
        stripped = cell.lstrip(_SKIPPED_SPACES)
        if stripped[:1] in _FORMULA_START:
            return "'" + cell
    return cell


# (JSON text after the value, CSV cells before the value, CSV cells after it, both joined, nothing to quote,
# the entry's code as the JSON report writes it)
_Parts = tuple[str, tuple[str, str], tuple[str, str, str], str, str, bool, str]


# (status, type, action, id, reason, position, code): what an entry's row parts depend on
_PartsKey = tuple[Status, str | None, str | None, str | None, str | None, bool, str | None]
# The row parts with the HTML page's tally and first-lines list of the entry's group (None: not counted here)
_Memo = tuple[_Parts, list[int] | None, list[Any] | None]
# A character csv.writer (QUOTE_MINIMAL, `,`, `"`, CRLF) would quote a cell for; NUL is left to it too.
_CSV_QUOTED = re.compile('[,"\r\n\0]').search


def _needs_quotes(cell: str) -> bool:
    """Whether csv.writer would quote the cell (see `_CSV_QUOTED`)."""
    return _CSV_QUOTED(cell) is not None


def _csv_cell(text: str | None) -> str:
    return neutralise(text) if text else ""


def _json_text(text: str | None) -> str:
    return "null" if text is None else _enc(text)


def _row_parts(
    status: Status,
    typ: str | None,
    action: str | None,
    oid: str | None,
    reason: str | None,
    position: bool,
    code: str | None,
) -> _Parts:
    """The parts of one entry's JSON object and CSV row that do not depend on its line and value.

    An outcome without a code (a producer that gives none) is written with its status as its code, so every
    entry of the JSON report has one.
    """
    status_text = _STATUS[status]
    # Whatever reached the writer, what it writes encodes as UTF-8 (readers already take lone surrogates out).
    typ, action, oid, reason = (None if t is None else scrub(t) for t in (typ, action, oid, reason))
    code = code or status_text
    json_tail = (
        f', "indicatorType": {_json_text(typ)}, "action": {_json_text(action)}, "status": "{status_text}", '
        f'"id": {_json_text(oid)}, "reason": {_json_text(reason)}, "code": {_enc(code)}'
        + (', "position": true}' if position else "}")
    )
    head = (status_text, _csv_cell(typ))
    tail = (_csv_cell(action), _csv_cell(oid), _csv_cell(reason))
    plain = not any(_needs_quotes(c) for c in (*head, *tail))
    return json_tail, head, tail, ",".join(head), ",".join(tail), plain, code


# Azure's limit on a blob name, in characters (Naming and Referencing Containers, Blobs, and Metadata).
MAX_BLOB_NAME = 1024
_LONGEST_SUFFIX = len(".report.json")  # .report.html is as long; .report.csv shorter


def report_stem(blob_path: str) -> tuple[str, bool]:
    """The part of the report names before `.report.json` / `.csv` / `.html`, and whether it was shortened.

    The full path is kept (CONTRACT.md "Reports") unless a report name would pass Azure's 1,024-character
    limit; then it is `<first part>…<sha256[:16]>` (the hash of the whole path, so two long names that share
    their start still get different reports). The idempotency lookup uses this same rule.
    """
    if len(blob_path) + _LONGEST_SUFFIX <= MAX_BLOB_NAME:
        return blob_path, False
    digest = hashlib.sha256(blob_path.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    keep = MAX_BLOB_NAME - _LONGEST_SUFFIX - len(digest) - 1
    return f"{blob_path[:keep]}…{digest}", True


def report_names(blob_path: str) -> tuple[str, str]:
    """`<path>` → (`<path>.report.json`, `<path>.report.csv`): the full path is kept (CONTRACT.md), shortened
    only past Azure's blob-name limit (`report_stem`)."""
    stem, _ = report_stem(blob_path)
    return f"{stem}.report.json", f"{stem}.report.csv"


def html_name(json_name: str) -> str:
    """The HTML page beside a JSON report: `<name>.report.json` → `<name>.report.html`."""
    return json_name.removesuffix(".json") + ".html"


def run_status(summary: Summary, errors: Sequence[FileProblem], *, nothing_read: bool, unreachable: bool) -> str:
    """`completed`, `completed_with_errors` or `failed` (CONTRACT.md "Reports").

    `nothing_read`: a fatal file-level problem before any row; `unreachable`: Defender or the identity
    endpoint could not be reached at all. Either makes the run `failed`.
    """
    if nothing_read or unreachable:
        return FAILED
    if summary.failed or summary.invalid or any(not e.warning for e in errors):
        return COMPLETED_WITH_ERRORS
    return COMPLETED


class ReportWriter:
    """Streams one JSON and one CSV report; `add` once per final Outcome, `finish` once at the end.

    With `html_out`, `finish` also writes the HTML page there (`html_report.render_page`), from aggregates of
    bounded size collected by `add`.
    """

    def __init__(
        self,
        json_out: TextIO,
        csv_out: TextIO,
        *,
        source: Mapping[str, object],
        started_at: datetime,
        dry_run: bool,
        html_out: TextIO | None = None,
    ) -> None:
        self.source = dict(source)  # `format` is added by `finish` once the reader knows it
        self.started_at = started_at
        self.dry_run = dry_run
        self.entries = 0
        self._json = json_out
        self._csv_out = csv_out
        self._csv = csv.writer(csv_out, lineterminator="\r\n")
        self._parts: dict[_PartsKey, _Memo] = {}
        self._errors: list[dict[str, Any]] = []
        self._errors_omitted = 0
        self._ignored: list[dict[str, Any]] = []
        self._ignored_omitted = 0
        self._finished = False
        self._html = html_out
        self.html_aggregate = HtmlAggregate() if html_out is not None else None
        self._json.write('{"schemaVersion": 1, "indicators": [')
        self._csv.writerow(CSV_COLUMNS)

    def add(self, outcome: Outcome) -> None:
        """Write one entry to both reports; the outcome must carry its final status."""
        status = outcome.status
        if status is None:
            raise ValueError(f"line {outcome.line}: an entry without a final status cannot be reported")
        # Everything but `line` and the value repeats from entry to entry (type, action, status, reason),
        # so those parts of both rows are built once per combination (a bounded memo).
        # The HTML page's counters ride on the same memo: a kept combination carries its own tally (and the
        # first-lines list of its group when it is rejected or failed), so counting it costs one increment.
        key = (status, outcome.type, outcome.action, outcome.id, outcome.reason, outcome.position, outcome.code)
        memo = self._parts.get(key)
        if memo is None:
            parts, tally, lines = self._new_parts(key, outcome)
        else:
            parts, tally, lines = memo
        if tally is not None:
            tally[0] += 1
            if lines is not None and len(lines) < LINES_PER_GROUP:
                lines.append(sample(outcome))
        json_tail, head, tail, csv_head, csv_tail, csv_plain, _code = parts
        value = outcome.value
        if not value.isascii():
            value = scrub(value)
        line = str(outcome.line)
        sep = "\n" if self.entries == 0 else ",\n"
        self._json.write(f'{sep}{{"line": {line}, "indicatorValue": {_enc(value)}{json_tail}')
        cell = neutralise(value) if value and value[0] in _LOOK_FIRST else value
        if csv_plain and _CSV_QUOTED(cell) is None:
            # Nothing csv.writer would quote (QUOTE_MINIMAL): the same line for a third of the cost.
            self._csv_out.write(f"{line},{csv_head},{cell},{csv_tail}\r\n")
        else:
            self._csv.writerow((line, *head, cell, *tail))
        self.entries += 1

    def _new_parts(self, key: _PartsKey, outcome: Outcome) -> _Memo:
        """The row parts of a combination not seen yet, kept (with the HTML page's tally and first-lines list of
        its group) unless it carries an id (ids are unique: not worth keeping) or the memo is full."""
        parts = _row_parts(*key)
        tally = lines = None
        if key[3] is None and len(self._parts) < MAX_MEMO:
            if self.html_aggregate is not None:
                tally, lines = self.html_aggregate.tally(key[0], outcome.type, parts[6])
            self._parts[key] = (parts, tally, lines)
        elif self.html_aggregate is not None:
            self.html_aggregate.add(key[0], outcome, parts[6])
        return parts, tally, lines

    def ignored(self, item: Ignored) -> None:
        """Record an ignored line for the JSON report's `ignored`: the first MAX_REPORTED_IGNORED with their first
        80 characters, then only a count (CONTRACT.md "Reports" [recall]: ignored lines are visible)."""
        if len(self._ignored) < MAX_REPORTED_IGNORED:
            self._ignored.append({"line": item.line, "text": scrub(item.text), "reason": item.reason})
        else:
            self._ignored_omitted += 1

    def _ignored_listing(self) -> list[dict[str, Any]]:
        out = list(self._ignored)
        if self._ignored_omitted:
            n = self._ignored_omitted
            out.append({"count": n, "message": f"{n} further ignored lines not listed"})
        return out

    def error(self, problem: FileProblem) -> None:
        """Record a file-level problem for the JSON report's `errors`."""
        if len(self._errors) < MAX_REPORTED_ERRORS:
            self._errors.append(problem.as_dict())
        else:
            self._errors_omitted += 1

    def finish(
        self,
        summary: Summary,
        status: str,
        *,
        finished_at: datetime,
        extra: Mapping[str, object] | None = None,
        format: str | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        """Close the `indicators` array and write the other top-level keys; `extra` adds keys (e.g. `tenant`),
        `format` the input's detected format to `source`."""
        if self._finished:
            raise RuntimeError("report already finished")
        self._finished = True
        if format is not None:
            self.source.setdefault("format", format)
        for key, val in (details or {}).items():
            self.source.setdefault(key, val)  # what the reader decided (CSV: `valueColumns`, the rule that took them)
        errors = list(self._errors)
        if self._errors_omitted:
            errors.append({"message": f"{self._errors_omitted} further file-level problems not listed"})
        tail: dict[str, Any] = {
            "source": self.source,
            "startedAt": format_utc(self.started_at),
            "finishedAt": format_utc(finished_at),
            "dryRun": self.dry_run,
            "status": status,
            "summary": summary.as_dict(),
            "errors": errors,
            "ignored": self._ignored_listing(),
        }
        for key, val in (extra or {}).items():
            if key in tail or key in ("schemaVersion", "indicators"):
                raise ValueError(f"extra key {key!r} would overwrite a report field")
            tail[key] = val
        page = None
        if self._html is not None and self.html_aggregate is not None:
            page = render_page(
                source=self.source,
                started_at=tail["startedAt"],
                finished_at=tail["finishedAt"],
                dry_run=self.dry_run,
                status=status,
                summary=tail["summary"],
                errors=self._errors,
                errors_omitted=self._errors_omitted,
                tenant=tail.get("tenant"),
                aggregate=self.html_aggregate,
            )
        body = scrub(json.dumps(tail, ensure_ascii=False, indent=None))
        self._json.write(("\n]" if self.entries else "]") + ", " + body[1:] + "\n")
        if page is not None and self._html is not None:
            self._html.write(page)
