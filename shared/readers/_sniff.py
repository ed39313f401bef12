"""Format detection from the name and the first bytes (CONTRACT.md "Inputs": detected from the
name and confirmed from the content; a wrong extension must not crash). Pure, no I/O.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass

from shared.readers._cert import has_pem, looks_like_der
from shared.readers._csv import header_like, layout_of, sniff_delimiter
from shared.readers._valuecol import looks_like_value

CERT_EXTENSIONS = (".cer", ".crt", ".der", ".pem")

# (magic, offset, what) for files we refuse with "unsupported format: <what>".
_MAGIC = (
    (b"%PDF", 0, "PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "Office document (OLE2)"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7z archive"),
    (b"Rar!\x1a\x07", 0, "rar archive"),
    (b"ustar", 257, "tar archive"),
    (b"BZh", 0, "bzip2 archive"),
    (b"\xfd7zXZ\x00", 0, "xz archive"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd archive"),
    (b"\x7fELF", 0, "ELF executable"),
    (b"MZ", 0, "Windows executable"),
    (b"\x89PNG", 0, "PNG image"),
    (b"\xff\xd8\xff", 0, "JPEG image"),
    (b"GIF8", 0, "GIF image"),
    (b"{\\rtf", 0, "RTF document"),
)
# Control characters that do not occur in text (tab, LF, FF and CR do).
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (9, 10, 12, 13))
_OFFICE_ZIP = {".docx": "Word", ".xlsx": "Excel", ".pptx": "PowerPoint", ".xlsm": "Excel", ".docm": "Word"}
_XML_TAG = re.compile(r"<(?:\?xml|!DOCTYPE|[A-Za-z][\w:.-]*[\s>/])", re.I)
_JSON_START = re.compile(r"[\[{]\s*(?:[\[{\"\]}\-0-9]|true|false|null|$)")


@dataclass(frozen=True)
class Detected:
    format: str  # a Reading.format name, or "gzip", or "unsupported"
    what: str = ""  # for unsupported: what the file looks like
    delimiter: str = ","  # for CSV
    separators: str = ";"  # for text: value/comment separators


def extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


def sniff(name: str, prefix: bytes) -> Detected:
    ext = extension(name)
    return _by_magic(prefix, ext) or _by_text(name, prefix, ext)


def _by_magic(prefix: bytes, ext: str) -> Detected | None:
    """Compressed, archived, binary and DER input, told by its first bytes (and the name, for Office zips);
    None for text."""
    if prefix[:2] == b"\x1f\x8b":
        return Detected("gzip")
    if prefix[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        kind = _OFFICE_ZIP.get(ext)
        return Detected("unsupported", f"{kind} document" if kind else "zip archive")
    for magic, offset, what in _MAGIC:
        if prefix[offset : offset + len(magic)] == magic:
            return Detected("unsupported", what)
    if looks_like_der(prefix):
        return Detected("certificate")
    if _binary(prefix):
        return Detected("unsupported", "binary data")
    return None


def _by_text(name: str, prefix: bytes, ext: str) -> Detected:
    """PEM, XML, JSON, NDJSON, Markdown, CSV or plain text, told by the name and the text."""
    text = prefix.decode("utf-8", "replace").lstrip("\ufeff")
    head = text.lstrip()
    if ext in CERT_EXTENSIONS or head.startswith("-----BEGIN"):
        if has_pem(prefix) or ext in CERT_EXTENSIONS:
            return Detected("certificate")
    if ext not in (".md", ".markdown") and _XML_TAG.match(head):
        return Detected("unsupported", _xml_kind(text))
    if ext in (".ndjson", ".jsonl") or (head[:1] in "{[" and head and _JSON_START.match(head)):
        return _json_kind(head, ext)
    if ext == ".json":
        return Detected("json")  # strict: whatever it holds, it must parse as JSON
    if ext in (".md", ".markdown"):
        return Detected("markdown")
    csv_kind = _csv_kind(text, name, ext)
    if csv_kind is not None:
        return csv_kind
    if ext in (".csv", ".tsv"):
        # No header we know: read the first field of each line like a text list.
        return Detected("text", separators=";,\t")
    return Detected("text")


def _binary(prefix: bytes) -> bool:
    if not prefix:
        return False
    if b"\x00" in prefix:
        return True
    controls = len(prefix) - len(prefix.translate(None, _CONTROL_BYTES))  # in C, not a loop over 64 KiB
    return controls > len(prefix) // 20


def _xml_kind(text: str) -> str:
    if "STIX_Package" in text or "stix.mitre.org" in text:
        return "STIX 1.x XML"
    if "schemas.mandiant.com/2010/ioc" in text or re.search(r"<ioc[\s>]", text) or "OpenIOC" in text:
        return "OpenIOC XML"
    if re.match(r"\s*<(?:!DOCTYPE\s+html|html)", text, re.I):
        return "HTML"
    return "XML"


def _json_kind(head: str, ext: str) -> Detected:
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if ext in (".ndjson", ".jsonl"):
        return Detected("ndjson")
    if len(lines) >= 2 and lines[1].lstrip()[:1] in ("{", "[", '"'):
        try:
            json.loads(lines[0])
        except ValueError:
            pass
        else:
            return Detected("ndjson")
    sample = head[:65536]
    if re.search(r'"type"\s*:\s*"bundle"', sample) or (
        re.search(r'"pattern"\s*:', sample) and re.search(r'"type"\s*:\s*"indicator"', sample)
    ):
        return Detected("stix2")
    if re.search(r'"Event"\s*:', sample) or re.search(r'"Attribute"\s*:\s*\[', sample):
        return Detected("misp-json")
    if re.search(r'"ioc"\s*:', sample) or re.search(r'"ioc_type"\s*:', sample):
        return Detected("threatfox-json")
    return Detected("json")


def _csv_kind(text: str, name: str, ext: str) -> Detected | None:
    """A CSV/TSV whose header (or `#`-commented header, abuse.ch) names an indicator column."""
    first, second, comments = _first_records(text)
    if first is None:
        return None
    delimiter = sniff_delimiter(first, name)
    is_csv_name = ext in (".csv", ".tsv")
    for i, candidate in enumerate([first, *reversed(comments)]):
        cells = next(csv.reader([candidate], delimiter=delimiter), [])
        lay = layout_of(cells)
        if lay is None or not header_like(cells) or (len(cells) < 2 and not is_csv_name):
            continue
        # A commented header must match the data below it; 3+ columns keeps LOKI's `# SHA256;COMMENT` legend
        # from passing for one. A first-line header of a file not named .csv needs data below it.
        data = first if i > 0 else None if is_csv_name else second
        if data is not None and not _fits(cells, data, delimiter, commented=i > 0):
            continue
        fmt = lay.kind
        if fmt == "csv" and delimiter == "\t":
            fmt = "tsv"
        return Detected(fmt, delimiter=delimiter)
    return _unlisted_header(first, delimiter) if is_csv_name else None


def _first_records(text: str) -> tuple[str | None, str | None, list[str]]:
    """The first two non-blank, non-comment lines of the prefix (its last line may be cut off, so it is left out
    unless it is the only one) and the comments before the first."""
    lines = text.splitlines()
    comments: list[str] = []
    first: str | None = None
    for ln in lines[:-1] if len(lines) > 1 else lines:
        s = ln.strip()
        if not s:
            continue
        if s.startswith("#"):
            if first is None:
                comments.append(s.lstrip("#").strip())
            continue
        if first is not None:
            return first, ln, comments
        first = ln
    return first, None, comments


def _fits(cells: list[str], data: str, delimiter: str, *, commented: bool) -> bool:
    """Does a data line fit a candidate header: as many cells for a commented one (with 3+ columns), at least two
    for a first-line one?"""
    row = next(csv.reader([data], delimiter=delimiter), [])
    if commented:
        return len(cells) >= 3 and len(row) == len(cells)
    return len(row) >= 2


def _unlisted_header(first: str, delimiter: str) -> Detected | None:
    """A header of names nobody listed (`first_seen_utc,dst_ip,dst_port`) in a .csv/.tsv: a CSV all the same, whose
    value column the reader decides by content. A first line of values (no header) stays a list."""
    cells = next(csv.reader([first], delimiter=delimiter), [])
    if len(cells) >= 2 and header_like(cells) and not any(looks_like_value(c) for c in cells):
        return Detected("tsv" if delimiter == "\t" else "csv", delimiter=delimiter)
    return None
