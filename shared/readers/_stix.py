"""STIX 2.x indicator objects -> RawRows, one per comparison Defender can express.

Patterns are parsed with the stix2-patterns grammar (never regexes) and rewritten as a small
tree, then as OR-branches of AND-groups. Each branch that names a single hash, address, domain,
URL or certificate thumbprint becomes a RawRow with the Defender type; every other branch is an
invalid RawRow saying why (CONTRACT.md "Inputs": STIX 2.x). No I/O; stix2-patterns is imported
on first use (it costs ~70 ms).

Decisions:
- `[file:name = 'x' AND file:hashes.MD5 = 'h']` gives the hash (the name condition is dropped
  and noted): the hash already pins the file, as with MISP `filename|md5`.
- `[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = 'a']` (MISP's
  STIX 2.0 export) gives IpAddress `a`: a single address on one side of the traffic is the
  closest Defender match. Any other network-traffic property (ports, protocols) is invalid.
- Observation operators AND / FOLLOWEDBY and qualifiers (WITHIN, REPEATS, START/STOP) change what
  matches; Defender has no such thing, so those patterns are invalid as a whole.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.model import (
    FIELD_DESCRIPTION,
    FIELD_EXPIRATION,
    FIELD_TITLE,
    FIELD_TYPE,
    FIELD_VALUE,
    IndicatorType,
    RawRow,
)

_MAX_BRANCHES = 10_000
_HASH_TYPES = {
    "md5": IndicatorType.FileMd5,
    "sha1": IndicatorType.FileSha1,
    "sha256": IndicatorType.FileSha256,
}
_PATH_STEP = re.compile(r"'(?:[^'\\]|\\.)*'|\[(?:\d+|\*)\]|[^.\[\]']+")


@dataclass(frozen=True)
class Cmp:
    obj: str
    path: tuple[str, ...]
    op: str
    values: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.obj}:{'.'.join(self.path)}"


class _Unexpressible(Exception):
    pass


def is_stix_indicator(obj: Mapping[str, Any]) -> bool:
    return obj.get("type") == "indicator" and isinstance(obj.get("pattern"), str)


def is_stix_object(obj: Mapping[str, Any]) -> bool:
    """Any STIX 2.x object (`"id": "<type>--<uuid>"`): non-indicators are ignored silently."""
    ident = obj.get("id")
    return isinstance(obj.get("type"), str) and isinstance(ident, str) and "--" in ident


def indicator_rows(line: int, obj: Mapping[str, Any], *, position: bool = False) -> Iterator[RawRow]:
    """One STIX indicator object -> its RawRows (several for an OR pattern)."""
    pattern = str(obj.get("pattern"))
    extra: dict[str, str] = {}
    for key, field in (("name", FIELD_TITLE), ("description", FIELD_DESCRIPTION), ("valid_until", FIELD_EXPIRATION)):
        if isinstance(obj.get(key), str) and obj[key]:
            extra[field] = obj[key]
    pattern_type = obj.get("pattern_type")
    if pattern_type not in (None, "stix"):
        yield RawRow(
            line,
            {FIELD_VALUE: pattern, **extra},
            position,
            invalid=f"pattern_type {pattern_type} is not STIX",
            code="stix-pattern-type",
        )
        return
    version = "2.0" if obj.get("spec_version") in (None, "2.0") and pattern_type is None else "2.1"
    try:
        tree = _parse(pattern, version)
        branches = list(_observation_branches(tree))
    except _Unexpressible as exc:
        yield RawRow(line, {FIELD_VALUE: pattern, **extra}, position, invalid=str(exc), code="stix-unexpressible")
        return
    except RecursionError:
        # Nesting (parentheses within parentheses) deeper than the interpreter's stack: this one pattern is
        # invalid, the bundle goes on. Chains of one operator, however long, are read in a loop (`_convert`).
        why = "STIX pattern is nested too deeply to be read"
        yield RawRow(line, {FIELD_VALUE: pattern[:200], **extra}, position, invalid=why, code="stix-unexpressible")
        return
    # STIX 2.1 §3.2 `revoked`: the producer withdrew the indicator; it must not become a block.
    skip = REVOKED_REASON if obj.get("revoked") is True else None
    for group in branches:
        yield from _group_rows(line, group, pattern, extra, position, skip)


REVOKED_REASON = "STIX indicator revoked by its producer"


def _group_rows(
    line: int, group: list[Cmp], pattern: str, extra: dict[str, str], position: bool, skip: str | None = None
) -> list[RawRow]:
    try:
        expressed = _express(group)
    except _Unexpressible as exc:
        raw = group[0].values[0] if len(group) == 1 and len(group[0].values) == 1 else pattern
        if len(group) == 1 and group[0].op not in ("=", "!=", "NOT ="):
            raw = pattern
        return [RawRow(line, {FIELD_VALUE: raw, **extra}, position, invalid=str(exc), code="stix-unexpressible")]
    code = "stix-revoked" if skip else None
    return [
        RawRow(line, {FIELD_VALUE: value, FIELD_TYPE: itype.value, **extra}, position, note=note, skip=skip, code=code)
        for value, itype, note in expressed
    ]


def _express(group: list[Cmp]) -> list[tuple[str, IndicatorType, str | None]]:
    """An AND-group of comparisons -> [(value, Defender type, note)] or _Unexpressible.

    Several only for an AND of one file's hashes (`[file:hashes.MD5 = 'a' AND file:hashes.'SHA-256' = 'b']`):
    each hash names the same file, and Defender matches a file by any of them, so each is imported, noted.
    """
    for c in group:
        if c.op != "=":
            raise _Unexpressible(f"STIX {c.name} with {_operator(c.op)} cannot be expressed as a Defender indicator")
    objects = {c.obj for c in group}
    if len(objects) > 1:
        raise _Unexpressible(f"STIX AND of different objects ({', '.join(sorted(objects))}) cannot be expressed")
    if group[0].obj == "network-traffic":
        return _network_traffic(group)
    return _one_object(group)


def _one_object(group: list[Cmp]) -> list[tuple[str, IndicatorType, str | None]]:
    """Equality comparisons on one object (not network traffic): one that Defender can match, or a file's hashes
    beside conditions the hashes make redundant."""
    usable = [(c, _single(c)) for c in group]
    good = [(c, t) for c, t in usable if t is not None]
    if len(group) == 1:
        if not good:
            raise _Unexpressible(_why(group[0]))
        c, t = good[0]
        return [(_value(c, t), t, None)]
    if group[0].obj == "file" and len(good) == 1:
        c, t = good[0]
        dropped = ", ".join(x.name for x, tt in usable if tt is None)
        return [(_value(c, t), t, f"STIX condition {dropped} dropped: the hash identifies the file")]
    if group[0].obj == "file" and len(good) > 1:
        return _file_hashes(usable, good)
    names = " AND ".join(c.name for c in group)
    raise _Unexpressible(f"STIX {names} cannot be expressed as one Defender indicator")


def _operator(op: str) -> str:
    """What a comparison operator other than `=` asks for, in the words of the reason."""
    if op.endswith("ISSUBSET"):
        return "an address range (ISSUBSET)"
    if op.startswith("NOT") or op == "!=":
        return f"a negated comparison ({op})"
    return {"MATCHES": "a regular expression (MATCHES)", "LIKE": "a wildcard (LIKE)"}.get(
        op.replace("NOT ", ""), f"operator {op}"
    )


def _file_hashes(
    usable: list[tuple[Cmp, IndicatorType | None]], good: list[tuple[Cmp, IndicatorType]]
) -> list[tuple[str, IndicatorType, str | None]]:
    """An AND of one file's hashes: each hash imported, with a note (other conditions on the file dropped)."""
    hashes = " AND ".join(c.name for c, _ in good)
    others = [x.name for x, tt in usable if tt is None]
    note = f"STIX AND of one file's hashes ({hashes}): each hash imported"
    if others:
        note += f"; condition {', '.join(others)} dropped"
    return [(_value(c, t), t, note) for c, t in good]


