"""Stream plumbing: a peekable wrapper over any binary file-like object, and line iteration.

The input may be a blob download stream that cannot seek, so nothing here seeks: the first
bytes are kept in a bounded prefix and served again before the rest of the stream.
"""

from __future__ import annotations

import io
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


def binary_lines(stream: BinaryIO | io.BufferedReader) -> Iterator[tuple[int, bytes, bool]]:
    """(1-based line number, line bytes without its end, truncated?) for each physical line.

    Lines end at LF; a CR before it is dropped (CRLF files). Overlong lines are cut at
    MAX_LINE_BYTES and flagged, the rest of that line is skipped.
    """
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES)
        if not raw:
            return
        number += 1
        truncated = False
        if not raw.endswith(b"\n") and len(raw) >= MAX_LINE_BYTES:
            truncated = True
            while True:
                more = stream.readline(MAX_LINE_BYTES)
                if not more or more.endswith(b"\n"):
                    break
        line = raw.rstrip(b"\n")
        if line.endswith(b"\r"):
            line = line[:-1]
        yield number, line, truncated
