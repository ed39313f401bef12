"""The records that flow through the pipeline: reader items, indicators, outcomes.

Core module: standard library only, no I/O. Every other module speaks in these types.

A record's way through::

    readers.read(stream, name)   -> RawRow | Ignored | FileProblem   (one RawRow per indicator entry)
    validate.validate(items, s)  -> Outcome (status decided) or Outcome with status None (to submit)
    submitter.submit(batch)      -> the same Outcomes with a final status
    reports.ReportWriter.add()   <- every Outcome, in input order
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

_C = TypeVar("_C", bound=type)
_P = ParamSpec("_P")
_R = TypeVar("_R")


# Hot records: RawRow, Indicator and Outcome are built once or twice per input row, so they are plain
# slotted dataclasses: a frozen dataclass's `__init__` costs about three times as much (one
# `object.__setattr__` per field), a quarter of the whole per-row budget. They are still immutable by
# convention: nothing assigns to their fields; a changed record is a new one (`dataclasses.replace`,
# `Outcome.final`). Equality and hashing are the same as when they were frozen (`unsafe_hash=True`).
#
# Generated constructors: the one place where code is generated for the records. Two kinds, both built from
# the class's own fields (so a new field cannot be forgotten), both pinned by a property test that they
# build what the dataclass-generated `__init__` builds (tests/unit/test_model.py):
# - `_slot_init` replaces the `__init__` of the small frozen records (`Problem`, `Ignored`, `FileProblem`,
#   `ReadLimits`);
# - `_keyword_constructor` gives `Indicator` and `Outcome` (keyword-only: a positional call is a TypeError,
#   so inserting a field cannot shift arguments) a keyword-only factory for the hot paths, `new_indicator`
#   and `new_outcome`: calling a class with keywords makes CPython build a dict of them, which costs more
#   than the whole `__init__` (about 1.1 µs against 0.25 µs for an Outcome on CPython 3.11); a plain
#   function called with keywords does not. Everywhere else the classes themselves are called.


def _generated_fields(cls: type) -> tuple[list[str], dict[str, Any], list[Field[Any]]]:
    """The parameter list (`name` or `name=_d_name`), the defaults by those names, and the fields."""
    params: list[str] = []
    env: dict[str, Any] = {}
    found = fields(cls)
    for f in found:
        if f.default_factory is not MISSING or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain fields with plain defaults are supported here")
        if f.default is MISSING:
            params.append(f.name)
        else:
            env[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported here")
    return params, env, list(found)


def _compiled(src: str, env: dict[str, Any], name: str) -> Any:
    exec(src, env)  # noqa: S102 - source built by the two functions below from the class's own field names
    return env[name]


def _slot_init(cls: _C) -> _C:
    """Give a frozen, slotted dataclass an `__init__` that stores through its slot descriptors.

    The generated frozen `__init__` goes through `object.__setattr__` once per field; calling the
    slot descriptors' `__set__` directly costs about half (these records are built once or twice per
    input row). Signature, defaults, equality, hashing, `repr`, `dataclasses.replace` and
    FrozenInstanceError on assignment are unchanged.
    """
    params, env, found = _generated_fields(cls)
    body = []
    for f in found:
        env[f"_s_{f.name}"] = cls.__dict__[f.name].__set__
        body.append(f"    _s_{f.name}(self, {f.name})")
    init = _compiled(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n", env, "__init__")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__dict__["__init__"].__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 - assigning cls.__init__ directly upsets type checkers
    return cls


def _keyword_constructor(cls: Callable[_P, _R]) -> Callable[_P, _R]:
    """A keyword-only function that builds what `cls(**fields)` builds, at about a quarter of the cost.

    For a slotted dataclass that is not frozen: the instance is made with `object.__new__` and each field is
    stored as `__init__` would store it. Type checkers see `cls`'s own signature.
    """
    options = cls.__dict__.get("__dataclass_params__") if isinstance(cls, type) else None
    if not isinstance(cls, type) or options is None or options.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls!r}: a slotted dataclass that is not frozen is needed here")
    params, env, found = _generated_fields(cls)
    env["_new"], env["_cls"] = object.__new__, cls
    body = "".join(f"    o.{f.name} = {f.name}\n" for f in found)
    name = f"new_{cls.__name__.lower()}"
    new = _compiled(f"def {name}(*, {', '.join(params)}):\n    o = _new(_cls)\n{body}    return o\n", env, name)
    new.__module__ = cls.__module__
    new.__doc__ = f"`{cls.__name__}(**fields)` for the hot paths (see the model's generated constructors)."
    return new


class IndicatorType(StrEnum):
    """Defender's `indicatorType` enum (defender-api.md §1.5)."""

    FileSha1 = "FileSha1"
    FileSha256 = "FileSha256"
    FileMd5 = "FileMd5"
    CertificateThumbprint = "CertificateThumbprint"
    IpAddress = "IpAddress"
    DomainName = "DomainName"
    Url = "Url"