def _value(c: Cmp, t: IndicatorType | None) -> str:
    v = c.values[0]
    if t is IndicatorType.IpAddress and "/" in v:
        raise _Unexpressible(f"STIX {c.name} is a CIDR range ({v}); Defender IpAddress takes single addresses")
    return v


def _single(c: Cmp) -> IndicatorType | None:
    if len(c.values) != 1:
        return None
    key = tuple(p.lower() for p in c.path)
    if c.obj == "file" and len(key) == 2 and key[0] == "hashes":
        return _HASH_TYPES.get(_hash_key(key[1]))
    if c.obj == "x509-certificate" and len(key) == 2 and key[0] == "hashes" and _hash_key(key[1]) == "sha1":
        return IndicatorType.CertificateThumbprint
    if key == ("value",):
        return {
            "ipv4-addr": IndicatorType.IpAddress,
            "ipv6-addr": IndicatorType.IpAddress,
            "domain-name": IndicatorType.DomainName,
            "url": IndicatorType.Url,
        }.get(c.obj)
    return None


def _hash_key(k: str) -> str:
    return re.sub(r"[^0-9a-z]", "", k.lower())


def _why(c: Cmp) -> str:
    if c.obj == "x509-certificate":
        return f"STIX {c.name} cannot be expressed: Defender matches certificates by SHA-1 thumbprint only"
    if c.obj == "file":
        return f"STIX {c.name} cannot be expressed: Defender matches files by MD5, SHA-1 or SHA-256 only"
    return f"STIX {c.name} cannot be expressed as a Defender indicator"


