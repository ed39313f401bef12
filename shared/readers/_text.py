"""Plain-text and Markdown lists: one indicator per line, prose counted as Ignored, never mined.

A line is an indicator line when, after its bullet marker, backticks and comment part are
removed, what is left is a single token (spaces inside defanging brackets aside) that looks like an
indicator once refanged, also when wrapped in one pair of quotes or angle brackets (CONTRACT.md "Inputs":
plain text). Refanging and unwrapping use `core/text.py`, the vocabulary validation uses, so a line
read as an indicator is refanged the same way later. The original token is passed on; refanging and
unwrapping it are validation's job.
Each line is decoded on its own, so a byte that is not UTF-8 only spoils its own line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from shared.core.model import FIELD_VALUE, FileProblem, Ignored, RawRow, ReadLimits
from shared.core.text import WRAP_OPENERS, hex_digits, refang, unwrap
from shared.readers._looks import kind
from shared.readers._stream import CP1252_NOTE, binary_lines, decode_line

_BULLET = re.compile(r"^(?:[-*+•]|\d{1,4}[.)]|>)\s+")
_INLINE_COMMENT = re.compile(r"\s+(?:#|//).*$")
_TABLE_SEPARATOR = re.compile(r"^[\s:|-]+$")
_WS = re.compile(r"\s")
# Whitespace just inside a bracket: maybe a spaced defang (`evil[ . ]example`, `user[ at ]host`).
_SPACED_BRACKET = re.compile(r"[\[\(\{]\s|\s[\]\)\}]")
# Headings under which lines are sources, not indicators (the Unit 42 reports list their
# reference links as bullets under "References" / "REFERENCE:").
_REFERENCE_HEADING = re.compile(r"reference|further reading|see also|credit|acknowledg", re.I)

# "SHA256 hash: <hash>", "URL: <url>", "File location: <url>": a label naming an indicator kind,
# then one token (the Unit 42 write-ups). Other "label: value" lines stay prose.
_LABELLED = re.compile(
    r"^(?P<label>[A-Za-z0-9 _-]{1,30}):\s+(?P<token>\S+)$",
)
_INDICATOR_LABEL = re.compile(
    r"\b(?:sha-?256|sha-?1|md5|hash(?:es)?|urls?|domains?|hosts?|hostnames?|ips?|ipv[46]|ioc|indicator|c2|location)\b",
    re.I,
)

_HASH_LENGTHS = frozenset({32, 40, 64})
_INDICATOR_KINDS = frozenset({"hash", "ip", "url", "host"})
SHOWN = 80  # characters of an ignored line the report shows
EMAIL_REASON = "an email address is not a Defender indicator type"
PATH_REASON = "a path without a host is not an indicator"


def read_text(
    stream: BinaryIO, *, markdown: bool = False, separators: str = ";", limits: ReadLimits | None = None
) -> Iterator[RawRow | Ignored | FileProblem]:
    """Indicator lines -> RawRow (one per table cell holding one); other non-blank lines -> Ignored.

    Plain text: `#` and `//` lines are comments (skipped). Markdown: `#` lines are headings
    (Ignored); fenced code blocks and tables are read like any other line. `separators` are
    the characters that may end the value and start a comment (`;` for LOKI's `value;comment`,
    plus `,` and tab for a header-less CSV). A line that is not UTF-8 is read as Windows-1252 and its entry
    says so; a line longer than `limits.max_value_length` holds no indicator line's token (no pattern
    is tried on it), unless it starts like a URL: then it is an entry that validation refuses for its length.
    """
    doc = _Document(markdown=markdown, separators=separators)
    longest = (limits or ReadLimits()).max_value_length
    for number, raw, truncated in binary_lines(stream):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            s = raw.decode("utf-8").strip()  # inline: the common case costs no call (decode_line is the fallback)
            note = None
        except UnicodeDecodeError:
            s = decode_line(raw)[0].strip()
            note = CP1252_NOTE
        if not s:
            continue
        if truncated or len(s) > longest:
            yield _overlong(number, s, longest)
            continue
        if len(s) in _HASH_LENGTHS and hex_digits(s):
            # A bare hash (most lines of big hash lists): no marker, bullet, comment, label or defanging
            # to look through, so the steps below would pass it on as it is.
            if doc.in_references and not doc.in_fence:
                yield Ignored(number, "reference section", s[:SHOWN])
            else:
                doc.entries += 1
                yield RawRow(number, {FIELD_VALUE: s}, False, None, None, note)
            continue
        yield from doc.items(number, s, note)
    if not doc.entries and doc.seen.lines:
        yield doc.seen.problem()


_MARKS = frozenset("`~/#<")  # first characters of fences, comments, headings and HTML comments


class _Document:
    """Where a line stands in its document (inside a fenced code block, under a references heading), what it holds,
    and what the document gave so far: `entries` (RawRows yielded) and, until the first, the prose lines that
    mention what looks like an indicator (`seen`)."""

    __slots__ = ("entries", "in_fence", "in_references", "markdown", "seen", "separators")

    def __init__(self, *, markdown: bool, separators: str) -> None:
        self.markdown = markdown
        self.separators = separators
        self.in_fence = False
        self.in_references = False
        self.entries = 0
        self.seen = _Seen()

    def items(self, number: int, s: str, note: str | None) -> list[RawRow | Ignored]:
        """The items of one stripped, non-blank line that is not a bare hash (`note`: how it was decoded)."""
        if s[0] in _MARKS:
            handled, marked = self.marked(number, s, self.markdown)
            if handled:
                return [marked] if marked is not None else []
        if s.startswith("|"):
            items = list(_table_row(number, s, note))
            self.entries += sum(1 for item in items if type(item) is RawRow)
            return items
        body = _BULLET.sub("", s, count=1)
        section = self.section(number, s, body)
        if section is not None:
            return [section]
        item = _line_item(number, body, markdown=self.markdown, separators=self.separators, note=note, shown=s)
        if type(item) is RawRow:
            self.entries += 1
        elif not self.entries:
            self.seen.prose(s)
        return [item]

    def marked(self, number: int, s: str, markdown: bool) -> tuple[bool, Ignored | None]:
        """A fence, comment, heading or HTML comment line: (handled, the item to yield, if any)."""
        if s.startswith(("```", "~~~")):
            if not (len(s) > 3 and s.endswith(s[:3])):
                self.in_fence = not self.in_fence
            return True, Ignored(number, "code fence", s[:SHOWN])
        if s.startswith("//"):
            return True, None
        if s.startswith("#"):
            if not markdown or self.in_fence:
                return True, None  # a comment
            self.in_references = bool(_REFERENCE_HEADING.search(s))
            return True, Ignored(number, "heading", s[:SHOWN])
        if s.startswith("<!--"):
            return True, Ignored(number, "HTML comment", s[:SHOWN])
        return False, None

    def section(self, number: int, s: str, body: str) -> Ignored | None:
        """A label line that starts a section, or a line under a references heading: ignored."""
        if body.endswith(":") and len(body) <= 80 and not self.in_fence:
            # A label line such as "REFERENCE:" or "LINK FROM MESSAGE TEXT:" starts a section.
            self.in_references = bool(_REFERENCE_HEADING.search(body))
            return Ignored(number, "heading", s[:SHOWN])
        if self.in_references and not self.in_fence:
            return Ignored(number, "reference section", s[:SHOWN])
        return None


def _line_item(
    number: int, body: str, *, markdown: bool, separators: str, note: str | None = None, shown: str = ""
) -> RawRow | Ignored:
    token = _clean(_INLINE_COMMENT.sub("", body))
    candidates = [token]
    labelled = _LABELLED.match(token)
    if labelled and _INDICATOR_LABEL.search(labelled.group("label")):
        candidates.append(_clean(labelled.group("token")))
    for sep in separators:
        if sep in token:
            candidates.append(_clean(token.split(sep, 1)[0]))
    for candidate in candidates:
        if not candidate or _spaced(candidate):
            continue
        k = _kind(candidate)
        if k in _INDICATOR_KINDS:
            return RawRow(number, {FIELD_VALUE: candidate}, note=note)
        if k == "email":
            return RawRow(number, {FIELD_VALUE: candidate}, invalid=EMAIL_REASON, note=note, code="email-address")
        if k == "path" and not markdown:
            return RawRow(number, {FIELD_VALUE: candidate}, invalid=PATH_REASON, note=note, code="not-an-indicator")
    if token and not _spaced(token):
        miss = near_miss(token)
        if miss is not None:
            return RawRow(number, {FIELD_VALUE: token}, invalid=miss[1], note=note, code=miss[0])
    return Ignored(number, text=shown[:SHOWN])


def _table_row(number: int, s: str, note: str | None = None) -> Iterator[RawRow | Ignored]:
    """A Markdown table row: one RawRow per cell that holds one indicator, else one Ignored."""
    if _TABLE_SEPARATOR.fullmatch(s):
        yield Ignored(number, "table separator", s[:SHOWN])
        return
    found = False
    for cell in s.strip().strip("|").split("|"):
        token = _clean(cell)
        if not token or _spaced(token):
            continue
        if _kind(token) in _INDICATOR_KINDS:
            found = True
            yield RawRow(number, {FIELD_VALUE: token}, note=note)
            continue
        miss = near_miss(token)
        if miss is not None:
            found = True
            yield RawRow(number, {FIELD_VALUE: token}, invalid=miss[1], note=note, code=miss[0])
    if not found:
        yield Ignored(number, "table row without indicators", s[:SHOWN])


_URLISH = re.compile(r"(?:h(?:tt|xx|XX)ps?|ftp|fxp)(?:://|\[:\]//|\[://\])", re.I)


def _overlong(number: int, s: str, longest: int) -> RawRow | Ignored:
    """A line too long for an indicator line: no pattern is run over it. One that starts like a URL and holds
    no space is an entry (validation refuses it for its length); anything else is prose."""
    if _URLISH.match(s) and not _WS.search(s[:longest]):
        return RawRow(number, {FIELD_VALUE: s})
    return Ignored(number, "line too long to be an indicator line", s[:SHOWN])


# A near-miss: a token alone on its line (or in a cell) that looks like a failed attempt at an indicator
# (issue "Nothing silently dropped": near-misses are entries, not prose).
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{24,128}")
_DOTTED_NUMBERS = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\.(\d{1,4}))?(?:[:|]\d{1,5})?")
_DEFANGED = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\[:\]|\[://\]|^h(?:xx|XX)ps?\b|\[at\]|\[@\]", re.I)


def near_miss(token: str) -> tuple[str, str] | None:
    """(code, reason) when `token` looks like a failed attempt at a hash, an IPv4 address or a defanged value."""
    if _HEX_RUN.fullmatch(token) and len(token) not in _HASH_LENGTHS:
        return (
            "hash-length",
            f"{len(token)} hex characters look like a hash, but none has that length (MD5 32, SHA-1 40, SHA-256 64)",
        )
    m = _DOTTED_NUMBERS.fullmatch(token)
    if m is not None:
        octets = [g for g in m.groups() if g is not None]
        if len(octets) == 3:
            return "ip-syntax", f"{token} has three numbers; an IPv4 address has four, each 0 to 255"
        if any(int(o) > 255 for o in octets):
            return "ip-syntax", f"{token} has a number above 255; an IPv4 address has four, each 0 to 255"
    if _DEFANGED.search(token):
        return "defang-invalid", f"{token!r} is defanged but does not refang to an indicator ({refang(token)!r})"
    return None


class _Seen:
    """Prose lines that mention what looks like an indicator, counted while a text has given no entry: a file of
    such lines and nothing else is a file-level error saying so, not a silent `completed` with no entries."""

    MAX_LINES = 10_000

    def __init__(self) -> None:
        self.lines = 0
        self.first = 0
        self.kinds: dict[str, int] = {}
        self._looked = 0

    def prose(self, s: str) -> None:
        if self._looked >= self.MAX_LINES:
            return
        self._looked += 1
        for token in s.split():
            k = kind(refang(token.strip(".,;:!?()[]{}\"'<>`*")))
            if k in _INDICATOR_KINDS:
                self.lines += 1
                self.first = self.first or self._looked
                self.kinds[k] = self.kinds.get(k, 0) + 1
                return

    def problem(self) -> FileProblem:
        names = {"hash": "hashes", "ip": "IP addresses", "url": "URLs", "host": "host names"}
        what = ", ".join(names[k] for k in sorted(self.kinds, key=lambda k: -self.kinds[k]))
        return FileProblem(
            f"{self.lines} lines mention what looks like {what}, but inside sentences, and no line is an indicator"
            " line: sentences are never mined (put one value per line, list item or table cell)"
        )


def _spaced(token: str) -> bool:
    """Does the token hold whitespace, other than inside defanging brackets that refanging removes?

    `evil[ . ]example.com` alone on its line is one defanged token (core.text.REFANG's spaced forms),
    read like `evil[.]example.com`; prose keeps its spaces once refanged and stays prose.
    """
    if not _WS.search(token):
        return False
    return not _SPACED_BRACKET.search(token) or _WS.search(refang(token)) is not None


def _kind(token: str) -> str | None:
    """What a single token (no whitespace) looks like; one wrapped in a pair of quotes or angle
    brackets (`"evil.example"`, `<https://evil.example/x>`) looks like what it wraps. The token is
    passed on as written: normalisation removes the pair and notes it."""
    k = kind(refang(token))
    if k is None and token[0] in WRAP_OPENERS:
        unwrapped = unwrap(token)
        if unwrapped is not None and unwrapped[0]:
            k = kind(refang(unwrapped[0]))
    return k


def _clean(text: str) -> str:
    return text.strip().strip("`").strip()
