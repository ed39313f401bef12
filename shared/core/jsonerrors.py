"""One wording for JSON syntax errors on every supported Python version.

Core module: no I/O. Python 3.11/3.12 report a trailing comma (`[1, 2,]`) as "Expecting value" at
the closing bracket; 3.13 says "Illegal trailing comma before end of array" at the comma. Users see
these positions in reports and HTTP answers, so both paths report it the 3.13 way everywhere.
"""

from __future__ import annotations

_CLOSERS = {"]": "array", "}": "object"}
_BLANK = " \t\r\n"


def explain(doc: str, pos: int, msg: str) -> tuple[str, int]:
    """(message, position) for a `json.JSONDecodeError`'s `doc`, `pos` and `msg`."""
    if pos < len(doc) and doc[pos] in _CLOSERS and msg.startswith(("Expecting value", "Expecting property name")):
        i = pos - 1
        while i >= 0 and doc[i] in _BLANK:
            i -= 1
        if i >= 0 and doc[i] == ",":
            return f"Illegal trailing comma before end of {_CLOSERS[doc[pos]]}", i
    return msg, pos


def line_column(doc: str, pos: int) -> tuple[int, int]:
    """1-based line and column of `pos` in `doc`, as `json.JSONDecodeError` counts them."""
    line = doc.count("\n", 0, pos) + 1
    return line, pos - doc.rfind("\n", 0, pos)