def _network_traffic(group: list[Cmp]) -> list[tuple[str, IndicatorType, str | None]]:
    values = [c for c in group if len(c.path) == 2 and c.path[0] in ("src_ref", "dst_ref") and c.path[1] == "value"]
    types = [c for c in group if len(c.path) == 2 and c.path[0] in ("src_ref", "dst_ref") and c.path[1] == "type"]
    if len(values) == 1 and len(values) + len(types) == len(group):
        ref = values[0].path[0]
        if all(t.path[0] == ref and t.values[0] in ("ipv4-addr", "ipv6-addr") for t in types):
            v = values[0]
            return [(_value(v, IndicatorType.IpAddress), IndicatorType.IpAddress, None)]
    names = " AND ".join(c.name for c in group)
    raise _Unexpressible(f"STIX {names} cannot be expressed: only a single network-traffic address can")


# --- pattern parsing -------------------------------------------------------------------------


def _parse(pattern: str, version: str) -> Any:
    from stix2patterns.exceptions import ParseException

    if version == "2.0":
        from stix2patterns.v20.pattern import Pattern
    else:
        from stix2patterns.v21.pattern import Pattern  # type: ignore[assignment]

    try:
        compiled = Pattern(pattern)
    except ParseException as exc:
        raise _Unexpressible(f"STIX pattern does not parse: {exc}") from None
    except Exception as exc:  # the ANTLR runtime raises assorted errors on odd input
        raise _Unexpressible(f"STIX pattern does not parse: {exc}") from None

    class _Tree:
        def visit(self, tree: Any) -> Any:
            return _convert(tree)

    return compiled.visit(_Tree())


def _rule_children(ctx: Any) -> list[Any]:
    from antlr4 import ParserRuleContext

    return [c for c in ctx.getChildren() if isinstance(c, ParserRuleContext)]


# Binary rules of the grammar and the operator each stands for.
_BINARY = {
    "ObservationExpressions": "followedby",
    "ObservationExpressionOr": "obs-or",
    "ObservationExpressionAnd": "obs-and",
    "ComparisonExpression": "or",
    "ComparisonExpressionAnd": "and",
}


def _rule_name(ctx: Any) -> str:
    return type(ctx).__name__.removesuffix("Context")


