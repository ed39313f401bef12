"""Validation: reader items → one Outcome per RawRow, with defaults applied and duplicates found.

Core module: standard library only, no I/O. `Ignored` and `FileProblem` pass through unchanged.
Each RawRow becomes exactly one `Outcome`: decided ones (`invalid`, `skipped`, `duplicate`) carry
their final status; the rest have `status=None` and an `Indicator` ready to submit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from shared.checks.normalise import normalise
from shared.checks.rules import (
    MAX_DESCRIPTION_LENGTH,
    MAX_RECOMMENDED_ACTIONS_LENGTH,
    MAX_TITLE_LENGTH,
    ActionChoice,
    default_description,
    default_expiration,
    first_problem,
    resolve_action,
    resolve_category,
    resolve_expiration,
    resolve_generate_alert,
    resolve_mitre,
    resolve_rbac,
    resolve_severity,
    resolve_text,
)
from shared.checks.spill import SpillStore
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
    Action,
    FileProblem,
    Ignored,
    Indicator,
    IndicatorType,
    Outcome,
    Problem,
    RawRow,
    Severity,
    Status,
    new_indicator,
    new_outcome,
)
from shared.core.options import NO_OPTIONS, InputOptions, row_defaults
from shared.core.settings import Settings
from shared.core.text import TRIM

_TYPE_NAME = {t: t.value for t in IndicatorType}  # Enum.value is a slow descriptor on the hot path
_ACTION_NAME = {a: a.value for a in Action}
_INVALID = Status.invalid
_SKIPPED = Status.skipped
_DUPLICATE = Status.duplicate
_DUPLICATE_CODE = "duplicate"
_KEY_MASK = (1 << 60) - 1
# Optional fields most feeds never carry; a row without any of them skips their look-ups.
_RARE_FIELDS = frozenset(
    {
        FIELD_GENERATE_ALERT,
        FIELD_RECOMMENDED_ACTIONS,
        FIELD_RBAC_GROUPS,
        FIELD_CATEGORY,
        FIELD_MITRE,
        FIELD_EXTERNAL_ID,
        FIELD_APPLICATION,
        FIELD_EDUCATE_URL,
    }
)
_TYPE_OFFSET = {t: i << 56 for i, t in enumerate(IndicatorType)}  # distinct below 2**60 for up to 16 types


# What one distinct indicator costs the in-memory index (dict slot, key and line objects), measured on CPython
# 3.11: about 100 bytes (benchmarks/bench_dupindex.py prints the figure).
ENTRY_BYTES = 100


class DuplicateIndex:
    """First line of each distinct (type, value), in memory that grows only with distinct indicators, up to
    `max_mb` (DUPLICATE_INDEX_MAX_MB): beyond it the entries spill to a temporary file (`checks.spill`).

    Keys are 60-bit integers (32 bytes each in CPython instead of the whole string): the interpreter's
    string hash of the value (SipHash, keyed per process: PEP 456) plus a per-type offset, so one value
    under two types gives two keys. Two distinct indicators share a key with probability about n²/2⁶¹ —
    below one in a million for a million distinct indicators; such a clash would report the second as
    a duplicate of the first, never lose a row.

    Spilling: when the in-memory part holds `max_mb` worth of entries it moves them to the spill store and
    starts again; a key not in memory is then looked up there. Memory stays under the ceiling whatever the
    input; each look-up of a new key costs one indexed read of the file after the first spill.
    """

    __slots__ = ("_first", "_max", "_spill", "spills")

    def __init__(self, max_mb: float = 256) -> None:
        self._first: dict[int, int] = {}
        self._max = max(1, int(max_mb * 1024 * 1024) // ENTRY_BYTES)
        self._spill: SpillStore | None = None
        self.spills = 0

    def first_line(self, t: IndicatorType, value: str, line: int) -> int | None:
        """The line of an earlier entry with the same key, or None (and remember this one)."""
        key = (hash(value) + _TYPE_OFFSET[t]) & _KEY_MASK
        first = self._first.get(key)
        if first is None:
            if self._spill is not None:
                first = self._spill.get(key)
                if first is not None:
                    return first
            self._first[key] = line
            if len(self._first) >= self._max:
                self._flush()
        return first

    def _flush(self) -> None:
        if self._spill is None:
            self._spill = SpillStore()
        self._spill.put_many(self._first)
        self._first = {}
        self.spills += 1

    def close(self) -> None:
        """Delete the spill file, if there is one."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def __len__(self) -> int:
        return len(self._first) + (self._spill.size if self._spill is not None else 0)