class Action(StrEnum):
    """Defender's current `action` values; legacy `Alert`/`AlertAndBlock` are mapped by validation."""

    Allowed = "Allowed"
    Audit = "Audit"
    Warn = "Warn"
    Block = "Block"
    BlockAndRemediate = "BlockAndRemediate"


class Severity(StrEnum):
    Informational = "Informational"
    Low = "Low"
    Medium = "Medium"
    High = "High"


class Status(StrEnum):
    """The one final status every indicator entry ends with (CONTRACT.md "Outcome of every indicator")."""

    submitted = "submitted"
    unchanged = "unchanged"
    duplicate = "duplicate"
    failed = "failed"
    invalid = "invalid"
    skipped = "skipped"


# Canonical field names a reader fills in RawRow.fields (all raw strings, untrimmed).
# Readers map their columns/keys to these; validation does the rest.
FIELD_VALUE = "value"
FIELD_TYPE = "type"  # a Defender type name or a foreign one (MISP `ip-dst`, `sha256`, `hostname`, …)
FIELD_ACTION = "action"
FIELD_SEVERITY = "severity"
FIELD_TITLE = "title"
FIELD_DESCRIPTION = "description"
FIELD_EXPIRATION = "expirationTime"
FIELD_RECOMMENDED_ACTIONS = "recommendedActions"
FIELD_RBAC_GROUPS = "rbacGroupNames"  # comma-separated string or JSON list joined with ","
FIELD_CATEGORY = "category"
FIELD_MITRE = "mitreTechniques"  # comma-separated
FIELD_GENERATE_ALERT = "generateAlert"
FIELD_EXTERNAL_ID = "externalId"
FIELD_APPLICATION = "application"
FIELD_EDUCATE_URL = "educateUrl"

KNOWN_FIELDS = frozenset(
    {
        FIELD_VALUE,
        FIELD_TYPE,
        FIELD_ACTION,
        FIELD_SEVERITY,
        FIELD_TITLE,
        FIELD_DESCRIPTION,
        FIELD_EXPIRATION,
        FIELD_RECOMMENDED_ACTIONS,
        FIELD_RBAC_GROUPS,
        FIELD_CATEGORY,
        FIELD_MITRE,
        FIELD_GENERATE_ALERT,
        FIELD_EXTERNAL_ID,
        FIELD_APPLICATION,
        FIELD_EDUCATE_URL,
    }
)


