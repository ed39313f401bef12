"""How an indicator is written in text: the whitespace around it, the pair wrapping it, its defanging.

Core module: standard library only, no I/O. One home for this vocabulary because two steps must read
a value the same way: the text reader decides by it whether a line holds an indicator (`readers/_text.py`),
and normalisation undoes it before typing the value (`checks/normalise.py`). When the two kept tables of
their own, the reader accepted `meow://…` as a URL that validation then refused as scheme `meow`.
"""

from __future__ import annotations

import re

# Every character `str.isspace()` accepts (NBSP U+00A0 included) plus the zero-width characters
# that are not whitespace to Python but are invisible in a spreadsheet cell: ZWSP, ZWNJ, ZWJ,
# WORD JOINER and the BOM (U+FEFF). tests/unit/test_normalise.py checks the list is complete.
WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B))
WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
# LEFT-TO-RIGHT and RIGHT-TO-LEFT MARK: invisible too; the Windows certificate dialog puts an LRM in
# front of the thumbprint it lets you copy.
ZERO_WIDTH += "\u200e\u200f"
TRIM = WHITESPACE + ZERO_WIDTH

# A value wrapped in one matching pair (opening character → closing character, note): quotes as a
# spreadsheet or a chat message keeps them, backticks from Markdown, `<URL>` as e-mail clients and
# Markdown autolinks write it (RFC 3986 Appendix C suggests `<>` as delimiters around a URI in text).
_WRAPS = {
    '"': ('"', "quotes removed"),
    "'": ("'", "quotes removed"),
    "`": ("`", "quotes removed"),
    "\u201c": ("\u201d", "quotes removed"),
    "\u2018": ("\u2019", "quotes removed"),
    "<": (">", "angle brackets removed"),
}
WRAP_OPENERS = frozenset(_WRAPS)  # one set look-up on the first character keeps plain values cheap


def unwrap(value: str) -> tuple[str, str] | None:
    """(inner value trimmed, note) when one matching pair wraps the whole (trimmed) value, else None.

    Only when nothing of the same kind is inside: `<https://a.example/?<id>>` is not an autolink but a
    URL holding a placeholder, which rules.py rejects (`url-placeholder`).
    """
    pair = _WRAPS.get(value[:1])
    if pair is None or len(value) < 2:
        return None
    close, note = pair
    if value[-1] != close:
        return None
    inner = value[1:-1]
    if value[0] in inner or close in inner:
        return None
    return inner.strip(TRIM), note


def hex_digits(value: str) -> bool:
    """Is `value` non-empty and hex digits only (0-9, a-f, A-F)? The test a bare hash passes.

    `bytes.fromhex` refuses any other character but skips ASCII whitespace between pairs; a result of half the
    length rules the whitespace out (an odd count gets a leading zero first). On a 64-digit hash that is about
    half the cost of a regular expression or `str.translate`.
    """
    text = value if len(value) % 2 == 0 else "0" + value
    try:
        return len(bytes.fromhex(text)) * 2 == len(text) > 0
    except ValueError:
        return False


def _bracketed(*words: str) -> str:
    """`[w]`, `(w)` and `{w}` for each word, spaces allowed inside the brackets (`[ . ]`)."""
    inner = "|".join(words)
    return "|".join(rf"{re.escape(o)}\s*(?:{inner})\s*{re.escape(c)}" for o, c in ("[]", "()", "{}"))


# The refang table: (pattern, replacement, the defanged forms it undoes), applied in order,
# case-insensitive. Sources: the corpus (SOURCES.md files 1, 3, 7, 8, 9, 23), CONTRACT.md "Inputs"
# (plain text: `hxxp`, `[.]`, `(.)`, `[:]`, `[at]`, …) and common defanging tools (the `defang` package
# writes `hXXp` and `[:]`; ioc-fanger's fang.json reads `(dot)`, `[at]` and any four-letter scheme as
# http). It is the union of the two tables the text reader and normalisation kept before, made regular:
# each dot, at and colon word is undone in all three bracket shapes, with or without spaces inside. `forms` lists
# every spelling once, for tests/unit/test_vocab.py (each form read from a text line and validated).
REFANG: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (
        re.compile(r"\[://\]|\[:\]//|\[:/\]/"),
        "://",
        ("[://]", "[:]//", "[:/]/"),
    ),
    (
        re.compile(_bracketed(r"\.", "dot") + r"|\\\.", re.IGNORECASE),
        ".",
        ("[.]", "(.)", "{.}", "[dot]", "(dot)", "{dot}", "[ . ]", "( dot )", "{ . }", "[DOT]", "\\."),
    ),
    (
        re.compile(_bracketed("@", "at"), re.IGNORECASE),
        "@",
        ("[@]", "(@)", "{@}", "[at]", "(at)", "{at}", "[ at ]", "( @ )", "[AT]"),
    ),
    (
        re.compile(_bracketed(":", "colon"), re.IGNORECASE),
        ":",
        ("[:]", "(:)", "{:}", "[colon]", "(colon)", "{colon}", "[ : ]", "[ colon ]"),
    ),
    (re.compile(r"\[/\]"), "/", ("[/]",)),
    # A single bracketed character left over (`6f4c:[e]001` in Unit 42's IPv6 lists, SOURCES.md file 9).
    (re.compile(r"\[([0-9A-Za-z])\]"), r"\1", ("[e]", "[1]")),
    # Schemes last, once the brackets around their colon are gone. `meow` stands for http in some
    # feeds (ioc-fanger turns any four-letter scheme into http); `fxp` is ftp, which Defender refuses.
    (
        re.compile(r"^(?:h(?:xx|\*\*)p|meow)(s?)(?=[:\[])", re.IGNORECASE),
        r"http\1",
        ("hxxp", "hxxps", "hXXp", "HXXPS", "h**p", "h**ps", "meow", "meows"),
    ),
    (re.compile(r"^fxp(?=[:\[])", re.IGNORECASE), "ftp", ("fxp",)),
)

# Fast path: a value with none of these needs no refanging (most values). Every form in REFANG starts
# with a bracket or a backslash, or is a scheme at the start; tests/unit/test_vocab.py checks each one.
_HAS_DEFANG = re.compile(r"[\[\(\{\\]|^(?:h(?:xx|\*\*)p|meow|fxp)", re.IGNORECASE).search


def refang(value: str) -> str:
    """Undo common defanging (`hxxp`, `[.]`, `(.)`, `[dot]`, `[:]`, `[at]`, `\\.` …): REFANG in order."""
    if not _HAS_DEFANG(value):
        return value
    for pattern, repl, _forms in REFANG:
        value = pattern.sub(repl, value)
    return value


# A lone UTF-16 surrogate (U+D800 to U+DFFF) is no character: JSON's `"\ud800"` escape decodes to one, and
# no text holding it can be written as UTF-8 (a report, Defender's request body, an HTTP answer).
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def has_surrogate(text: str) -> bool:
    """Whether `text` holds a lone surrogate (ASCII text, most values, is answered without a regex)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def scrub(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD: what is left encodes as UTF-8."""
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def surrogate_name(text: str) -> str:
    """`U+D800`: the first lone surrogate of `text`, for messages."""
    m = _SURROGATE.search(text)
    return f"U+{ord(m.group(0)):04X}" if m else ""


# Messages quote at most this much of any input (an HTTP error echoing a 10 MB key is 10 MB).
QUOTE_LIMIT = 200


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`repr(text)`, cut to about `limit` characters with a note of the full length when longer."""
    if len(text) <= limit:
        return repr(scrub(text))
    return repr(scrub(text[:limit])) + f"… ({len(text)} characters)"
