"""What the HTML report counts as the entries stream by (CONTRACT.md "Reports", [html]).

Core module: standard library only, no I/O. `ReportWriter` feeds an `HtmlAggregate` once per entry; the page
(`html_report.render_page`) is drawn from it when the run finishes. Bounded whatever the input's size: counts by
(status, indicator type, code) and, for `invalid` and `failed` entries, the first `LINES_PER_GROUP` lines of each
code, with caps on the distinct types, codes and keys tracked (what passes a cap is counted under OTHER: totals
stay exact).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.core.model import Outcome, Status

MAX_GROUPS = 30  # rejected/failed groups shown; the rest are folded into one "other" group
LINES_PER_GROUP = 5  # first lines shown (and kept) per group
MAX_TYPES = 50  # distinct indicator types counted separately (an `invalid` entry's type is the input's own text)
MAX_CODES = 200  # distinct codes counted separately (codes are the app's own vocabulary; a cap all the same)
MAX_KEYS = 2000  # distinct (status, type, code) counters
VALUE_CHARS = 120  # characters of a value shown
REASON_CHARS = 240  # characters of a reason shown
OTHER = "\x00other"  # the folded type / code (never a real type after `text()`, which escapes NUL)

REJECTED = frozenset({"invalid", "failed"})  # the statuses whose entries are grouped with their first lines

# A count of one (status, type, code) and the first lines of one (status, code) group.
_Key = tuple[str, str | None, str]
_Sample = tuple[int, bool, str, str | None, str | None]  # line, position, value, type, reason (all cut)


def _cut(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit + 1]  # one character more than shown: text() then adds the `…`


def sample(outcome: Outcome) -> _Sample:
    """One line of a group as kept: line, position flag, and value, type and reason cut to what is shown."""
    return (
        outcome.line,
        outcome.position,
        _cut(outcome.value, VALUE_CHARS) or "",
        _cut(outcome.type, VALUE_CHARS),
        _cut(outcome.reason, REASON_CHARS),
    )


class HtmlAggregate:
    """What the HTML page needs from the entries, collected as they stream by; bounded memory.

    Counting is on the report writer's hot path. The writer keeps a memo of the combinations of status, type,
    action, reason and code that repeat from entry to entry; each kept combination gets a tally of its own from
    `tally()` (one increment per entry, plus a list append for the first lines of a rejected or failed group).
    Entries outside the memo (those with a Defender id, or past its size) go through `add()`. Everything past a
    cap is counted under OTHER, so totals stay exact.
    """

    __slots__ = ("_codes", "_counts", "_tallies", "_types", "samples")

    def __init__(self) -> None:
        self._counts: dict[_Key, int] = {}
        self._tallies: list[tuple[_Key, list[int]]] = []
        self.samples: dict[tuple[str, str], list[_Sample]] = {}
        self._types: set[str | None] = set()
        self._codes: set[str] = set()

    def add(self, status: Status, outcome: Outcome, code: str) -> None:
        """Count one final entry; `code` is the one the JSON report writes for it."""
        key = self._admit((status._value_, outcome.type, code))
        self._counts[key] = self._counts.get(key, 0) + 1
        lines = self._lines(key)
        if lines is not None and len(lines) < LINES_PER_GROUP:
            lines.append(sample(outcome))

    def tally(self, status: Status, typ: str | None, code: str) -> tuple[list[int], list[_Sample] | None]:
        """A counter for one kept combination (the caller increments it once per entry), and the list of the
        first lines of its group when the status is `invalid` or `failed` (the caller appends while it is
        shorter than LINES_PER_GROUP), else None."""
        key = self._admit((status._value_, typ, code))
        cell = [0]
        self._tallies.append((key, cell))
        return cell, self._lines(key)

    def _lines(self, key: _Key) -> list[_Sample] | None:
        if key[0] not in REJECTED:
            return None
        group = (key[0], key[2])
        lines = self.samples.get(group)
        if lines is None:
            lines = self.samples[group] = []
        return lines

    def _admit(self, key: _Key) -> _Key:
        """The key as counted: its type and/or code folded into OTHER past the caps."""
        status, typ, code = key
        if typ not in self._types:
            if len(self._types) < MAX_TYPES:
                self._types.add(typ)
            else:
                typ = OTHER
        if code not in self._codes:
            if len(self._codes) < MAX_CODES:
                self._codes.add(code)
            else:
                code = OTHER
        key = (status, typ, code)
        if key not in self._counts and len(self._counts) >= MAX_KEYS:
            key = (status, OTHER, OTHER)
        return key

    @property
    def counts(self) -> dict[_Key, int]:
        """(status, type, code) → entries, tallies included."""
        out = dict(self._counts)
        for key, cell in self._tallies:
            if cell[0]:
                out[key] = out.get(key, 0) + cell[0]
        return out

    def footprint(self) -> dict[str, int]:
        """Sizes of what is held (for tests of the bounds): counters, groups, sample lines, characters kept."""
        lines = [s for group in self.samples.values() for s in group]
        return {
            "counters": len(self._counts) + len(self._tallies),
            "types": len(self._types),
            "codes": len(self._codes),
            "groups": len(self.samples),
            "lines": len(lines),
            "chars": sum(len(s[2]) + len(s[3] or "") + len(s[4] or "") for s in lines),
        }

    # ------------------------------------------------------------------------------------------ views

    def by_type(self) -> dict[str, dict[str, int]]:
        """Type (None → "unknown") → status → count."""
        out: dict[str, dict[str, int]] = {}
        for (status, typ, _code), n in self.counts.items():
            row = out.setdefault("unknown" if typ is None else typ, {})
            row[status] = row.get(status, 0) + n
        return out

    def by_code(self) -> dict[tuple[str, str], int]:
        """(status, code) → count."""
        out: dict[tuple[str, str], int] = {}
        for (status, _typ, code), n in self.counts.items():
            out[(status, code)] = out.get((status, code), 0) + n
        return out

    def groups(self, limit: int = MAX_GROUPS) -> list[Group]:
        """The `invalid` and `failed` groups, largest first: at most `limit`, then one "other" with the rest."""
        counted = sorted(
            ((k, n) for k, n in self.by_code().items() if k[0] in REJECTED),
            key=lambda kn: (kn[0][1] == OTHER, -kn[1], kn[0][1], kn[0][0]),  # codes past MAX_CODES go to "other"
        )
        named = [kn for kn in counted if kn[0][1] != OTHER]
        shown = [Group(s, c, n, self.samples.get((s, c), [])) for (s, c), n in named[:limit]]
        rest = counted[len(shown) :]
        if rest:
            lines = sorted((x for (s, c), _n in rest for x in self.samples.get((s, c), [])), key=lambda x: x[0])
            shown.append(
                Group(
                    "other",
                    OTHER,
                    sum(n for _k, n in rest),
                    lines[:LINES_PER_GROUP],
                    folded=tuple(c for (_s, c), _n in rest if c != OTHER),
                    past_cap=any(c == OTHER for (_s, c), _n in rest),
                )
            )
        return shown


class Group:
    """One group of rejected or failed entries: status, code, exact count, first lines (and folded codes)."""

    __slots__ = ("code", "count", "folded", "lines", "past_cap", "status")

    def __init__(
        self,
        status: str,
        code: str,
        count: int,
        lines: Sequence[_Sample],
        *,
        folded: tuple[str, ...] = (),
        past_cap: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        self.count = count
        self.lines = list(lines)
        self.folded = folded  # the codes folded into "other"
        self.past_cap = past_cap  # and entries whose codes were past MAX_CODES (not named)