def _convert(ctx: Any) -> Any:
    """ANTLR parse tree -> ("or"|"and"|"obs-or"|"obs-and"|"followedby", operand, ...) | ("qualified", text,
    tree) | ("simple", tree) | Cmp.

    A chain of one operator (`[a] OR [b] OR …`, which the grammar nests one level per term) becomes one n-ary
    node, walked in a loop: a feed's 1,000-term OR must not recurse 1,000 frames deep.
    """
    name = _rule_name(ctx)
    kids = _rule_children(ctx)
    if name.startswith("PropTest") and name != "PropTestParen":
        return _comparison(ctx, name)
    if name in ("ObservationExpressionWithin", "ObservationExpressionRepeated", "ObservationExpressionStartStop"):
        return ("qualified", _source_text(kids[-1]), _convert(kids[0]))
    if name == "ObservationExpressionSimple":
        return ("simple", _convert(kids[0]))
    if len(kids) == 2 and name in _BINARY:
        operands = [kids[1]]
        left = kids[0]
        while _rule_name(left) == name and len(pair := _rule_children(left)) == 2:
            operands.append(pair[1])
            left = pair[0]
        operands.append(left)
        return (_BINARY[name], *(_convert(o) for o in reversed(operands)))
    if len(kids) == 1:
        return _convert(kids[0])
    raise _Unexpressible(f"STIX pattern element {name} is not supported")


def _source_text(ctx: Any) -> str:
    """The pattern text a rule matched, spaces kept (getText() drops them)."""
    try:
        return str(ctx.start.getInputStream().getText(ctx.start.start, ctx.stop.stop))
    except AttributeError:
        return str(ctx.getText())


def _comparison(ctx: Any, name: str) -> Cmp:
    path_text = ctx.objectPath().getText()
    obj, _, rest = path_text.partition(":")
    steps = tuple(_unquote(s) for s in _PATH_STEP.findall(rest))
    negated = "NOT " if ctx.NOT() else ""
    if name == "PropTestEqual":
        op = "=" if ctx.EQ() else "!="
        values: tuple[str, ...] = (_literal(ctx.primitiveLiteral().getText()),)
    elif name == "PropTestSet":
        op = "IN"
        values = tuple(_literal(c.getText()) for c in _rule_children(ctx.setLiteral()))
    else:
        op = {
            "PropTestOrder": "ORDER",
            "PropTestLike": "LIKE",
            "PropTestRegex": "MATCHES",
            "PropTestIsSubset": "ISSUBSET",
            "PropTestIsSuperset": "ISSUPERSET",
            "PropTestExists": "EXISTS",
        }.get(name, name)
        literal = getattr(ctx, "StringLiteral", None)
        token = literal() if literal else None
        values = (_literal(token.getText()),) if token is not None else ()
    if op == "IN" and not negated:
        return Cmp(obj, steps, "IN", values)
    return Cmp(obj, steps, negated + op, values)


def _unquote(step: str) -> str:
    if len(step) >= 2 and step[0] == step[-1] == "'":
        return step[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return step


def _literal(text: str) -> str:
    return _unquote(text)


def _observation_branches(tree: Any) -> Iterator[list[Cmp]]:
    """Observation-level OR branches, each turned into AND-groups (disjunctive normal form)."""
    kind = tree[0]
    if kind == "obs-or":
        for operand in tree[1:]:
            yield from _observation_branches(operand)
    elif kind in ("obs-and", "followedby"):
        word = "AND" if kind == "obs-and" else "FOLLOWEDBY"
        raise _Unexpressible(f"STIX observations joined by {word} cannot be expressed as Defender indicators")
    elif kind == "qualified":
        raise _Unexpressible(f"STIX qualifier {tree[1]} cannot be expressed as a Defender indicator")
    elif kind == "simple":
        yield from _dnf(tree[1])
    else:  # pragma: no cover - the grammar gives no other shape
        raise _Unexpressible("STIX pattern has an unexpected shape")


def _dnf(node: Any) -> list[list[Cmp]]:
    if isinstance(node, Cmp):
        if node.op == "IN":  # `x IN ('a','b')` is `x = 'a' OR x = 'b'`
            return [[Cmp(node.obj, node.path, "=", (v,))] for v in node.values]
        return [[node]]
    kind, *operands = node
    out = _dnf(operands[0])
    for operand in operands[1:]:
        more = _dnf(operand)
        out = out + more if kind == "or" else [x + y for x, y in itertools.product(out, more)]
        if len(out) > _MAX_BRANCHES:
            raise _Unexpressible("STIX pattern has too many alternatives")
    return out
