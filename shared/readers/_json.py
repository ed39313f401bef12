"""JSON documents (Defender body, bare arrays, `{"<key>": [...]}`, MISP events, STIX bundles) and NDJSON.

A JSON document is strict: where it stops being valid JSON the reader yields one FileProblem with the
line and column, after the rows of the elements completely read before that point (CONTRACT.md "Inputs").
To keep memory flat on large documents, the reader walks the document itself and decodes one array
element at a time with the C decoder (`JSONDecoder.raw_decode`), so only one element is held at once, and
the document is decoded once. Lines are real physical lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from shared.core.jsonerrors import explain
from shared.core.model import (
    FIELD_ACTION,
    FIELD_APPLICATION,
    FIELD_CATEGORY,
    FIELD_DESCRIPTION,
    FIELD_EDUCATE_URL,
    FIELD_EXPIRATION,
    FIELD_EXTERNAL_ID,
    FIELD_GENERATE_ALERT,
    FIELD_MITRE,
    FIELD_RBAC_GROUPS,
    FIELD_RECOMMENDED_ACTIONS,
    FIELD_SEVERITY,
    FIELD_TITLE,
    FIELD_TYPE,
    FIELD_VALUE,
    FileProblem,
    RawRow,
    warning,
)
from shared.readers import _columns as cols
from shared.readers import _misp, _stix
from shared.readers._stream import CP1252_NOTE, MAX_LINE_BYTES, TextLines, binary_lines, decode_line

CHUNK_CHARS = 64 * 1024
LOOK_BACK_CHARS = 64
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

# Defender's own field names (defender-api.md §1.5), by normalised key.
_DEFENDER_KEYS = {
    "indicatorvalue": FIELD_VALUE,
    "indicatortype": FIELD_TYPE,
    "action": FIELD_ACTION,
    "severity": FIELD_SEVERITY,
    "title": FIELD_TITLE,
    "description": FIELD_DESCRIPTION,
    "expirationtime": FIELD_EXPIRATION,
    "recommendedactions": FIELD_RECOMMENDED_ACTIONS,
    "rbacgroupnames": FIELD_RBAC_GROUPS,
    "category": FIELD_CATEGORY,
    "mitretechniques": FIELD_MITRE,
    "generatealert": FIELD_GENERATE_ALERT,
    "externalid": FIELD_EXTERNAL_ID,
    "application": FIELD_APPLICATION,
    "educateurl": FIELD_EDUCATE_URL,
}
NOT_INDICATOR_OBJECT = "not an indicator object: no value field"


class JsonSyntaxError(Exception):
    def __init__(self, msg: str, line: int, column: int) -> None:
        super().__init__(f"{msg}: line {line} column {column}")
        self.msg, self.line, self.column = msg, line, column


class _Cursor:
    """A window over the text with absolute line/column bookkeeping; reads more only when needed."""

    def __init__(self, read: Callable[[int], str], *, trailing_commas: bool = False) -> None:
        self._read = read
        # Trailing commas before `]` or `}` tolerated (files, CONTRACT.md "Inputs" [recall]): the lines they were on.
        self.trailing_commas = trailing_commas
        self.comma_lines: list[int] = []
        self.buf = ""
        self.pos = 0
        self.eof = False
        # (index into buf, line, column) of a known point; advanced monotonically.
        self._mark = 0
        self._line = 1
        self._col = 1

    def _more(self, at_least: int = CHUNK_CHARS) -> None:
        self.where(self.pos)  # move the mark to pos before dropping what lies behind it
        # A little of what lies behind stays, so an error's message can still look back at it (a trailing
        # comma before `]` is named as such, `jsonerrors.explain`).
        drop = max(0, self.pos - LOOK_BACK_CHARS)
        self.buf = self.buf[drop:]
        self._mark -= drop
        self.pos -= drop
        chunk = self._read(max(at_least, CHUNK_CHARS))
        if chunk:
            self.buf += chunk
        else:
            self.eof = True

    def where(self, i: int) -> tuple[int, int]:
        """1-based (line, column) of buf[i]; i never goes backwards between calls, except to name an error
        just behind the cursor (within the kept look-back), which does not move the mark."""
        if i < self._mark:
            newlines = self.buf.count("\n", i, self._mark)
            if not newlines:
                return self._line, self._col - (self._mark - i)
            return self._line - newlines, i - self.buf.rfind("\n", 0, i)
        if i > self._mark:
            newlines = self.buf.count("\n", self._mark, i)
            if newlines:
                self._line += newlines
                self._col = i - self.buf.rfind("\n", self._mark, i)
            else:
                self._col += i - self._mark
            self._mark = i
        return self._line, self._col

    def _drop_trailing_comma(self, at: int) -> bool:
        """When the error at `at` is a `]` or `}` after a comma (`[1, 2,]`), take the comma out of the buffer and
        note its line; True when one was taken. Only characters after the cursor move (no line count changes)."""
        if at >= len(self.buf) or self.buf[at] not in "]}":
            return False
        comma = at - 1
        while comma > self.pos and self.buf[comma] in " \t\r\n":
            comma -= 1
        if comma <= self.pos or self.buf[comma] != ",":
            return False
        self.where(self.pos)
        self.comma_lines.append(self._line + self.buf.count("\n", self.pos, comma))
        self.buf = self.buf[:comma] + " " + self.buf[comma + 1 :]
        return True

    def closing_after_comma(self, closer: str) -> bool:
        """After a `,` the cursor stands on `closer`: a trailing comma, tolerated (noted) when allowed."""
        if not self.trailing_commas or self.peek() != closer:
            return False
        line, _ = self.where(self.pos)
        comma = self.buf.rfind(",", 0, self.pos)
        self.comma_lines.append(line - (self.buf.count("\n", comma, self.pos) if comma >= 0 else 0))
        return True

    def peek(self) -> str:
        """The next non-whitespace character ('' at end of text)."""
        while True:
            m = _WS.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self._more()

    def take(self, char: str, expected: str) -> None:
        if self.peek() != char:
            self.fail(expected)
        self.pos += 1

    def fail(self, msg: str, at: int | None = None) -> None:
        line, col = self.where(self.pos if at is None else at)
        raise JsonSyntaxError(msg, line, col)

    def value(self) -> tuple[Any, int]:
        """Decode the value at the cursor -> (value, line where it starts)."""
        self.peek()
        line, _ = self.where(self.pos)
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.buf) - 8 or exc.msg.startswith("Unterminated string")
                if incomplete and not self.eof:
                    self._more(len(self.buf))  # doubling keeps re-decoding linear overall
                    continue
                if self.trailing_commas and self._drop_trailing_comma(exc.pos):
                    continue
                self.fail(*explain(exc.doc, exc.pos, exc.msg))
            except RecursionError:
                self.fail("nested too deeply (arrays or objects within each other)")
            except ValueError as exc:
                self.fail(f"invalid JSON value ({exc.__class__.__name__})")
            if end == len(self.buf) and not self.eof and isinstance(obj, int | float):
                self._more(len(self.buf))  # a number cut by the chunk boundary
                continue
            self.pos = end
            return obj, line


Event = tuple[tuple[str, ...], Any, int]


def walk(read: Callable[[int], str], *, cursor: _Cursor | None = None) -> Iterator[Event]:
    """(path, value, line) for each decoded piece; see `_descend` for where it streams. `cursor`: one made by the
    caller over `read` (to read its `comma_lines` afterwards)."""
    cur = cursor or _Cursor(read)
    if cur.peek() == "":
        cur.fail("Expecting value")
    yield from _value(cur, ())
    if cur.peek() != "":
        cur.fail("Extra data")


def _descend(path: tuple[str, ...], container: str) -> bool:
    """Stream into this container instead of decoding it whole?"""
    if path == ():
        return True
    if container == "[":
        if len(path) == 1 and path[0] != "[]":
            return True  # {"Indicators": [...]}, {"iocs": [...]}, {"objects": [...]}, {"response": [...]}
        return len(path) >= 2 and path[-2] == "Event" and path[-1] in ("Attribute", "Object")
    return path[-1] == "Event" or path == ("response", "[]")


def _value(cur: _Cursor, path: tuple[str, ...]) -> Iterator[Event]:
    c = cur.peek()
    if c == "{" and _descend(path, "{"):
        yield from _object_events(cur, path)
    elif c == "[" and _descend(path, "["):
        yield from _array_events(cur, path)
    else:
        obj, line = cur.value()
        yield path, obj, line


def _object_events(cur: _Cursor, path: tuple[str, ...]) -> Iterator[Event]:
    cur.pos += 1
    if cur.peek() == "}":
        cur.pos += 1
        return
    while True:
        if cur.peek() != '"':
            cur.fail("Expecting property name enclosed in double quotes")
        key, _ = cur.value()
        cur.take(":", "Expecting ':' delimiter")
        yield from _value(cur, (*path, str(key)))
        c = cur.peek()
        if c == ",":
            cur.pos += 1
            if cur.closing_after_comma("}"):
                cur.pos += 1
                return
            continue
        if c == "}":
            cur.pos += 1
            return
        cur.fail("Expecting ',' delimiter")


def _array_events(cur: _Cursor, path: tuple[str, ...]) -> Iterator[Event]:
    cur.pos += 1
    if cur.peek() == "]":
        cur.pos += 1
        return
    while True:
        yield from _value(cur, (*path, "[]"))
        c = cur.peek()
        if c == ",":
            cur.pos += 1
            if cur.closing_after_comma("]"):
                cur.pos += 1
                return
            continue
        if c == "]":
            cur.pos += 1
            return
        cur.fail("Expecting ',' delimiter")


def _text_reader(lines: TextLines) -> Callable[[int], str]:
    """read(n) over the decoded text: whole lines (so at least n characters unless at the end), a lone CR
    read as a line end like LF and CRLF (JSON takes all three as whitespace; lines are counted at LF)."""
    blocks = lines.blocks()
    pending = ""

    def read(n: int) -> str:
        nonlocal pending
        parts, size = [pending], len(pending)
        while size < n:
            text = next(blocks, None)
            if text is None:
                break
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            parts.append(text)
            size += len(text)
        out = "".join(parts)
        pending = out[n:] if len(out) > 2 * n else ""
        return out[:n] if pending else out

    return read


def read_json(stream: BinaryIO) -> Iterator[RawRow | FileProblem]:
    """The document's rows as its elements are decoded, in one pass; invalid JSON ends the reading with a
    FileProblem naming the line and column, after the rows of every element completely read before it. Lines
    that are not UTF-8 are read as Windows-1252 and named in a file-level warning at the end."""
    lines = TextLines(stream)
    read = _text_reader(lines)
    cursor = _Cursor(read, trailing_commas=True)
    try:
        yield from _rows(walk(read, cursor=cursor))
    except JsonSyntaxError as exc:
        yield FileProblem(f"invalid JSON: {exc.msg}", line=exc.line, column=exc.column)
    if cursor.comma_lines:
        where = ", ".join(map(str, cursor.comma_lines[:10]))
        more = f" ({len(cursor.comma_lines)} in all)" if len(cursor.comma_lines) > 10 else ""
        yield warning(
            f"trailing comma before a closing bracket, tolerated: line {where}{more} (strict JSON has none)",
            cursor.comma_lines[0],
        )
    if lines.fallback_count:
        shown = ", ".join(map(str, lines.fallback[:10]))
        more = f" ({lines.fallback_count} lines in all)" if lines.fallback_count > 10 else ""
        yield warning(f"not UTF-8, read as Windows-1252: line {shown}{more}", lines.fallback[0])


def _rows(events: Iterator[Event]) -> Iterator[RawRow | FileProblem]:
    top_scalars: dict[str, Any] = {}
    saw_list = False
    array_mode: dict[tuple[str, ...], bool] = {}
    for path, obj, line in events:
        if path == ():
            yield _document_row(line, obj)
            continue
        if path[-1] != "[]":
            if len(path) == 1 and not isinstance(obj, dict | list):
                top_scalars[path[0]] = obj
                top_scalars.setdefault("__line__", line)
            continue
        saw_list = True
        yield from _element_rows(path[:-1], line, obj, array_mode)
    if not saw_list and top_scalars:
        line = top_scalars.pop("__line__", 1)
        obj = {k: v for k, v in top_scalars.items()}
        if _indicator_like(obj, ""):
            yield from element_rows(line, obj, strict=True)


def _document_row(line: int, obj: Any) -> RawRow | FileProblem:
    """A document that is one value: a string is an indicator, anything else holds none."""
    if isinstance(obj, str):
        return RawRow(line, {FIELD_VALUE: obj})
    return FileProblem("JSON document holds no indicators (expected an object or an array)", line=line)


def _element_rows(
    parent: tuple[str, ...], line: int, obj: Any, array_mode: dict[tuple[str, ...], bool]
) -> Iterable[RawRow]:
    """The rows of one element of the array at `parent`: a MISP event's attribute or object, an element of a
    top-level array, or of an array under a key (`array_mode`: whether that array holds indicators, as its first
    element decides)."""
    if len(parent) >= 2 and parent[-2] == "Event":
        if parent[-1] == "Attribute" and isinstance(obj, dict):
            return _misp.json_attribute_rows(line, obj)
        if parent[-1] == "Object" and isinstance(obj, dict):
            return _misp_object(line, obj)
        return ()
    if parent == ():
        return element_rows(line, obj, strict=True)
    if len(parent) != 1:
        return ()
    key = cols.norm(parent[0])
    if key == "response":
        return ()
    if parent not in array_mode:
        # The first element decides whether an array under an unknown key holds indicators.
        array_mode[parent] = key == "indicators" or _indicator_like(obj, key)
    return element_rows(line, obj, strict=key == "indicators", key=key) if array_mode[parent] else ()


def _indicator_like(obj: Any, key: str) -> bool:
    if isinstance(obj, str):
        return _string_key_hint(key) is not None
    if not isinstance(obj, dict):
        return False
    if _stix.is_stix_object(obj) or _is_misp_attribute(obj) or _ecs_indicator(obj) is not None:
        return True
    if _value_key(obj) is not None:
        return True
    return any(isinstance(v, dict) for v in obj.values()) and _value_key(_flatten(obj)) is not None


def _string_key_hint(key: str) -> str | None:
    """`{"domains": ["a.example"]}` -> "domain"; `{"iocs": [...]}` -> "" (no hint); else None."""
    singular = key[:-1] if key.endswith("s") else key
    if key in cols.VALUE_ALIASES or singular in cols.VALUE_ALIASES or key in ("indicators", "iocs", "values"):
        return ""
    return cols.TYPED_COLUMNS.get(key) or cols.TYPED_COLUMNS.get(singular)


def _is_misp_attribute(obj: Mapping[str, Any]) -> bool:
    return "type" in obj and "value" in obj and ("to_ids" in obj or "category" in obj or "object_relation" in obj)


def _value_key(obj: Mapping[str, Any]) -> str | None:
    keys = {cols.norm(k): k for k in obj}
    for alias in cols.VALUE_ALIASES:
        if alias in keys:
            return keys[alias]
    return None


def element_rows(line: int, obj: Any, *, strict: bool, key: str = "") -> Iterator[RawRow]:
    """One array element -> RawRows. `strict`: the element must be an indicator (Defender body)."""
    if isinstance(obj, str):
        hint = _string_key_hint(key)
        fields = {FIELD_VALUE: obj}
        if hint:
            fields[FIELD_TYPE] = hint
        yield RawRow(line, fields)
        return
    if not isinstance(obj, dict):
        if strict:
            yield RawRow(
                line,
                {FIELD_VALUE: _text(obj) or ""},
                invalid="not an indicator: expected an object or a string",
                code="not-an-indicator",
            )
        return
    if _stix.is_stix_object(obj):
        if _stix.is_stix_indicator(obj):
            yield from _stix.indicator_rows(line, obj)
        return
    if "Attribute" in obj and isinstance(obj["Attribute"], list) and "value" not in obj:
        yield from _misp_object(line, obj)
        return
    if _is_misp_attribute(obj) and ("to_ids" in obj or "object_relation" in obj):
        yield from _misp.json_attribute_rows(line, obj)
        return
    yield from _object_rows(line, obj)


def _object_rows(line: int, obj: Mapping[str, Any]) -> Iterator[RawRow]:
    """An object that is no STIX or MISP one: an ECS threat indicator, or Defender's or an alias's keys (nested
    objects flattened first)."""
    shape = _shape(obj)
    if shape is _ECS:
        ecs = _ecs_indicator(obj)
        if ecs is not None:
            yield from _ecs_rows(line, ecs)
            return
    if shape is not _FLAT:
        obj = _flatten(obj)
    yield _generic(line, obj)


_FLAT, _NESTED, _ECS = "flat", "nested", "ecs"
_SHAPES: dict[tuple[str, ...], str] = {}


def _shape(obj: Mapping[str, Any]) -> str:
    """Flat, nested or ECS: worked out once per key set (a feed repeats its keys), then per value types."""
    keys = tuple(obj)
    shape = _SHAPES.get(keys)
    if shape is None:
        ecs = any(k in ("threat", "threatintel") or k.startswith(("threat.indicator.", "threatintel.indicator."))
                  for k in keys)  # fmt: skip
        shape = _ECS if ecs else _FLAT
        if len(_SHAPES) < _MAX_PLANS and len(keys) <= _MAX_PLAN_KEYS:
            _SHAPES[keys] = shape
    if shape is _FLAT:
        for v in obj.values():
            if type(v) is dict:
                return _NESTED
    return shape


# Elastic Common Schema threat indicators (`threat.indicator.*`, ECS 8; filebeat's older `threatintel.indicator.*`):
# each field that holds an indicator, with the type it holds (scalars or lists).
_ECS_VALUES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ip",), "ip"),
    (("domain",), "domain"),
    (("url", "full"), "url"),
    (("url", "original"), "url"),
    (("url",), "url"),
    (("file", "hash", "sha256"), "sha256"),
    (("file", "hash", "sha1"), "sha1"),
    (("file", "hash", "md5"), "md5"),
    (("x509", "hash", "sha1"), "x509-fingerprint-sha1"),
)


def _ecs_indicator(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `threat.indicator` object of an ECS document (nested or with dotted keys), or None."""
    for top in ("threat", "threatintel"):
        outer = obj.get(top)
        if isinstance(outer, dict) and isinstance(outer.get("indicator"), dict):
            return outer["indicator"]  # type: ignore[no-any-return]
        prefix = f"{top}.indicator."
        flat = {k[len(prefix) :]: v for k, v in obj.items() if isinstance(k, str) and k.startswith(prefix)}
        if flat:
            return _nest(flat)
    return None


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *heads, last = key.split(".")
        for head in heads:
            node = node.setdefault(head, {}) if isinstance(node.get(head, {}), dict) else {}
        node[last] = value
    return out


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


