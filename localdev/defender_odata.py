"""The slice of OData that ``GET /api/indicators`` answers (defender-api.md §5): ``$filter`` with ``eq``
comparisons joined by ``and`` and ``or``, ``$top`` (at most 10,000) and ``$skip``. Anything else is a 400
``ODataError``, so a client relying on more than the documented surface fails here first. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_TOP = 10_000
# Filterable properties named on the List page; the emulator compares these with `eq`.
FILTERABLE = frozenset(
    {
        "application",
        "createdByDisplayName",
        "generateAlert",
        "title",
        "indicatorValue",
        "indicatorType",
        "createdBy",
        "action",
        "severity",
    }
)
# Listed as filterable but not supported by the emulator (dates need ge/le, lists need any()).
_NOT_EMULATED = frozenset({"expirationTime", "creationTimeDateTimeUtc", "rbacGroupNames", "rbacGroupIds"})
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<word>[A-Za-z_$][A-Za-z0-9_.]*)|(?P<num>-?\d+)|(?P<other>\S))")


OR = "$or"  # marks an `or` between groups of `and`-joined terms in a parsed filter


class ODataError(Exception):
    """Answered as 400 ``ODataError`` with this message."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-space character
            raise ODataError(f"Syntax error at position {pos} in '{text}'")
        kind = m.lastgroup or "other"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _literal(kind: str, text: str) -> Any:
    if kind == "str":
        return text[1:-1].replace("''", "'")
    if kind == "num":
        return int(text)
    if kind == "word" and text in ("true", "false"):
        return text == "true"
    if kind == "word" and text == "null":
        return None
    raise ODataError(f"Expected a literal, found '{text}'")


def parse_filter(text: str) -> list[tuple[str, Any]]:
    """``"action eq 'Block' and createdBy eq 'x'"`` -> ``[("action", "Block"), ("createdBy", "x")]``."""
    toks = _tokens(text)
    if not toks:
        raise ODataError("The $filter expression is empty")
    terms: list[tuple[str, Any]] = []
    i = 0
    while True:
        if i + 3 > len(toks):
            raise ODataError(f"Syntax error: incomplete comparison in '{text}'")
        (fkind, name), (okind, op), (lkind, lit) = toks[i : i + 3]
        if fkind != "word":
            raise ODataError(f"Syntax error at '{name}' in '{text}'")
        if name not in FILTERABLE | _NOT_EMULATED:
            raise ODataError(f"Could not find a property named '{name}' on type 'Indicator'")
        if name in _NOT_EMULATED:
            raise ODataError(f"Filtering on '{name}' is not supported")
        if okind != "word" or op != "eq":
            raise ODataError(f"Operator '{op}' is not supported; use 'eq'")
        terms.append((name, _literal(lkind, lit)))
        i += 3
        if i == len(toks):
            return terms
        if toks[i] == ("word", "or"):
            terms.append((OR, None))
        elif toks[i] != ("word", "and"):
            raise ODataError(f"Syntax error at '{toks[i][1]}': only 'and' and 'or' may join comparisons")
        i += 1


def matches(record: Mapping[str, Any], terms: list[tuple[str, Any]]) -> bool:
    """`and` binds tighter than `or` (OData's precedence): any group of `and`-joined terms all true."""
    group: list[tuple[str, Any]] = []
    for term in [*terms, (OR, None)]:
        if term[0] == OR:
            if _all(record, group):
                return True
            group = []
        else:
            group.append(term)
    return False


def _all(record: Mapping[str, Any], terms: list[tuple[str, Any]]) -> bool:
    for name, want in terms:
        have = record.get(name)
        if name == "generateAlert":
            have = have if isinstance(have, bool) or have is None else str(have).lower() == "true"
        if have != want:
            return False
    return True


def parse_query(query: Mapping[str, list[str]]) -> tuple[list[tuple[str, Any]], int | None, int]:
    """``$filter``/``$top``/``$skip`` from a parsed query string -> (terms, top or None, skip)."""
    unknown = sorted(k for k in query if k.startswith("$") and k not in ("$filter", "$top", "$skip"))
    if unknown:
        raise ODataError(f"Query option '{unknown[0]}' is not supported")
    terms = parse_filter(query["$filter"][-1]) if "$filter" in query else []
    top = _non_negative(query, "$top")
    if top is not None and top > MAX_TOP:
        raise ODataError(
            f"The limit of '{MAX_TOP}' for Top query has been exceeded. The value from the incoming request is '{top}'."
        )
    return terms, top, _non_negative(query, "$skip") or 0


def _non_negative(query: Mapping[str, list[str]], name: str) -> int | None:
    if name not in query:
        return None
    text = query[name][-1].strip()
    if not text.isdigit():
        raise ODataError(f"Invalid value '{text}' for {name}: a non-negative integer is required")
    return int(text)