@dataclass(slots=True, unsafe_hash=True)  # not frozen, still never mutated: see "Hot records"
class RawRow:
    """One indicator entry as a reader found it: exactly one value, raw strings only.

    A source row that carries several indicators (`md5,sha1,sha256` columns, a cell of
    comma-separated hashes, a STIX OR pattern, a MISP `domain|ip`) is yielded as several
    RawRows with the same `line`.

    `line` is the 1-based line where the row or object starts; when `position` is true it is
    the 1-based position of the element in a JSON stream instead. `invalid` / `skip` let a
    reader decide the outcome itself (an NDJSON line that is not JSON, an inexpressible STIX
    pattern, MISP `to_ids: false`); `note` is carried into the report's reason; `code` names the
    reader's verdict in the report (`json-syntax`, `misp-to-ids-false`, ...).
    """

    line: int
    fields: Mapping[str, str]
    position: bool = False
    invalid: str | None = None
    skip: str | None = None
    note: str | None = None
    code: str | None = None  # the reader's stable kebab-case code for its own `invalid` / `skip` verdict
    # Where in the input the value stood (`column 'dst_ip'`, `key 'ioc'`): named in the reason of an invalid entry.
    where: str | None = field(default=None, compare=False)

    @property
    def value(self) -> str:
        return self.fields.get(FIELD_VALUE, "")


@_slot_init
@dataclass(frozen=True, slots=True)
class Ignored:
    """A non-blank, non-comment line that holds no indicator (prose): counted in `ignoredLines`, and listed in
    the JSON report's `ignored` with its first 80 characters (`text`)."""

    line: int
    reason: str = "not an indicator line"
    text: str = field(default="", compare=False)  # what the line says; not part of its identity


@_slot_init
@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file-level problem. `fatal` means the reader stopped here; rows already read keep their outcomes.

    `warning`: a note about how the file was read (decoded from UTF-16, a trailing comma tolerated) that does
    not make the run `completed_with_errors`; it is listed in the report's `errors` with `"level": "warning"`.
    """

    message: str
    line: int | None = None
    column: int | None = None
    fatal: bool = True
    warning: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.line is not None:
            out["line"] = self.line
        if self.column is not None:
            out["column"] = self.column
        if self.warning:
            out["level"] = "warning"
        return out


def warning(message: str, line: int | None = None) -> FileProblem:
    """A non-fatal file-level note (see FileProblem.warning)."""
    return FileProblem(message, line, None, False, True)


# Defaults of the reading bounds (CONTRACT.md "Settings": MAX_VALUE_LENGTH, MAX_GZIP_BYTES, MAX_GZIP_RATIO).
DEFAULT_MAX_VALUE_LENGTH = 8192
DEFAULT_MAX_GZIP_BYTES = 2 * 1024**3
DEFAULT_MAX_GZIP_RATIO = 200.0


@_slot_init
@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What bounds the readers' memory and time, by configuration rather than by the input.

    `max_value_length`: the longest value a reader runs its pattern heuristics on (validation refuses longer
    ones); `max_gzip_bytes` / `max_gzip_ratio`: decompression stops past either.
    """

    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    max_gzip_bytes: int = DEFAULT_MAX_GZIP_BYTES
    max_gzip_ratio: float = DEFAULT_MAX_GZIP_RATIO


ReaderItem = RawRow | Ignored | FileProblem


@_slot_init
@dataclass(frozen=True, slots=True)
class Problem:
    """Why one entry is invalid: a stable kebab-case `code` and a message saying what would be right."""

    code: str
    message: str


