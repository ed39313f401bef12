"""CSV and TSV with a header row: Defender portal template, generic IOC CSVs, MISP CSV exports.

Streams records with the stdlib `csv` module over decoded physical lines (`_stream.TextLines`: line ends
kept, so quoted fields keep their line breaks; CR, LF and CRLF alike; a line that is not UTF-8 read as
Windows-1252, and the entries of its record say so). A record with a field over the csv module's limit is an
`invalid` entry and the reading goes on. `line` is the physical line where a record starts, also
when an earlier record held quoted newlines. Values are passed raw: no trimming, no refanging.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, BinaryIO

from shared.core.model import (
    FIELD_TYPE,
    FIELD_VALUE,
    FileProblem,
    Ignored,
    RawRow,
    ReadLimits,
)
from shared.readers import _columns as cols
from shared.readers import _valuecol
from shared.readers._misp import attribute_rows
from shared.readers._stream import CP1252_NOTE, TextLines
from shared.readers._valuecol import SAMPLE_ROWS

# MISP CSV exports carry YARA rules as multi-line values; 16 MiB bounds one record's memory.
FIELD_SIZE_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))

_HASH_LIST = re.compile(r"^\s*[0-9A-Fa-f]{32,64}(?:\s*[,;|\s]\s*[0-9A-Fa-f]{32,64})+\s*$")
_MIN_HASH_LIST = 65  # two 32-digit hashes and a separator: shorter cells cannot match _HASH_LIST
_HASH_SPLIT = re.compile(r"[,;|\s]+")
# `a.example;b.example`: a `;`-separated list of host names or IPv4s (NOBELIUM's C2Domain column).
# No `/` or `:`, so a URL with `;` in its path stays one value.
_HOST_LIST = re.compile(r"^\s*[\w.-]+(?:\s*;\s*[\w.-]+)+\s*$")
_HEADER_CELL = re.compile(r"^[\w #()./-]{1,64}$", re.UNICODE)


@dataclass
class Layout:
    """Which column means what, decided once from the header."""

    kind: str  # "defender-csv" | "misp-csv" | "csv"
    value: int | None = None
    type: int | None = None
    typed: list[tuple[int, str]] = field(default_factory=list)
    fields: list[tuple[int, str]] = field(default_factory=list)
    to_ids: int | None = None
    comment: int | None = None
    longest: int = 8192  # cells longer than this are one value: no list pattern is run over them
    rule: str | None = None  # how the value columns were chosen, when not by name
    wheres: dict[int, str] = field(default_factory=dict)  # value columns -> `column 'name'`, for reasons
    # Set by `_prepare` once the columns are settled, for `_record`, which pads each record to `width` cells and
    # appends one empty cell: `value_at` / `type_at` index the value and type cells, -1 (that empty cell) when
    # there is no such column; `sources`: the cells that hold values, in order, with the type hint each gives
    # (None: the row's type cell) and the column named in reasons; `plain_types`: type cells seen not to mark a
    # pseudo-record (a file repeats a handful of them on every row).
    width: int = 0
    value_at: int = -1
    type_at: int = -1
    sources: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    plain_types: set[str] = field(default_factory=lambda: {""})


def layout_of(header: list[str]) -> Layout | None:
    """The meaning of a header row, or None when no column can hold an indicator value."""
    names = [cols.norm(h) for h in header]
    if not names or any(len(h.strip()) > 64 for h in header):
        return None
    index: dict[str, int] = {}
    for i, n in enumerate(names):
        index.setdefault(n, i)
    if {"type", "value", "toids"} <= index.keys():
        return Layout(
            "misp-csv", value=index["value"], type=index["type"], to_ids=index["toids"], comment=index.get("comment")
        )
    kind = "defender-csv" if "indicatorvalue" in index and len(index.keys() & cols.DEFENDER_TEMPLATE) >= 2 else "csv"
    value, type_col = _value_and_type_columns(index)
    typed = _typed_columns(names, value)
    if value is None and not typed:
        return None
    lay = Layout(kind, value=value, type=type_col if value is not None else None, typed=typed)
    lay.fields = _field_columns(index, kind, {lay.value, lay.type, *(i for i, _ in lay.typed)})
    return lay


def _value_and_type_columns(index: dict[str, int]) -> tuple[int | None, int | None]:
    """The value column and the column stating its type (best alias first), by normalised name."""
    value_aliases = list(cols.VALUE_ALIASES)
    type_aliases = list(cols.TYPE_ALIASES)
    if "indicator" in index and "data" in index:
        # Sophos: `Indicator,Data,Note` names the type "Indicator" and the value "Data".
        value_aliases.remove("indicator")
        type_aliases.insert(0, "indicator")
    value = next((index[a] for a in value_aliases if a in index), None)
    type_col = next((index[a] for a in type_aliases if a in index and index[a] != value), None)
    return value, type_col


def _typed_columns(names: list[str], value: int | None) -> list[tuple[int, str]]:
    """Columns named after a type, with the hint each gives.

    Beside a value column only the EXTRA typed columns add indicators; without one, every column named after a
    type does (Mandiant's `md5,sha1,sha256`).
    """
    return [
        (i, cols.TYPED_COLUMNS[n])
        for i, n in enumerate(names)
        if n in cols.TYPED_COLUMNS and i != value and (value is None or n in cols.EXTRA_TYPED_COLUMNS)
    ]


def _field_columns(index: dict[str, int], kind: str, used: set[int | None]) -> list[tuple[int, str]]:
    """(column, canonical field) for the other fields: the first alias present that no other use took."""
    aliases = dict(cols.FIELD_ALIASES)
    if kind == "defender-csv":
        aliases.update(cols.DEFENDER_ONLY_FIELDS)
    found: list[tuple[int, str]] = []
    for canonical, names_for in aliases.items():
        col = next((index[a] for a in names_for if a in index and index[a] not in used), None)
        if col is not None:
            found.append((col, canonical))
            used.add(col)
    return found


def header_like(cells: list[str]) -> bool:
    """Cells that read as column names (short words), not as data."""
    return bool(cells) and all(_HEADER_CELL.match(c.strip().lstrip("\ufeff")) for c in cells if c.strip())


def sniff_delimiter(first_line: str, name: str) -> str:
    if name.lower().endswith(".tsv"):
        return "\t"
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Lines:
    """Feeds physical lines to csv.reader and tells where each record starts.

    Comment lines (`#` at the start of a record) and blank lines between records are taken out
    here, so a `#` inside a quoted multi-line field is never mistaken for a comment.
    """

    def __init__(self, text: TextLines) -> None:
        self._text = text
        self.number = 0
        self.record_start = 0
        self.at_record_start = True
        self.comments: list[tuple[int, str]] = []
        self.keep_comments = True
        # The physical lines of the latest record that spanned several (quoted line breaks), and its first
        # line number: kept to tell, at the end of the file, whether its quoted field was ever closed.
        self.spanned: list[str] = []
        self.spanned_from = 0
        self._lines = self._physical()

    def __iter__(self) -> Iterator[str]:
        return self._lines  # csv.reader and `yield from` drive the generator itself (no method call per line)

    def __next__(self) -> str:
        return next(self._lines)

    def _physical(self) -> Iterator[str]:
        number = 0
        head = ""
        for line in self._text:
            number += 1
            self.number = number
            if self.at_record_start:
                first = line[0]
                if first == "#" or first.isspace():  # only then can the line be blank or a comment
                    stripped = line.strip()
                    if not stripped:
                        continue
                    if stripped.startswith("#"):
                        if self.keep_comments and len(self.comments) < 64:
                            self.comments.append((number, stripped))
                        continue
                self.record_start = number
                self.at_record_start = False
                head = line
            elif self.spanned_from != self.record_start:
                self.spanned_from = self.record_start
                self.spanned = [head, line]
            else:
                self.spanned.append(line)
            yield line

    def unclosed_quote(self, delimiter: str) -> bool:
        """Whether the file ended inside a quoted field of its last record (the csv module then takes
        every line after the opening quote as that one field, without a word)."""
        if not self.spanned_from or self.spanned_from != self.record_start:
            return False
        # Closed: the record and the probe line parse as two records; unclosed: the probe is swallowed too.
        return sum(1 for _ in csv.reader([*self.spanned, "probe\n"], delimiter=delimiter)) < 2


@dataclass
class _Head:
    """What the first records of a CSV told: its csv reader, header row and line, the layout and a record that a
    commented header turned into data (abuse.ch)."""

    reader: Any
    header: list[str]
    line: int
    lay: Layout | None
    pending: tuple[int, list[str]] | None
    delimiter: str


def read_csv(
    stream: BinaryIO,
    name: str,
    delimiter: str | None = None,
    *,
    limits: ReadLimits | None = None,
    details: dict[str, Any] | None = None,
) -> Iterator[RawRow | Ignored | FileProblem]:
    """Records -> RawRows; the header decides the layout (see `layout_of`), or, when its names say nothing, the
    content of the first records (`_valuecol.choose`). `details` receives `valueColumns`: the columns taken and
    the rule that took them, for the report's `source`."""
    text = TextLines(stream)
    lines = _Lines(text)
    head = _head(lines, name, delimiter)
    if isinstance(head, FileProblem):
        yield head
        return
    sample: list[tuple[int, list[str] | csv.Error]] = []
    lay = head.lay
    if lay is None or _may_hold_references(lay):
        sample = _sample(head.reader, lines)
    if lay is None:
        lay = _by_content(head.header, sample)
        if lay is None:
            yield _no_value_column(head.header, len(sample), head.line)
            return
    elif sample:
        _drop_references(lay, head.header, sample)
    _prepare(lay, head.header, limits, details)
    items_of = _misp_record if lay.kind == "misp-csv" else _record  # chosen once, not per record
    if head.pending is not None:
        line, cells = head.pending  # a copy: `_record` pads the list it is given
        yield from _noted(text, line, line, items_of(lay, line, list(cells)))
    for start, record in sample:
        yield from (
            _noted(text, start, start, items_of(lay, start, record))
            if isinstance(record, list)
            else [_unreadable(start, record)]
        )
    yielded = yield from _body(head.reader, lines, text, lay, items_of)
    if not (yielded or sample or head.pending):
        yield _no_rows(head.header, head.line)
    if lines.unclosed_quote(head.delimiter):
        yield FileProblem(
            f"a quoted field opened in the record of line {lines.spanned_from} is never closed: lines "
            f"{lines.spanned_from} to {lines.number} were read as that one record (check the quotes)",
            line=lines.spanned_from,
        )


def _head(lines: _Lines, name: str, delimiter: str | None) -> _Head | FileProblem:
    """The header and layout, or the file-level problem that stops the reading before any record."""
    try:
        first = next(lines)
        delimiter = delimiter or sniff_delimiter(first, name)
        reader = csv.reader(chain((first,), lines), delimiter=delimiter)  # chain: no Python frame per line
        header = next(reader)
        head = _Head(reader, header, lines.record_start or 1, layout_of(header), None, delimiter)
        lines.at_record_start = True
        if head.lay is None or not header_like(header):
            head.lay = None
            # abuse.ch hides the header in a comment: `# id,dateadded,url,...`.
            for _, comment in reversed(lines.comments):
                cells = next(csv.reader([comment.lstrip("#").strip()], delimiter=delimiter), [])
                candidate = layout_of(cells)
                if candidate is not None and len(cells) >= 3 and header_like(cells):
                    head.lay, head.pending = candidate, (lines.record_start, header)
                    break
        lines.keep_comments = False
    except StopIteration:
        return FileProblem("empty CSV file: no header row")
    except csv.Error as exc:
        return FileProblem(f"CSV error: {exc}", line=lines.number)
    return head


def _prepare(lay: Layout, header: list[str], limits: ReadLimits | None, details: dict[str, Any] | None) -> None:
    """The layout's columns settled: what reasons name them, and the plan `_record` reads cells by."""
    _describe(lay, header, details)
    lay.longest = (limits or ReadLimits()).max_value_length
    columns = (lay.value, *(j for j, _ in lay.typed))
    lay.wheres = {i: f"column {header[i].strip()!r}" for i in columns if i is not None and i < len(header)}
    used = [i for i in (lay.value, lay.type, lay.to_ids, lay.comment) if i is not None]
    lay.width = 1 + max((*used, *(i for i, _ in lay.fields), *(i for i, _ in lay.typed)), default=-1)
    lay.value_at = -1 if lay.value is None else lay.value
    lay.type_at = -1 if lay.type is None else lay.type
    lay.sources = [(lay.value, None, lay.wheres.get(lay.value))] if lay.value is not None else []
    lay.sources.extend((i, hint, lay.wheres.get(i)) for i, hint in lay.typed)


def _unreadable(start: int, error: csv.Error) -> RawRow:
    return RawRow(start, {FIELD_VALUE: ""}, invalid=f"this record cannot be read as CSV: {error}", code="csv-record")


# `_record` or `_misp_record`: one record's items, by the layout.
_Items = Callable[[Layout, int, list[str]], list[RawRow | Ignored]]


def _body(
    reader: Any, lines: _Lines, text: TextLines, lay: Layout, items_of: _Items
) -> Generator[RawRow | Ignored, None, bool]:
    """The records after the header (and the sample); returns whether there was any."""
    yielded = False
    while True:
        try:
            for record in reader:
                yielded = True
                start = lines.record_start
                lines.at_record_start = True
                items = items_of(lay, start, record)
                if text.fallback:
                    items = _noted(text, start, lines.number, items)
                yield from items
            return yielded
        except csv.Error as exc:
            # One bad record (a field over the csv module's limit): an invalid entry, and the rest of the file
            # is still read (the reader resumes at the next physical line).
            yielded = True
            start = lines.record_start
            lines.at_record_start = True
            yield _unreadable(start, exc)


def _sample(reader: Any, lines: _Lines) -> list[tuple[int, list[str] | csv.Error]]:
    """The first SAMPLE_ROWS records with their start lines (a record the csv module cannot read: its error)."""
    out: list[tuple[int, list[str] | csv.Error]] = []
    while len(out) < SAMPLE_ROWS:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.append((lines.record_start, exc))
            lines.at_record_start = True
            continue
        out.append((lines.record_start, record))
        lines.at_record_start = True
    return out


def _records(sample: list[tuple[int, list[str] | csv.Error]]) -> list[list[str]]:
    return [r for _, r in sample if not isinstance(r, csv.Error)]


def _by_content(header: list[str], sample: list[tuple[int, list[str] | csv.Error]]) -> Layout | None:
    """A layout from the content of the first records, for a header whose names say nothing (`_valuecol`)."""
    if len(header) < 2 or not header_like(header) or any(_valuecol.looks_like_value(c) for c in header):
        return None
    choice = _valuecol.choose(header, _records(sample))
    if choice is None:
        return None
    lay = Layout("csv")
    if len(choice.columns) == 1:
        lay.value = choice.columns[0][0]
    else:
        lay.typed = list(choice.columns)
    lay.rule = choice.rule
    return lay


def _may_hold_references(lay: Layout) -> bool:
    """Several columns named after types, one of URLs or hosts: one of them may be a column of reference links."""
    return lay.value is None and len(lay.typed) >= 2 and any(h in _LINKISH_HINTS for _, h in lay.typed)


_LINKISH_HINTS = frozenset({"url", "domain", "hostname"})


def _drop_references(lay: Layout, header: list[str], sample: list[tuple[int, list[str] | csv.Error]]) -> None:
    """Typed URL/host columns whose values are links to a threat-intel site are references, not indicators."""
    drop = _valuecol.reference_columns(header, [i for i, _ in lay.typed], _records(sample))
    if drop and len(drop) < len(lay.typed):
        lay.typed = [(i, h) for i, h in lay.typed if i not in drop]


def _describe(lay: Layout, header: list[str], details: dict[str, Any] | None) -> None:
    if details is None:
        return
    taken = [lay.value] if lay.value is not None else [i for i, _ in lay.typed]
    rule = lay.rule or "named: the header names it as an indicator column"
    details["valueColumns"] = [
        {"column": header[i].strip() if i < len(header) else str(i), "rule": rule} for i in taken
    ]


def _no_value_column(header: list[str], rows: int, line: int) -> FileProblem:
    names = ", ".join(h.strip() for h in header[:20]) + (", …" if len(header) > 20 else "")
    seen = f"the first {rows} rows were looked at" if rows else "no rows below it"
    return FileProblem(
        f"a header with columns {names}; no column holds indicators ({seen}; name the value column e.g. "
        "IndicatorValue, value, indicator, ioc, url, domain, ip, md5, sha1 or sha256)",
        line=max(1, line),
    )


def _no_rows(header: list[str], line: int) -> FileProblem:
    names = ", ".join(h.strip() for h in header[:20]) + (", …" if len(header) > 20 else "")
    return FileProblem(f"a header with columns {names}; no rows below it", line=max(1, line))


def _noted(text: TextLines, first: int, last: int, items: list[RawRow | Ignored]) -> list[RawRow | Ignored]:
    """The record's entries, each noting that a line of it was read as Windows-1252 when one was."""
    if not text.take_fallback(first, last):
        return items
    return [
        RawRow(i.line, i.fields, i.position, i.invalid, i.skip, CP1252_NOTE, i.code) if type(i) is RawRow else i
        for i in items
    ]


def _cell(record: list[str], i: int | None) -> str:
    return record[i] if i is not None and i < len(record) else ""


def _record(lay: Layout, line: int, record: list[str]) -> list[RawRow | Ignored]:
    """The items of one record, as a list (cheaper than a generator per record); `_prepare` made the plan."""
    n = len(record)
    if n < lay.width:  # a short record: the cells it lacks are empty
        record.extend([""] * (lay.width - n))
    record.append("")  # record[-1]: the cell of a column the layout lacks (`Layout.value_at`, `type_at`)
    common: dict[str, str] = {}
    for col, canonical in lay.fields:  # a loop: a comprehension costs a function call per record
        cell = record[col]
        if cell:
            common[canonical] = cell
    type_cell = record[lay.type_at]
    if type_cell not in lay.plain_types and _pseudo_record(lay, type_cell):
        return [Ignored(line, f"not an indicator record: {type_cell.strip()}", ",".join(record[:n])[:80])]
    out: list[RawRow | Ignored] = []
    for col, hint, where in lay.sources:
        cell = record[col]
        if not cell.strip():
            continue
        if hint is None:  # the value column: typed by the row's type cell, when it has one
            hint = type_cell or None
        # `_split` only when the cell may hold several values (the tests it starts with, without its call).
        for part in _split(cell, lay.longest) if len(cell) >= _MIN_HASH_LIST or ";" in cell else (cell,):
            fields = {**common, FIELD_VALUE: part} if hint is None else {**common, FIELD_VALUE: part, FIELD_TYPE: hint}
            out.append(RawRow(line, fields, False, None, None, None, None, where))
    return out or _without_value(lay, line, record, common, type_cell)


def _pseudo_record(lay: Layout, type_cell: str) -> bool:
    """A type cell holding a label such as `Description` marks a pseudo-record (`cols.PSEUDO_RECORD_TYPES`)."""
    if cols.norm(type_cell) in cols.PSEUDO_RECORD_TYPES:
        return True
    if len(lay.plain_types) < _MAX_PLAIN_TYPES:
        lay.plain_types.add(type_cell)
    return False


_MAX_PLAIN_TYPES = 256


def _without_value(
    lay: Layout, line: int, record: list[str], common: dict[str, str], type_cell: str
) -> list[RawRow | Ignored]:
    """A record without a value: nothing when every cell is blank, else an invalid entry saying so."""
    if not "".join(record).strip():
        return []
    fields = {**common, FIELD_VALUE: record[lay.value_at]}
    if type_cell:
        fields[FIELD_TYPE] = type_cell
    where = lay.wheres.get(lay.value) if lay.value is not None else None
    return [RawRow(line, fields, invalid="no indicator value in this row", code="no-value", where=where)]


def _misp_record(lay: Layout, line: int, record: list[str]) -> list[RawRow | Ignored]:
    """The items of one MISP CSV record (`_misp.attribute_rows`)."""
    if not "".join(record).strip():  # every cell blank
        return []
    return list(
        attribute_rows(
            line,
            _cell(record, lay.type),
            _cell(record, lay.value),
            to_ids=_cell(record, lay.to_ids),
            comment=_cell(record, lay.comment) or None,
        )
    )


def _split(cell: str, longest: int = 8192) -> list[str]:
    """A cell of several hashes (`"sha1,sha256,md5"`, Volexity) or `;`-separated hosts gives each; else one value.

    A cell longer than `longest` (MAX_VALUE_LENGTH) is one value, which validation refuses for its length.
    """
    if len(cell) > longest:
        return [cell]
    if len(cell) >= _MIN_HASH_LIST and _HASH_LIST.match(cell):
        return [p for p in _HASH_SPLIT.split(cell.strip()) if p]
    if ";" in cell and _HOST_LIST.match(cell):
        return [p.strip() for p in cell.split(";")]
    return [cell]
