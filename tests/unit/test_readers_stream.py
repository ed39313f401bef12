"""Streams, gzip and refused formats: read() peeks a bounded prefix, never seeks, never raises."""

from __future__ import annotations

import gzip
import io
import re
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.model import FileProblem, RawRow
from shared.readers import read
from shared.readers._stream import PEEK_BYTES, line_ends, split_lines


class OneWay(io.RawIOBase):
    """A non-seekable stream that hands out small chunks and counts what was read."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        super().__init__()
        self._data = data
        self._pos = 0
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise io.UnsupportedOperation("not seekable")

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = min(len(b), self._chunk, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n

    @property
    def consumed(self) -> int:
        return self._pos


def big_list(n: int) -> bytes:
    return b"".join(b"%064x\n" % i for i in range(n))


def test_read_peeks_a_bounded_prefix_and_iteration_is_lazy():
    data = big_list(50_000)  # ~3.2 MB
    stream = OneWay(data, chunk=4096)
    reading = read(stream, "hashes.txt")
    assert reading.format == "text"
    assert stream.consumed <= PEEK_BYTES
    it = iter(reading)
    first = next(it)
    assert isinstance(first, RawRow) and first.line == 1
    assert stream.consumed <= 3 * PEEK_BYTES  # not the whole stream
    assert sum(1 for _ in it) == 49_999


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("a.csv", b"value,type\nx.example,domain\n", "csv"),
        ("a.json", b'{"Indicators": [{"indicatorValue": "x.example"}]}', "json"),
        ("a.ndjson", b'{"value": "x.example"}\n', "ndjson"),
        ("a.txt", b"x.example\n", "text"),
    ],
)
def test_non_seekable_streams_in_tiny_chunks(name, data, fmt):
    reading = read(OneWay(data, chunk=3), name)
    assert reading.format == fmt
    assert [i.value for i in reading] == ["x.example"]


def test_a_reading_iterates_once():
    reading = read(io.BytesIO(b"x.example\n"), "a.txt")
    assert len(list(reading)) == 1
    assert list(reading) == []


def test_gzip_detects_the_inner_format_from_the_inner_name_and_content():
    inner = b"IndicatorType,IndicatorValue\nDomainName,x.example\n"
    reading = read(OneWay(gzip.compress(inner), chunk=5), "feed.csv.gz")
    assert reading.format == "gzip+defender-csv"
    assert [(i.line, i.value) for i in reading] == [(2, "x.example")]
    # Magic bytes win over a missing .gz suffix.
    reading = read(io.BytesIO(gzip.compress(b'[{"value": "a.example"}]')), "feed.json")
    assert reading.format == "gzip+json"


def test_corrupt_gzip_keeps_rows_already_read():
    packed = gzip.compress(big_list(20_000), compresslevel=1)
    damaged = packed[: len(packed) // 2]
    out = list(read(io.BytesIO(damaged), "hashes.txt.gz"))
    assert isinstance(out[-1], FileProblem) and "gzip" in out[-1].message
    assert len(out) > 100 and all(isinstance(i, RawRow) for i in out[:-1])


def test_gzip_with_a_corrupt_header_is_a_file_problem():
    reading = read(io.BytesIO(b"\x1f\x8b\x08\x00garbage" * 10), "x.gz")
    out = list(reading)
    assert reading.format.startswith("gzip")
    assert len(out) == 1 and isinstance(out[0], FileProblem)


def _zip(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in names:
            z.writestr(n, "x")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        ("stix.xml", b'<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1">', "STIX 1.x XML"),
        ("x.ioc", b'<?xml version="1.0"?>\n<ioc xmlns="http://schemas.mandiant.com/2010/ioc">', "OpenIOC XML"),
        ("x.txt", b"<?xml version='1.0'?><root/>", "XML"),
        ("r.pdf", b"%PDF-1.7\n...", "PDF document"),
        ("a.zip", _zip(["a.csv"]), "zip archive"),
        ("r.docx", _zip(["word/document.xml"]), "Word document"),
        ("r.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Office document (OLE2)"),
        ("a.7z", b"7z\xbc\xaf\x27\x1c\x00\x04", "7z archive"),
        ("a.rar", b"Rar!\x1a\x07\x01\x00", "rar archive"),
        ("a.tar", b"\x00" * 257 + b"ustar\x0000" + b"\x00" * 200, "tar archive"),
        ("blob.csv", bytes(range(256)) * 4, "binary data"),
    ],
)
def test_unsupported_formats_give_exactly_one_file_problem(name, data, what):
    reading = read(io.BytesIO(data), name)
    assert reading.format == "unsupported"
    assert list(reading) == [FileProblem(f"unsupported format: {what}")]


def test_gzip_of_unsupported_content():
    reading = read(io.BytesIO(gzip.compress(b"%PDF-1.4")), "r.pdf.gz")
    assert reading.format == "gzip+unsupported"
    assert list(reading) == [FileProblem("unsupported format: PDF document")]


@pytest.mark.parametrize("name", ["empty.txt", "empty.csv", "empty.json", "empty.cer"])
def test_empty_file_is_a_file_level_problem(name):
    """A 0-byte file gives one "the file is empty" problem (a failed report), not a silent "completed"."""
    reading = read(io.BytesIO(b""), name)
    assert reading.format == "empty"
    assert list(reading) == [FileProblem("the file is empty")]


def test_empty_gzip_says_so():
    reading = read(io.BytesIO(gzip.compress(b"")), "list.txt.gz")
    assert reading.format == "gzip+empty"
    assert [p.message for p in reading] == ["the file is empty (after gzip decompression)"]


def test_failing_stream_becomes_a_file_problem():
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            raise OSError("connection reset")

    reading = read(Broken(), "x.csv")
    out = list(reading)
    assert len(out) == 1 and isinstance(out[0], FileProblem) and "connection reset" in out[0].message


_LINE_TEXT = st.lists(
    st.sampled_from(["a", ",", "\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1e", "\x85", "\u2028", "é"])
).map("".join)


@given(_LINE_TEXT | _LINE_TEXT.map(lambda t: t.encode("ascii", "ignore").decode("ascii")))
def test_split_lines_cuts_where_the_line_pattern_cuts(text):
    """The fast cut (`str.splitlines` where it has no other break to cut at) gives the pattern's lines, and the
    line-end count is the number of lines that end."""
    want = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+", text)
    assert split_lines(text) == want
    assert line_ends(text) == sum(1 for line in want if line.endswith(("\n", "\r")))
