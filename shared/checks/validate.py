"""Validation: reader items → one Outcome per RawRow, with defaults applied and duplicates found.

Core module: standard library only, no I/O. `Ignored` and `FileProblem` pass through unchanged.
Each RawRow becomes exactly one `Outcome`: decided ones (`invalid`, `skipped`, `duplicate`) carry
their final status; the rest have `status=None` and an `Indicator` ready to submit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

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
    Status,
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
        self._default_action: dict[IndicatorType, ActionChoice | Problem] = {}
        self._default_expiry: dict[IndicatorType, str | None] = {}
        self._default_alert: dict[IndicatorType, bool | None] = {}
        for t in IndicatorType:
            choice = resolve_action(None, t, defaults)
            self._default_action[t] = choice
            self._default_expiry[t] = default_expiration(t, defaults, self.now)
            if isinstance(choice, ActionChoice):
                alert = resolve_generate_alert(None, defaults, choice)
                assert not isinstance(alert, Problem)
                self._default_alert[t] = alert

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
        built = self._indicator(t, value, fields, notes)
        if isinstance(built, Problem):
            return self._invalid(row, value, type_name, fields.get(FIELD_ACTION), built, notes, about_value=False)
        indicator, notes = built
        line = row.line
        first = self.dupes.first_line(t, value, line)
        if first is not None:
            reason = "; ".join((*notes, f"duplicate of line {first}"))
            return Outcome(
                line,
                value,
                type_name,
                _ACTION_NAME[indicator.action],
                _DUPLICATE,
                reason,
                None,
                indicator,
                row.position,
                notes,
                first,
                _DUPLICATE_CODE,
            )
        return Outcome(
            line, value, type_name, _ACTION_NAME[indicator.action], None, None, None, indicator, row.position, notes
        )

    def _indicator(
        self, t: IndicatorType, value: str, fields: Mapping[str, str], notes: tuple[str, ...]
    ) -> tuple[Indicator, tuple[str, ...]] | Problem:
        if len(fields) == 1 + (FIELD_TYPE in fields):
            # Only the value (present: normalise accepted it) and maybe a type: every field takes its
            # default, as in the general path below (most rows of big feeds).
            choice = self._default_action[t]
            if isinstance(choice, Problem):
                return choice
            if choice.notes:
                notes = (*notes, *choice.notes)
            return Indicator(
                value,
                t,
                choice.action,
                self._title,
                self._description,
                self._severity,
                self._default_expiry[t],
                None,
                self._rbac,
                None,
                None,
                self._default_alert[t],
            ), notes
        get = fields.get
        s = self.defaults
        rare = not _RARE_FIELDS.isdisjoint(fields)  # without them, their look-ups and checks are skipped
        raw_action = get(FIELD_ACTION)
        raw_alert = get(FIELD_GENERATE_ALERT) if rare else None
        if raw_action:
            choice = resolve_action(raw_action, t, s)
        else:
            choice = self._default_action[t]
        if isinstance(choice, Problem):
            return choice
        if choice.notes:
            notes = (*notes, *choice.notes)
        if raw_action or raw_alert:
            alert = resolve_generate_alert(raw_alert, s, choice)
            if type(alert) is Problem:
                return alert
        else:
            alert = self._default_alert[t]
        raw = get(FIELD_EXPIRATION)
        expiry = resolve_expiration(raw, t, s, self.now) if raw else self._default_expiry[t]
        if type(expiry) is Problem:
            return expiry
        raw = get(FIELD_SEVERITY)
        severity = resolve_severity(raw, s) if raw else self._severity
        if type(severity) is Problem:
            return severity
        raw = get(FIELD_TITLE)
        title = resolve_text(raw, self._title, "title", MAX_TITLE_LENGTH) if raw else self._title
        if type(title) is Problem:
            return title
        raw = get(FIELD_DESCRIPTION)
        if raw:
            description = resolve_text(raw, self._description, "description", MAX_DESCRIPTION_LENGTH)
            if type(description) is Problem:
                return description
        else:
            description = self._description
        if rare:
            raw = get(FIELD_RECOMMENDED_ACTIONS)
            recommended = None
            if raw:
                recommended = resolve_text(raw, "", "recommendedActions", MAX_RECOMMENDED_ACTIONS_LENGTH) or None
                if type(recommended) is Problem:
                    return recommended
            raw = get(FIELD_RBAC_GROUPS)
            rbac = resolve_rbac(raw, s) if raw else self._rbac
            raw = get(FIELD_CATEGORY)
            category = resolve_category(raw) if raw else None
            if type(category) is Problem:
                return category
            raw = get(FIELD_MITRE)
            mitre = resolve_mitre(raw) if raw else None
            if type(mitre) is Problem:
                return mitre
            external_id = _opt(get(FIELD_EXTERNAL_ID))
            application = _opt(get(FIELD_APPLICATION))
            educate_url = _opt(get(FIELD_EDUCATE_URL))
        else:
            recommended = category = mitre = external_id = application = educate_url = None
            rbac = self._rbac
        indicator = Indicator(
            value,
            t,
            choice.action,
            title,  # type: ignore[arg-type]
            description,  # type: ignore[arg-type]
            severity,  # type: ignore[arg-type]
            expiry,  # type: ignore[arg-type]
            recommended,  # type: ignore[arg-type]
            rbac,
            category,  # type: ignore[arg-type]
            mitre,  # type: ignore[arg-type]
            alert,  # type: ignore[arg-type]
            external_id,
            application,
            educate_url,
        )
        return indicator, notes

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
        return Outcome(
            row.line, value, type_name, action, _INVALID, reason, None, None, row.position, notes, None, problem.code
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
        status = _INVALID if row.invalid is not None else _SKIPPED
        if row.invalid is not None:
            reason = row.invalid.strip() or "rejected by the reader"
            code = row.code or "reader-invalid"
        else:
            reason = (row.skip or "").strip() or "skipped by the reader"
            code = row.code or "reader-skipped"
        notes = (row.note,) if row.note else ()
        if notes:
            reason = "; ".join((*notes, reason))
        if row.where is not None and status is _INVALID:
            reason = f"{reason} ({row.where})"
        raw_action = row.fields.get(FIELD_ACTION)
        action = raw_action.strip(TRIM) or None if raw_action else None
        value = raw_value.strip(TRIM)
        return Outcome(
            row.line, value, _hint_name(hint), action, status, reason, None, None, row.position, notes, None, code
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