_T = TypeVar("_T")
MEMO_LIMIT = 512  # distinct raw spellings a field memo keeps (a column of unique texts fills it, then resolves)


class _Memo(dict[str | None, _T]):
    """A field's exact raw text → its resolved value or Problem (the validator's one speed trick).

    A file repeats a handful of spellings of an action, a severity, a title or an expiry on every row;
    `memo[raw]` resolves each of them once and is one dict look-up after that. An absent or empty field
    (None, "") takes `default` without its resolver, as it always has. Keys are the raw strings as read
    (untrimmed), so a memo never merges spellings that its resolver would tell apart; the first MEMO_LIMIT
    spellings are kept. tests/unit/test_validate_property.py pins it to resolving every row.
    """

    __slots__ = ("_default", "_resolve")

    def __init__(self, resolve: Callable[[str], _T], default: _T) -> None:
        super().__init__()
        self._resolve = resolve
        self._default = default

    def __missing__(self, raw: str | None) -> _T:
        value = self._resolve(raw) if raw else self._default
        if len(self) < MEMO_LIMIT:
            self[raw] = value
        return value


# The row's action resolved, and the generateAlert that goes with it when the row gives none.
_ActionAndAlert = tuple[ActionChoice, bool | None]
# recommendedActions, rbacGroupNames, category, mitreTechniques, externalId, application, educateUrl.
_RareValues = tuple[
    str | None, tuple[str, ...] | None, str | None, tuple[str, ...] | None, str | None, str | None, str | None
]


