"""Stream plumbing: a peekable wrapper over any binary file-like object, and line iteration.

The input may be a blob download stream that cannot seek, so nothing here seeks: the first
bytes are kept in a bounded prefix and served again before the rest of the stream.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from typing import BinaryIO, Protocol

PEEK_BYTES = 64 * 1024
# A text line longer than this is not an indicator line; the excess is read and dropped so a file
# without newlines cannot make memory grow (STYLE.md: generators all the way).
MAX_LINE_BYTES = 1024 * 1024


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Source(io.RawIOBase):
    """A raw stream over `inner` whose first bytes can be peeked without consuming them."""

    def __init__(self, inner: _Readable) -> None:
        super().__init__()
        self._inner = inner
        self._head = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def peek(self, n: int = PEEK_BYTES) -> bytes:
        """Up to `n` first unread bytes (fewer only at end of stream)."""
        chunks = [self._head]
        have = len(self._head)
        while have < n and not self._eof:
            chunk = self._inner.read(n - have)
            if not chunk:
                self._eof = True
                break
            chunks.append(chunk)
            have += len(chunk)
        self._head = b"".join(chunks)
        return self._head[:n]

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(b).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self._eof:
            return 0
        data = self._inner.read(len(view))
        if not data:
            self._eof = True
            return 0
        view[: len(data)] = data
        return len(data)


def buffered(source: Source) -> io.BufferedReader:
    return io.BufferedReader(source, buffer_size=PEEK_BYTES)


BLOCK_BYTES = 64 * 1024


def _blocks(stream: BinaryIO | io.BufferedReader) -> Iterator[bytes]:
    """Blocks of the stream, each ending at a line end (CR, LF or CRLF) except the last; a CR is never split
    from the LF after it. A block is at most MAX_LINE_BYTES beyond BLOCK_BYTES: longer lines come in pieces."""
    carry = b""
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            if carry:
                yield carry
            return
        if carry:
            block = carry + block
        while block.endswith(b"\r"):  # maybe the CR of a CRLF: take the next byte to know
            more = stream.read(1)
            if not more:
                break
            block += more
        end = max(block.rfind(b"\n"), block.rfind(b"\r"))
        if end < 0 and len(block) < MAX_LINE_BYTES:
            carry = block
            continue
        if end < 0:
            yield block  # a piece of an overlong line, no line end in it
            carry = b""
            continue
        yield block[: end + 1]
        carry = block[end + 1 :]


def binary_lines(stream: BinaryIO | io.BufferedReader) -> Iterator[tuple[int, bytes, bool]]:
    """(1-based line number, line bytes without its end, truncated?) for each physical line.

    Lines end at LF, CRLF or a lone CR (old Mac files, some exporters): all three are read alike. Overlong
    lines are cut at MAX_LINE_BYTES and flagged, the rest of that line is skipped.
    """
    number = 0
    partial = b""  # the start of a line whose end is in a later block
    skipping = False  # inside an overlong line already yielded: drop until its end
    for block in _blocks(stream):
        ended = block.endswith((b"\n", b"\r"))
        lines = block.splitlines()
        if not ended:
            tail = lines.pop() if lines else b""
        if lines:
            if skipping:
                lines[0] = b""
                skipping = False
                del lines[0]
            elif partial:
                lines[0] = partial + lines[0]
                partial = b""
            for line in lines:
                number += 1
                if len(line) > MAX_LINE_BYTES:
                    yield number, line[:MAX_LINE_BYTES], True
                else:
                    yield number, line, False
        if not ended and not skipping:
            partial += tail
            if len(partial) >= MAX_LINE_BYTES:
                number += 1
                yield number, partial[:MAX_LINE_BYTES], True
                partial = b""
                skipping = True
    if partial and not skipping:
        number += 1
        yield number, partial, False


def decode_line(raw: bytes) -> tuple[str, bool]:
    """(text, True when the line is not UTF-8 and was read as Windows-1252).

    Strict UTF-8 first: Latin-1 text (`caf\xe9`) must not reach Defender as `caf\ufffd` without a word. The
    fallback is Windows-1252, the superset of Latin-1 that Excel and Notepad write on Western systems.
    """
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace"), True


CP1252_NOTE = "line read as Windows-1252: it is not UTF-8"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
# Where `str.splitlines` breaks a line beyond CR and LF in ASCII text (VT, FF, FS, GS, RS); no line of a file
# ends there. Non-ASCII text adds NEL, LS and PS.
_OTHER_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e")


def split_lines(text: str) -> list[str]:
    """`text` cut after each CR, LF or CRLF, line ends kept (the last piece may have none): `_LINE.findall(text)`.

    `str.splitlines(keepends=True)` cuts the same way in C, several times faster, where it has no other break
    to cut at: ASCII text without VT, FF, FS, GS or RS, which is nearly every block of a feed.
    """
    if text.isascii() and not any(c in text for c in _OTHER_BREAKS):
        return text.splitlines(True)
    return _LINE.findall(text)


def line_ends(text: str) -> int:
    """How many lines end in `text` (at CR, LF or CRLF); a text without CR needs one count."""
    n = text.count("\n")
    if "\r" in text:
        n += text.count("\r") - text.count("\r\n")
    return n


class TextLines:
    """Decoded text of a byte stream, in blocks of whole lines or line by line (line ends kept, as
    `TextIOWrapper(newline="")` gives them): strict UTF-8, a line that is not UTF-8 read as Windows-1252.

    `fallback` lists the numbers of such lines while they wait to be taken (`take_fallback`), `fallback_count`
    counts them all. A UTF-8 byte order mark at the start is dropped.
    """

    def __init__(self, stream: BinaryIO | io.BufferedReader) -> None:
        self._blocks = _blocks(stream)
        self.fallback: list[int] = []
        self.fallback_count = 0
        self._number = 0  # lines decoded so far
        self._first = True

    def blocks(self) -> Iterator[str]:
        for block in self._blocks:
            if self._first:
                self._first = False
                if block.startswith(b"\xef\xbb\xbf"):
                    block = block[3:]
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError:
                text = self._slow(block)
            else:
                self._number += line_ends(text)
            yield text

    def _slow(self, block: bytes) -> str:
        parts = []
        for raw in block.splitlines(keepends=True):
            self._number += 1
            text, fell_back = decode_line(raw)
            if fell_back:
                self.fallback.append(self._number)
                self.fallback_count += 1
            parts.append(text)
        if not block.endswith((b"\n", b"\r")):
            self._number -= 1  # the last piece continues in the next block
        return "".join(parts)

    def __iter__(self) -> Iterator[str]:
        """Physical lines with their ends; a line that spans blocks comes whole."""
        partial: list[str] = []  # pieces of a line that spans blocks
        for text in self.blocks():
            lines = split_lines(text)
            if not lines:
                continue
            open_end = not lines[-1].endswith(("\n", "\r"))
            if partial:
                partial.append(lines[0])
                if len(lines) == 1 and open_end:
                    continue  # still inside the long line
                lines[0] = "".join(partial)
                partial = []
            if open_end:
                partial.append(lines.pop())
            yield from lines
        if partial:
            yield "".join(partial)

    def take_fallback(self, first: int, last: int) -> bool:
        """Whether a line from `first` to `last` was read as Windows-1252; forgets the lines up to `last`."""
        hit = False
        while self.fallback and self.fallback[0] <= last:
            if self.fallback.pop(0) >= first:
                hit = True
        return hit


# Byte order marks of the encodings a spreadsheet's "Unicode text" export writes (UTF-32 first: its
# little-endian mark starts with UTF-16's).
BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)


def bom_encoding(prefix: bytes) -> tuple[int, str, str] | None:
    """(BOM length, codec, name) when `prefix` starts with a UTF-16 or UTF-32 byte order mark."""
    for bom, codec, name in BOMS:
        if prefix.startswith(bom):
            return len(bom), codec, name
    return None


class Transcoded(io.RawIOBase):
    """UTF-8 bytes of a stream written in another encoding (UTF-16/32 after its BOM), decoded incrementally."""

    def __init__(self, inner: _Readable, codec: str, skip: int) -> None:
        super().__init__()
        self._inner = inner
        self._decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        self._skip = skip
        self._out = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(b).cast("B")
        while not self._out and not self._eof:
            data = self._inner.read(BLOCK_BYTES)
            if self._skip:
                data, self._skip = data[self._skip :], max(0, self._skip - len(data))
            self._eof = not data
            self._out = self._decoder.decode(data, final=self._eof).encode("utf-8", "replace")
        n = min(len(view), len(self._out))
        view[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


class DecompressionLimit(Exception):
    """Decompressed data passed MAX_GZIP_BYTES or MAX_GZIP_RATIO: the reading stops with a file-level error."""


# Below this much output the ratio is not checked: a small file of repeated lines compresses far better
# than 200 to 1 and is no danger.
RATIO_FLOOR_BYTES = 1024 * 1024


class Bounded(io.RawIOBase):
    """The decompressed bytes of `gz`, stopped (DecompressionLimit) past `max_bytes` of output or past
    `max_ratio` times the compressed bytes read from `compressed` so far."""

    def __init__(self, gz: _Readable, compressed: Counted, *, max_bytes: int, max_ratio: float) -> None:
        super().__init__()
        self._gz = gz
        self._compressed = compressed
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self.out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(b).cast("B")
        data = self._gz.read(len(view))
        n = len(data)
        view[:n] = data
        self.out += n
        if self.out > self._max_bytes:
            raise DecompressionLimit(
                f"gzip data decompresses to more than {self._max_bytes} bytes (MAX_GZIP_BYTES): reading stopped"
            )
        read = max(self._compressed.count, 1)
        if self.out > RATIO_FLOOR_BYTES and self.out > self._max_ratio * read:
            raise DecompressionLimit(
                f"gzip data decompresses to more than {self._max_ratio:g} times its compressed size"
                f" ({self.out} bytes from {read}; MAX_GZIP_RATIO): reading stopped"
            )
        return n


class Counted(io.RawIOBase):
    """A raw stream that counts the bytes read through it."""

    def __init__(self, inner: _Readable) -> None:
        super().__init__()
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(b).cast("B")
        data = self._inner.read(len(view))
        view[: len(data)] = data
        self.count += len(data)
        return len(data)