def _ecs_rows(line: int, ind: Mapping[str, Any]) -> Iterator[RawRow]:
    """One RawRow per indicator value of an ECS `threat.indicator` (its ip, domain, url, file hashes)."""
    extra: dict[str, str] = {}
    for key, field in (("description", FIELD_DESCRIPTION), ("name", FIELD_TITLE)):
        if isinstance(ind.get(key), str) and ind[key]:
            extra[field] = ind[key]
    found = False
    url_seen = False
    for path, hint in _ECS_VALUES:
        value = _dig(ind, path)
        if path == ("url",) and (url_seen or isinstance(value, dict)):
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str | int | float) and not isinstance(v, bool) and str(v).strip():
                found = True
                url_seen = url_seen or hint == "url"
                yield RawRow(
                    line,
                    {FIELD_VALUE: str(v), FIELD_TYPE: hint, **extra},
                    note=f"ECS threat.indicator.{'.'.join(path)}",
                )
    if not found:
        yield RawRow(
            line,
            {FIELD_VALUE: ""},
            invalid="ECS threat.indicator holds no ip, domain, url or file hash",
            code="no-value",
        )


_MAX_FLAT_DEPTH = 4
_MAX_FLAT_KEYS = 64


def _flatten(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`{"ioc": {"value": "x"}}` → `{"ioc.value": "x"}`: nested objects as dotted keys named by their last two
    steps (`data.indicator.value` → `indicator.value`, which matches `indicator_value`), at most
    `_MAX_FLAT_DEPTH` levels and `_MAX_FLAT_KEYS` keys (bounded: a hostile document costs no more than its size)."""
    out: dict[str, Any] = {}
    stack: list[tuple[tuple[str, ...], Mapping[str, Any]]] = [((), obj)]
    while stack and len(out) < _MAX_FLAT_KEYS:
        path, node = stack.pop(0)
        for key, value in node.items():
            steps = (*path, str(key))
            if isinstance(value, dict):
                if len(steps) < _MAX_FLAT_DEPTH:
                    stack.append((steps, value))
            elif len(out) < _MAX_FLAT_KEYS:
                out.setdefault(".".join(steps[-2:]), value)
    return out


def _generic(line: int, obj: Mapping[str, Any]) -> RawRow:
    """Defender's field names (case-insensitive), else the CSV aliases (ThreatFox `ioc`/`type`)."""
    keys = tuple(obj)
    plan = _PLANS.get(keys)
    if plan is None:
        plan = _plan(keys)
        if len(_PLANS) < _MAX_PLANS and len(keys) <= _MAX_PLAN_KEYS:
            _PLANS[keys] = plan
    fields: dict[str, str] = {}
    for key, canonical in plan[0]:  # Defender's own names first
        if canonical not in fields:
            text = _text(obj[key])
            if text is not None:
                fields[canonical] = text
    where = _fill_by_alias(fields, obj, plan)
    if FIELD_VALUE not in fields:
        fields[FIELD_VALUE] = ""
        return RawRow(line, fields, invalid=NOT_INDICATOR_OBJECT, code="no-value")
    return RawRow(line, fields, where=where) if where is not None else RawRow(line, fields)


def _fill_by_alias(fields: dict[str, str], obj: Mapping[str, Any], plan: _Plan) -> str | None:
    """Fields Defender's names left unset, from the value, type and field aliases (ThreatFox `ioc`/`type`); the
    value's key when an alias gave it (`key 'ioc'`, named in an invalid entry's reason; Defender's own is not)."""
    _, value_key, type_keys, aliases = plan
    where = None
    if FIELD_VALUE not in fields and value_key is not None:
        text = _text(obj[value_key])
        if text is not None:
            fields[FIELD_VALUE] = text
            where = f"key {value_key!r}"
    if FIELD_TYPE not in fields:
        for key in type_keys:
            text = _text(obj[key])
            if text is not None:
                fields[FIELD_TYPE] = text
                break
    for canonical, candidates in aliases:
        if canonical not in fields:
            for key in candidates:
                text = _text(obj[key])
                if text:
                    fields[canonical] = text
                    break
    return where


# Which key of an object may fill which field, in the order `_generic` tries them: Defender's names,
# then the value aliases, the type aliases and the other field aliases (normalised names; when two
# keys normalise alike the later one counts). The values still decide; only the key matching is
# worked out once per key set, since a JSON feed repeats one set of keys on every element.
_Plan = tuple[tuple[tuple[str, str], ...], str | None, tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]
_PLANS: dict[tuple[str, ...], _Plan] = {}
_MAX_PLANS = 256
_MAX_PLAN_KEYS = 64  # bounds the memory the plans hold


def _plan(keys: tuple[str, ...]) -> _Plan:
    by_norm = {cols.norm(k): k for k in keys}
    defender = tuple((by_norm[n], canonical) for n, canonical in _DEFENDER_KEYS.items() if n in by_norm)
    value_key = next((by_norm[a] for a in cols.VALUE_ALIASES if a in by_norm), None)
    type_keys = tuple(by_norm[a] for a in cols.TYPE_ALIASES if a in by_norm)
    aliases = tuple(
        (canonical, tuple(by_norm[a] for a in names if a in by_norm))
        for canonical, names in cols.FIELD_ALIASES.items()
        if any(a in by_norm for a in names)
    )
    return defender, value_key, type_keys, aliases


_MAX_LIST_DEPTH = 8  # lists inside lists deeper than this hold no value worth reading (and must not recurse)


def _text(value: Any) -> str | None:
    """JSON scalars and lists as the raw strings validation expects; objects are not a value.

    A list gives its scalars joined with `,`, nested lists flattened in a loop down to `_MAX_LIST_DEPTH`
    (a body of 1,000 nested arrays must not recurse 1,000 deep).
    """
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, list):
        return str(value)
    parts: list[str] = []
    stack = [(iter(value), 0)]
    while stack:
        items, depth = stack[-1]
        item = next(items, _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            if depth + 1 < _MAX_LIST_DEPTH:
                stack.append((iter(item), depth + 1))
        elif item is not None and not isinstance(item, dict):
            parts.append(_text(item) or "")
    return ",".join(parts)


_END = object()


def _misp_object(line: int, obj: Mapping[str, Any]) -> Iterator[RawRow]:
    for attr in obj.get("Attribute") or ():
        if isinstance(attr, dict):
            yield from _misp.json_attribute_rows(line, attr)


def read_ndjson(stream: BinaryIO) -> Iterator[RawRow | FileProblem]:
    """One JSON value per line; a line that is not JSON is an invalid row and the rest go on. A line that is
    not UTF-8 is read as Windows-1252 and its entries say so."""
    for number, raw, truncated in binary_lines(stream):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        text, fell_back = decode_line(raw)
        if not text.strip():
            continue
        rows = _ndjson_line(number, text, truncated)
        if fell_back:
            rows = [_with_note(r, CP1252_NOTE) for r in rows]
        yield from rows


def _ndjson_line(number: int, text: str, truncated: bool) -> list[RawRow]:
    if truncated:
        why = f"line longer than {MAX_LINE_BYTES} bytes"
        return [RawRow(number, {FIELD_VALUE: text[:200]}, invalid=why, code="line-too-long")]
    try:
        obj = json.loads(text)
    except RecursionError:
        why = "not valid JSON: nested too deeply"
        return [RawRow(number, {FIELD_VALUE: text[:200]}, invalid=why, code="json-syntax")]
    except ValueError as exc:
        col = getattr(exc, "colno", None)
        where = f" (column {col})" if col else ""
        why = f"not valid JSON{where}: {getattr(exc, 'msg', exc)}"
        return [RawRow(number, {FIELD_VALUE: text}, invalid=why, code="json-syntax")]
    rows = list(element_rows(number, obj, strict=True))
    if not rows and isinstance(obj, dict) and not _stix.is_stix_object(obj):
        rows = [RawRow(number, {FIELD_VALUE: ""}, invalid=NOT_INDICATOR_OBJECT, code="no-value")]
    return rows


def _with_note(row: RawRow, note: str) -> RawRow:
    full = f"{row.note}; {note}" if row.note else note
    return RawRow(row.line, row.fields, row.position, row.invalid, row.skip, full, row.code)
