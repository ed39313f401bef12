"""No input crashes a reader: read() and iteration never raise, and every item is a reader item."""

from __future__ import annotations

import csv
import gzip
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.model import FileProblem, Ignored, RawRow
from shared.readers import FORMATS, _sniff, read

NAMES = [
    "x.csv",
    "x.tsv",
    "x.txt",
    "x.md",
    "x.json",
    "x.ndjson",
    "x.jsonl",
    "x.cer",
    "x.pem",
    "x.crt",
    "x.der",
    "x.gz",
    "x.csv.gz",
    "x.xml",
    "x",
]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(data: bytes, name: str) -> None:
    reading = read(io.BytesIO(data), name)
    fmt = reading.format.removeprefix("gzip+").removeprefix("gzip+")
    assert fmt in FORMATS or fmt == "gzip", reading.format
    for item in reading:
        assert isinstance(item, RawRow | Ignored | FileProblem), item
        if isinstance(item, RawRow | Ignored):
            assert item.line >= 1
        if isinstance(item, RawRow):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in item.fields.items())
        if isinstance(item, FileProblem):
            # The catch-all in Reading hides bugs as "could not read the file": none may reach it.
            assert not item.message.startswith("could not read the file"), item
            assert item.line is None or item.line >= 1


@FAST
@given(st.binary(max_size=2000), st.sampled_from(NAMES))
def test_arbitrary_bytes(data, name):
    check(data, name)


@FAST
@given(st.binary(max_size=500), st.sampled_from(NAMES))
def test_arbitrary_bytes_gzipped(data, name):
    check(gzip.compress(data), name + ".gz")


_cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)
_header = st.lists(
    st.sampled_from(["value", "type", "IndicatorValue", "IndicatorType", "md5", "sha256", "to_ids", "comment", "x"]),
    min_size=1,
    max_size=6,
)


@FAST
@given(_header, st.lists(st.lists(_cell, max_size=7), max_size=8), st.sampled_from([",", "\t", ";"]))
def test_arbitrary_csv_shapes(header, records, delimiter):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter)
    w.writerow(header)
    w.writerows(records)
    check(buf.getvalue().encode("utf-8", "surrogatepass"), "x.csv")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _cell,
    lambda kids: (
        st.lists(kids, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                ["Indicators", "iocs", "value", "type", "Event", "Attribute", "Object", "response", "pattern"]
            )
            | _cell,
            kids,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@FAST
@given(_json, st.sampled_from(["x.json", "x.ndjson", "x.txt"]), st.booleans())
def test_arbitrary_json_shapes(doc, name, pretty):
    text = json.dumps(doc, indent=1 if pretty else None)
    check(text.encode("utf-8", "surrogatepass"), name)


@FAST
@given(st.lists(_cell, max_size=10), st.sampled_from(["x.txt", "x.md", "x.csv"]))
def test_arbitrary_text_lines(lines, name):
    check("\n".join(lines).encode("utf-8", "surrogatepass"), name)


@FAST
@given(st.text(max_size=200))
def test_arbitrary_stix_patterns(pattern):
    doc = {
        "type": "bundle",
        "id": "bundle--1",
        "objects": [{"type": "indicator", "id": "indicator--1", "pattern": pattern}],
    }
    check(json.dumps(doc).encode("utf-8", "surrogatepass"), "b.json")


def _binary_by_loop(prefix: bytes) -> bool:
    """`_sniff._binary` the plain way: a NUL, or more than one byte in twenty a control that text never holds."""
    if not prefix:
        return False
    if b"\x00" in prefix:
        return True
    return sum(1 for b in prefix if b < 0x20 and b not in (9, 10, 12, 13)) > len(prefix) // 20


@given(
    st.binary(max_size=300) | st.lists(st.sampled_from([b"a", b"\x01", b"\t", b"\x1f", b"\r\n", b"\x7f"])).map(b"".join)
)
def test_binary_sniffing_counts_control_bytes_as_the_plain_loop_does(prefix):
    """The control-byte count with bytes.translate says what a loop over the bytes says."""
    assert _sniff._binary(prefix) == _binary_by_loop(prefix)
