"""Streaming readers: `read(stream, name)` detects the format and yields reader items row by row.

Every item is a `RawRow` (one indicator value, raw strings), an `Ignored` line (prose), or a
`FileProblem`. The format is known as soon as `read()` returns: it looks at the name and a bounded
prefix (64 KiB) of the stream, never at the whole file, and never seeks (blob download streams
cannot). Iteration never raises on bad input: every failure becomes a FileProblem.

Formats (CONTRACT.md "Inputs"): Defender portal CSV, generic CSV/TSV, MISP CSV, JSON (Defender
body, bare arrays, `{"<key>": [...]}`, ThreatFox, MISP events), NDJSON, STIX 2.x bundles, plain
text and Markdown, certificates, and gzip of any of these. Values are never normalised here.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from shared.core.errors import InputChanged
from shared.core.model import FileProblem, Ignored, RawRow, ReaderItem, ReadLimits, warning
from shared.readers._cert import read_certificates
from shared.readers._csv import read_csv
from shared.readers._json import read_json, read_ndjson
from shared.readers._misp import MISP_TYPES
from shared.readers._sniff import Detected, sniff
from shared.readers._stream import (
    Bounded,
    Counted,
    DecompressionLimit,
    Source,
    Transcoded,
    bom_encoding,
    buffered,
)
from shared.readers._text import read_text
from shared.readers._unicode import scrubbed

__all__ = ["FORMATS", "MISP_TYPES", "ReadLimits", "Reading", "read"]

FORMATS = frozenset(
    {
        "defender-csv",
        "csv",
        "tsv",
        "misp-csv",
        "json",
        "ndjson",
        "misp-json",
        "threatfox-json",
        "text",
        "markdown",
        "stix2",
        "certificate",
        "unsupported",
        "empty",
    }
)
_MAX_GZIP_DEPTH = 2
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


class Reading:
    """The items of one input, produced lazily; iterate once.

    `format` is the detected format name (`"gzip+<inner>"` for gzip input, `"unsupported"` when
    the file is refused).
    """

    def __init__(
        self,
        format: str,
        items: Callable[[], Iterable[ReaderItem]],
        *,
        gzip_inside: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.format = format
        # What the reader decided while reading, for the report's `source` (CSV: `valueColumns`).
        self.details: dict[str, Any] = {} if details is None else details
        self._items = items
        self._gzip = gzip_inside
        self._started = False

    def __iter__(self) -> Iterator[RawRow | Ignored | FileProblem]:
        if self._started:
            return iter(())
        self._started = True
        return self._guarded()

    def _guarded(self) -> Iterator[ReaderItem]:
        # The one place a reader failure is caught: whatever went wrong becomes a file-level
        # problem after the rows already yielded (STYLE.md "Errors").
        try:
            yield from self._items()
        except InputChanged:
            raise  # not a reading problem: the caller's run stops (see InputChanged)
        except DecompressionLimit as exc:
            yield FileProblem(str(exc))
        except _GZIP_ERRORS as exc:
            if self._gzip:
                yield FileProblem(f"corrupt gzip data: {exc}")
            else:
                yield FileProblem(f"could not read the file: {exc}")
        except RecursionError:
            yield FileProblem("the document is nested too deeply to be read (arrays or objects within each other)")
        except Exception as exc:
            yield FileProblem(f"could not read the file: {exc.__class__.__name__}: {exc}")


def read(stream: BinaryIO, name: str, *, limits: ReadLimits | None = None) -> Reading:
    """Detect the format of `stream` (named `name`) and return its lazy items, within `limits`."""
    return _read(Source(stream), name, depth=0, limits=limits or ReadLimits())


def _read(src: Source, name: str, *, depth: int, limits: ReadLimits, transcoded: bool = False) -> Reading:
    gz = depth > 0
    try:
        prefix = src.peek()
    except InputChanged:
        raise
    except DecompressionLimit as exc:
        return _problem("gzip", str(exc))
    except _GZIP_ERRORS as exc:
        return _problem("gzip" if gz else "unsupported", f"corrupt gzip data: {exc}" if gz else str(exc))
    except Exception as exc:
        return _problem("unsupported", f"could not read the file: {exc}")
    if not prefix:
        # Nothing to read: a failed report says so, rather than a "completed" one with no entries
        # that looks like a file full of comments (CONTRACT.md "Reports": nothing could be read).
        return _problem("empty", "the file is empty" + (" (after gzip decompression)" if gz else ""))
    bom = None if transcoded else bom_encoding(prefix)
    if bom is not None:
        # Excel's "Unicode text" export and PowerShell's default: UTF-16 (or 32) with a byte order mark.
        size, codec, label = bom
        inner = _read(Source(Transcoded(src, codec, size)), name, depth=depth, limits=limits, transcoded=True)
        note = warning(f"the file is {label} text (byte order mark): decoded as {label}")
        return Reading(inner.format, lambda: itertools.chain([note], inner), gzip_inside=gz, details=inner.details)
    found = sniff(name, prefix)
    if found.format == "gzip":
        if depth >= _MAX_GZIP_DEPTH:
            return _problem("unsupported", "unsupported format: gzip nested too deeply")
        inner_name = name[:-3] if name.lower().endswith(".gz") else name
        compressed = Counted(buffered(src))
        plain = Bounded(
            gzip.GzipFile(fileobj=compressed, mode="rb"),
            compressed,
            max_bytes=limits.max_gzip_bytes,
            max_ratio=limits.max_gzip_ratio,
        )
        inner = _read(Source(plain), inner_name, depth=depth + 1, limits=limits)
        return Reading("gzip+" + inner.format, lambda: inner, gzip_inside=True, details=inner.details)
    details: dict[str, Any] = {}
    return Reading(found.format, _items(found, src, name, limits, details), gzip_inside=gz, details=details)


def _problem(fmt: str, message: str) -> Reading:
    return Reading(fmt, lambda: [FileProblem(message)])


def _items(
    found: Detected, src: Source, name: str, limits: ReadLimits, details: dict[str, Any]
) -> Callable[[], Iterable[ReaderItem]]:
    fmt = found.format
    if fmt == "unsupported":
        return lambda: [FileProblem(f"unsupported format: {found.what}")]
    if fmt in ("defender-csv", "csv", "tsv", "misp-csv"):
        return lambda: read_csv(buffered(src), name, found.delimiter, limits=limits, details=details)
    if fmt in ("json", "misp-json", "threatfox-json", "stix2"):
        return lambda: scrubbed(read_json(buffered(src)))
    if fmt == "ndjson":
        return lambda: scrubbed(read_ndjson(buffered(src)))
    if fmt == "certificate":
        return lambda: read_certificates(buffered(src))
    return lambda: read_text(buffered(src), markdown=fmt == "markdown", separators=found.separators, limits=limits)