@dataclass(slots=True, unsafe_hash=True, kw_only=True)  # not frozen, still never mutated: see "Hot records"
class Indicator:
    """A validated indicator, ready to send: Defender's field names, normalised values.

    Optional fields are None when no row, file metadata or setting gave them; only set
    fields are sent (CONTRACT.md "Normalisation").
    """

    indicatorValue: str
    indicatorType: IndicatorType
    action: Action
    title: str
    description: str
    severity: Severity | None = None
    expirationTime: str | None = None  # UTC "YYYY-MM-DDTHH:MM:SSZ"
    recommendedActions: str | None = None
    rbacGroupNames: tuple[str, ...] | None = None
    category: str | None = None
    mitreTechniques: tuple[str, ...] | None = None
    generateAlert: bool | None = None
    externalId: str | None = None
    application: str | None = None
    educateUrl: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Identity for duplicates and result matching: type and normalised value."""
        return (self.indicatorType.value, self.indicatorValue)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object Defender expects, with its exact (case-sensitive) field names."""
        out: dict[str, Any] = {
            "indicatorValue": self.indicatorValue,
            "indicatorType": self.indicatorType.value,
            "action": self.action.value,
            "title": self.title,
            "description": self.description,
        }
        if self.severity is not None:
            out["severity"] = self.severity.value
        if self.expirationTime is not None:
            out["expirationTime"] = self.expirationTime
        if self.recommendedActions is not None:
            out["recommendedActions"] = self.recommendedActions
        if self.rbacGroupNames is not None:
            out["rbacGroupNames"] = list(self.rbacGroupNames)
        if self.category is not None:
            out["category"] = self.category
        if self.mitreTechniques is not None:
            out["mitreTechniques"] = list(self.mitreTechniques)
        if self.generateAlert is not None:
            out["generateAlert"] = self.generateAlert
        if self.externalId is not None:
            out["externalId"] = self.externalId
        if self.application is not None:
            out["application"] = self.application
        if self.educateUrl is not None:
            out["educateUrl"] = self.educateUrl
        return out


@dataclass(slots=True, unsafe_hash=True, kw_only=True)  # not frozen, still never mutated: see "Hot records"
class Outcome:
    """One indicator entry and its fate: the unit of the report.

    `status` is None while the entry waits to be submitted (then `indicator` is set).
    `value`/`type`/`action` are what the report shows: normalised where validation got that far,
    raw otherwise. `reason` holds why it was not submitted, or notes on a submitted entry
    (type corrected, scheme added, legacy action mapped). `code` is the stable kebab-case rule or outcome
    code behind the final status (`hash-length`, `duplicate`, `tenant-capacity`, `defender-rejected`, ...;
    README "Reports"); None while pending, and where a producer gave none the report writes the status.
    """

    line: int
    value: str
    type: str | None
    action: str | None
    status: Status | None
    reason: str | None = None
    id: str | None = None
    indicator: Indicator | None = None
    position: bool = False
    notes: tuple[str, ...] = field(default=())
    duplicate_of: int | None = None  # line of the first occurrence, for `duplicate`
    code: str | None = None

    def final(
        self, status: Status, reason: str | None = None, id: str | None = None, *, code: str | None = None
    ) -> Outcome:
        """This entry with its final status and its code; notes stay in front of the reason."""
        parts = [*self.notes, reason] if reason else list(self.notes)
        return replace(self, status=status, reason="; ".join(p for p in parts if p) or None, id=id, code=code)


new_indicator = _keyword_constructor(Indicator)
new_outcome = _keyword_constructor(Outcome)


# The summary counters, in the order the report writes them (CONTRACT.md "Reports").
SUMMARY_KEYS = (
    "total",
    "submitted",
    "unchanged",
    "duplicate",
    "failed",
    "invalid",
    "skipped",
    "ignoredLines",
    "apiCalls",
    "retries",
    "listCalls",
    "deleteCalls",
    "splitCalls",
)


@dataclass
class Summary:
    """Counts for one input; `add` is called once per final Outcome."""

    total: int = 0
    submitted: int = 0
    unchanged: int = 0
    duplicate: int = 0
    failed: int = 0
    invalid: int = 0
    skipped: int = 0
    ignoredLines: int = 0
    apiCalls: int = 0
    retries: int = 0
    listCalls: int = 0
    deleteCalls: int = 0
    splitCalls: int = 0  # import calls (in apiCalls) spent isolating the rows of batches rejected as a whole

    def add(self, outcome: Outcome) -> None:
        if outcome.status is None:
            raise ValueError("an outcome without a final status reached the summary")
        self.total += 1
        name = outcome.status._value_  # `.value` is a slow descriptor; this runs once per entry
        setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in SUMMARY_KEYS}
