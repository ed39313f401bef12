"""Text that cannot leave the app: lone UTF-16 surrogates from JSON escapes (`"\\ud800"`).

Pure, no I/O. Only JSON can produce them (every byte decoder here replaces what is not UTF-8), so the JSON
family (JSON, NDJSON, STIX, MISP JSON, the HTTP body) passes its items through `scrubbed`. A value holding one
is an `invalid` entry; any other field (title, description, …) is cleaned (U+FFFD) with a note. Every text
leaving the app is then valid UTF-8: the reports, Defender's request body and the HTTP answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from shared.core.model import FIELD_VALUE, FileProblem, RawRow, ReaderItem
from shared.core.text import has_surrogate, scrub, surrogate_name


def scrub_row(row: RawRow) -> RawRow:
    """The row with lone surrogates taken out of its fields (the row itself when it holds none)."""
    bad = [k for k, v in row.fields.items() if has_surrogate(v)]
    if not bad:
        return row
    fields = {k: scrub(v) for k, v in row.fields.items()}
    invalid, code, notes = row.invalid, row.code, [row.note] if row.note else []
    for key in bad:
        what = f"a lone UTF-16 surrogate ({surrogate_name(row.fields[key])}), which is no character"
        if key == FIELD_VALUE and invalid is None:
            invalid, code = f"the value holds {what}: not valid Unicode text", "value-not-unicode"
        else:
            notes.append(f"{key}: {what}, replaced by U+FFFD")
    return RawRow(row.line, fields, row.position, invalid, row.skip, "; ".join(notes) or None, code)


def scrubbed(items: Iterable[ReaderItem]) -> Iterator[ReaderItem]:
    """The items with lone surrogates taken out of rows (`scrub_row`) and file-level messages."""
    for item in items:
        if type(item) is RawRow:
            for v in item.fields.values():
                if not v.isascii():
                    item = scrub_row(item)
                    break
        elif type(item) is FileProblem and not item.message.isascii():
            item = FileProblem(scrub(item.message), item.line, item.column, item.fatal)
        yield item
