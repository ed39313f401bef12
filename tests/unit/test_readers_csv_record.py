"""The CSV record fast path (`_csv._record`: records padded once, a plan of source cells, known type cells, `_split`
only where a cell may hold several values) gives the items the plain per-record computation gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.model import FIELD_TYPE, FIELD_VALUE, Ignored, RawRow
from shared.readers import _columns as cols
from shared.readers._csv import _prepare, _record, _split, layout_of


def _plain_record(lay, line, record):
    """One record's items the plain way: bounds checked cell by cell, every type cell normalised, every cell split."""
    if not "".join(record).strip():
        return []
    n = len(record)
    common = {canonical: record[col] for col, canonical in lay.fields if col < n and record[col] != ""}
    i = lay.type
    type_cell = record[i] if i is not None and i < n else ""
    if type_cell and cols.norm(type_cell) in cols.PSEUDO_RECORD_TYPES:
        return [Ignored(line, f"not an indicator record: {type_cell.strip()}", ",".join(record)[:80])]
    out = []
    i = lay.value
    value = record[i] if i is not None and i < n else ""
    if i is not None and value.strip():
        for part in _split(value, lay.longest):
            fields = {**common, FIELD_VALUE: part}
            if type_cell:
                fields[FIELD_TYPE] = type_cell
            out.append(RawRow(line, fields, where=lay.wheres.get(i)))
    for i, hint in lay.typed:
        cell = record[i] if i < n else ""
        if cell.strip():
            for part in _split(cell, lay.longest):
                out.append(RawRow(line, {**common, FIELD_VALUE: part, FIELD_TYPE: hint}, where=lay.wheres.get(i)))
    if not out:
        fields = {**common, FIELD_VALUE: value}
        if type_cell:
            fields[FIELD_TYPE] = type_cell
        where = lay.wheres.get(lay.value) if lay.value is not None else None
        out.append(RawRow(line, fields, invalid="no indicator value in this row", code="no-value", where=where))
    return out


_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_columns = st.sampled_from(
    [
        "IndicatorType",
        "IndicatorValue",
        "Action",
        "Title",
        "Description",
        "value",
        "type",
        "md5",
        "sha256",
        "url",
        "domain",
        "comment",
        "first_seen",
        "Indicator",
        "Data",
    ]
)
_cells = st.sampled_from(
    [
        "",
        " ",
        "Block",
        "evil.example",
        "a.example;b.example",
        f"{_HASH[:32]},{_HASH}",
        _HASH,
        "Description",
        " note ",
        "FileSha256",
        "x" * 70,
        "http://a.example/x;y",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_columns, min_size=1, max_size=6, unique=True), st.lists(st.lists(_cells, max_size=8), max_size=6))
def test_record_equals_the_plain_computation(header, records):
    lay = layout_of(header)
    if lay is None or lay.kind == "misp-csv":
        return
    _prepare(lay, header, None, None)
    for line, record in enumerate(records, 2):  # one layout for all: its known type cells fill up as they come
        got, want = _record(lay, line, list(record)), _plain_record(lay, line, record)
        assert got == want
        assert [_uncompared(i) for i in got] == [_uncompared(i) for i in want]


def _uncompared(item):
    """The fields equality leaves out: where a value stood, what an ignored line said."""
    return item.where if isinstance(item, RawRow) else item.text