class Validator:
    """Applies normalisation, rules and defaults; caches everything that depends only on the settings and
    the input's options (`core.options.row_defaults`)."""

    def __init__(
        self, settings: Settings, *, options: InputOptions = NO_OPTIONS, source: str, now: datetime | None = None
    ) -> None:
        defaults = row_defaults(settings, options)
        self.defaults = defaults
        self.now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self.dupes = DuplicateIndex(settings.duplicate_index_max_mb)
        self._title = defaults.title
        self._description = default_description(defaults.description, source)
        self._rbac = resolve_rbac(None, defaults)
        self._severity = defaults.severity
        self._longest = settings.max_value_length
        self._no_rare: _RareValues = (None, self._rbac, None, None, None, None, None)
        # Per type: the default action (DEFAULT_ACTION or file metadata) with its generateAlert, the default
        # expiry, and the memos of the row's raw action and expiry.
        self._defaults = {t: self._resolve_action(None, t) for t in IndicatorType}
        self._default_expiry = {t: default_expiration(t, defaults, self.now) for t in IndicatorType}
        self._actions: dict[IndicatorType, _Memo[_ActionAndAlert | Problem]] = {
            t: _Memo(partial(self._resolve_action, t=t), self._defaults[t]) for t in IndicatorType
        }
        self._expiries: dict[IndicatorType, _Memo[str | Problem | None]] = {
            t: _Memo(partial(resolve_expiration, t=t, defaults=defaults, now=self.now), self._default_expiry[t])
            for t in IndicatorType
        }
        self._severities: _Memo[Severity | Problem] = _Memo(
            partial(resolve_severity, defaults=defaults), self._severity
        )
        self._titles: _Memo[str | Problem] = _Memo(
            partial(resolve_text, default=self._title, field="title", limit=MAX_TITLE_LENGTH), self._title
        )

    def _resolve_action(self, raw: str | None, t: IndicatorType) -> _ActionAndAlert | Problem:
        """The action (`rules.resolve_action`) and the generateAlert it implies when the row gives none."""
        choice = resolve_action(raw, t, self.defaults)
        if isinstance(choice, Problem):
            return choice
        alert = resolve_generate_alert(None, self.defaults, choice)
        assert not isinstance(alert, Problem)  # no row value: nothing to reject
        return choice, alert

    def row(self, row: RawRow) -> Outcome:
        fields = row.fields
        raw_value = fields.get(FIELD_VALUE) or ""
        hint = fields.get(FIELD_TYPE)
        if row.invalid is not None or row.skip is not None:
            return self._decided_by_reader(row, raw_value, hint)
        if len(raw_value) > self._longest:
            return self._too_long(row, raw_value, hint)
        c = normalise(raw_value, hint)
        if isinstance(c, Problem):
            return self._invalid(row, raw_value.strip(TRIM), _hint_name(hint), fields.get(FIELD_ACTION), c, ())
        t = c.type
        value = c.value
        type_name = _TYPE_NAME[t]
        notes = c.notes
        if row.note:
            notes = (*notes, row.note)
        problem = None if c.checked else first_problem(t, value)
        if problem is not None:
            return self._invalid(row, value, type_name, fields.get(FIELD_ACTION), problem, notes)
        if len(fields) == 1 + (FIELD_TYPE in fields):  # only the value and maybe a type (most rows of big feeds)
            built = self._defaulted(t, value, notes)
        else:
            built = self._indicator(t, value, fields, notes)
        if isinstance(built, Problem):
            return self._invalid(row, value, type_name, fields.get(FIELD_ACTION), built, notes, about_value=False)
        indicator, notes = built
        line = row.line
        first = self.dupes.first_line(t, value, line)
        if first is not None:
            return new_outcome(
                line=line,
                value=value,
                type=type_name,
                action=_ACTION_NAME[indicator.action],
                status=_DUPLICATE,
                reason="; ".join((*notes, f"duplicate of line {first}")),
                id=None,
                indicator=indicator,
                position=row.position,
                notes=notes,
                duplicate_of=first,
                code=_DUPLICATE_CODE,
            )
        return new_outcome(
            line=line,
            value=value,
            type=type_name,
            action=_ACTION_NAME[indicator.action],
            status=None,
            reason=None,
            id=None,
            indicator=indicator,
            position=row.position,
            notes=notes,
            duplicate_of=None,
            code=None,
        )

    def _indicator(
        self, t: IndicatorType, value: str, fields: Mapping[str, str], notes: tuple[str, ...]
    ) -> tuple[Indicator, tuple[str, ...]] | Problem:
        """The row's fields resolved in a fixed order (the first problem found is the one reported)."""
        get = fields.get
        rare = not _RARE_FIELDS.isdisjoint(fields)  # without them, their look-ups and checks are skipped
        decided = self._actions[t][get(FIELD_ACTION)]
        if rare:
            decided = self._alert(decided, get(FIELD_GENERATE_ALERT))
        if isinstance(decided, Problem):
            return decided
        choice, alert = decided
        expiry = self._expiries[t][get(FIELD_EXPIRATION)]
        if isinstance(expiry, Problem):
            return expiry
        severity = self._severities[get(FIELD_SEVERITY)]
        if isinstance(severity, Problem):
            return severity
        title = self._titles[get(FIELD_TITLE)]
        if isinstance(title, Problem):
            return title
        raw = get(FIELD_DESCRIPTION)  # often unique to the row (`comment` columns): not memoised
        description = (
            resolve_text(raw, self._description, "description", MAX_DESCRIPTION_LENGTH) if raw else self._description
        )
        if isinstance(description, Problem):
            return description
        extra = self._rare(get) if rare else self._no_rare
        if isinstance(extra, Problem):
            return extra
        recommended, rbac, category, mitre, external_id, application, educate_url = extra
        indicator = new_indicator(
            indicatorValue=value,
            indicatorType=t,
            action=choice.action,
            title=title,
            description=description,
            severity=severity,
            expirationTime=expiry,
            recommendedActions=recommended,
            rbacGroupNames=rbac,
            category=category,
            mitreTechniques=mitre,
            generateAlert=alert,
            externalId=external_id,
            application=application,
            educateUrl=educate_url,
        )
        return indicator, notes + choice.notes

    def _defaulted(
        self, t: IndicatorType, value: str, notes: tuple[str, ...]
    ) -> tuple[Indicator, tuple[str, ...]] | Problem:
        """A row of only a value (and maybe a type): `_indicator` with every field taking its default."""
        decided = self._defaults[t]
        if isinstance(decided, Problem):
            return decided
        choice, alert = decided
        indicator = new_indicator(
            indicatorValue=value,
            indicatorType=t,
            action=choice.action,
            title=self._title,
            description=self._description,
            severity=self._severity,
            expirationTime=self._default_expiry[t],
            recommendedActions=None,
            rbacGroupNames=self._rbac,
            category=None,
            mitreTechniques=None,
            generateAlert=alert,
            externalId=None,
            application=None,
            educateUrl=None,
        )
        return indicator, notes + choice.notes

    def _alert(self, decided: _ActionAndAlert | Problem, raw: str | None) -> _ActionAndAlert | Problem:
        """The row's generateAlert beside its action, when it gives one (else the action's own stands)."""
        if not raw or isinstance(decided, Problem):
            return decided
        choice = decided[0]
        alert = resolve_generate_alert(raw, self.defaults, choice)
        if isinstance(alert, Problem):
            return alert
        return choice, alert

    def _rare(self, get: Callable[[str], str | None]) -> _RareValues | Problem:
        """The fields most feeds never carry, resolved in the order their problems are reported."""
        raw = get(FIELD_RECOMMENDED_ACTIONS)
        recommended = resolve_text(raw, "", "recommendedActions", MAX_RECOMMENDED_ACTIONS_LENGTH) if raw else None
        if isinstance(recommended, Problem):
            return recommended
        raw = get(FIELD_RBAC_GROUPS)
        rbac = resolve_rbac(raw, self.defaults) if raw else self._rbac
        raw = get(FIELD_CATEGORY)
        category = resolve_category(raw) if raw else None
        if isinstance(category, Problem):
            return category
        raw = get(FIELD_MITRE)
        mitre = resolve_mitre(raw) if raw else None
        if isinstance(mitre, Problem):
            return mitre
        return (
            recommended or None,
            rbac,
            category,
            mitre,
            _opt(get(FIELD_EXTERNAL_ID)),
            _opt(get(FIELD_APPLICATION)),
            _opt(get(FIELD_EDUCATE_URL)),
        )

    def _invalid(
        self,
        row: RawRow,
        value: str,
        type_name: str | None,
        raw_action: str | None,
        problem: Problem,
        notes: tuple[str, ...],
        *,
        about_value: bool = True,
    ) -> Outcome:
        reason = "; ".join((*notes, problem.message)) if notes else problem.message
        if row.where is not None and about_value:
            reason = f"{reason} ({row.where})"  # every reason names the input's column or key (issue "recall")
        action = raw_action.strip(TRIM) or None if raw_action else None
        return new_outcome(
            line=row.line,
            value=value,
            type=type_name,
            action=action,
            status=_INVALID,
            reason=reason,
            id=None,
            indicator=None,
            position=row.position,
            notes=notes,
            duplicate_of=None,
            code=problem.code,
        )

    def _too_long(self, row: RawRow, raw_value: str, hint: str | None) -> Outcome:
        """A value longer than MAX_VALUE_LENGTH: refused before any pattern runs over it (a 20 MB value must
        not cost gigabytes of regular-expression backtracking); the report shows its start."""
        problem = Problem(
            "value-too-long",
            f"the value is {len(raw_value)} characters long; values longer than {self._longest} "
            "(MAX_VALUE_LENGTH) are not read as indicators",
        )
        shown = raw_value[:200].strip(TRIM) + "…"
        return self._invalid(row, shown, _hint_name(hint), row.fields.get(FIELD_ACTION), problem, ())

    def _decided_by_reader(self, row: RawRow, raw_value: str, hint: str | None) -> Outcome:
        """A reader's own verdict (bad NDJSON line, inexpressible STIX pattern, MISP to_ids false) stands."""
        if row.invalid is not None:
            status = _INVALID
            reason = row.invalid.strip() or "rejected by the reader"
            code = row.code or "reader-invalid"
        else:
            status = _SKIPPED
            reason = (row.skip or "").strip() or "skipped by the reader"
            code = row.code or "reader-skipped"
        notes = (row.note,) if row.note else ()
        if notes:
            reason = "; ".join((*notes, reason))
        if row.where is not None and status is _INVALID:
            reason = f"{reason} ({row.where})"
        raw_action = row.fields.get(FIELD_ACTION)
        return Outcome(
            line=row.line,
            value=raw_value.strip(TRIM),
            type=_hint_name(hint),
            action=raw_action.strip(TRIM) or None if raw_action else None,
            status=status,
            reason=reason,
            position=row.position,
            notes=notes,
            code=code,
        )


def _hint_name(hint: str | None) -> str | None:
    if not hint:
        return None
    return hint.strip(TRIM) or None


def _opt(raw: str | None) -> str | None:
    if not raw:
        return None
    return raw.strip(TRIM) or None


def validate(
    items: Iterable[RawRow | Ignored | FileProblem],
    settings: Settings,
    *,
    options: InputOptions = NO_OPTIONS,
    source: str,
    now: datetime | None = None,
) -> Iterator[Outcome | Ignored | FileProblem]:
    """Turn every RawRow into exactly one Outcome; pass Ignored and FileProblem through unchanged.

    `options`: the input's own (`core.options`); `source` fills `{source}` in DEFAULT_DESCRIPTION;
    `now` (UTC) decides past expiry and default expiry dates (injectable for tests).
    """
    v = Validator(settings, options=options, source=source, now=now)
    row = v.row
    try:
        for item in items:
            if isinstance(item, RawRow):
                yield row(item)
            else:
                yield item
    finally:
        v.dupes.close()
