"""Per-input options: what one file's blob metadata or one request's query asks for.

Core module: no I/O. The app-wide `Settings` is frozen and built once per process; an input's own choices
(CONTRACT.md "Settings", per-file overrides: `action`, `severity`, `expiration_days`, `title`, `description`,
`rbac_groups`, `generate_alert`, `dry_run`, `feed`, `sync`, `sync_force`) are parsed into an `InputOptions`
beside it. `row_defaults(settings, options)` gives what an entry that leaves a field empty takes;
`InputOptions.dry_run_under(settings)` whether the input is a dry run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.core.model import Action, IndicatorType, Severity
from shared.core.settings import (
    Settings,
    SettingsError,
    enum_ci,
    legacy_default,
    parse_action,
    parse_bool,
    parse_expiration_days,
    split_list,
)
from shared.core.text import quote
from shared.core.vocab import yes_no

# The per-input option names (blob metadata keys, HTTP query parameters), CONTRACT.md "Settings".
OVERRIDE_KEYS = frozenset(
    {
        "action",
        "severity",
        "expiration_days",
        "title",
        "description",
        "rbac_groups",
        "generate_alert",
        "dry_run",
        "dryrun",
        "feed",
        "sync",
        "sync_force",
    }
)
_YES_NO_KEYS = ("dry_run", "generate_alert", "sync", "sync_force")


@dataclass(frozen=True, slots=True, kw_only=True)
class InputOptions:
    """One input's own options; `None` (or false for the sync flags) leaves the app setting in force.

    `action` is the parsed name and, for a legacy name (`Alert`, `AlertAndBlock`), that name as written
    (`Settings` maps a legacy DEFAULT_ACTION the same way).
    """

    action: tuple[Action, str | None] | None = None
    severity: Severity | None = None
    expiration_days: int | None = None
    title: str | None = None
    description: str | None = None
    rbac_groups: tuple[str, ...] | None = None
    generate_alert: bool | None = None
    dry_run: bool | None = None
    feed: str | None = None
    sync: bool = False
    sync_force: bool = False

    @classmethod
    def parse(cls, metadata: Mapping[str, str]) -> InputOptions:
        """Read blob metadata keys or HTTP query parameters.

        Keys are case-insensitive (blob metadata comes back lower-cased); `dryRun` is accepted for
        `dry_run`; empty values are not given; unknown keys are ignored here (the HTTP body checks refuse
        them). Raises SettingsError listing every bad value.
        """
        norm, errors = _override_names(metadata)
        kw: dict[str, object] = {}

        def take(key: str, conv) -> None:  # type: ignore[no-untyped-def]
            raw = norm.get(key)
            if raw is None or raw.strip() == "":
                return
            try:
                kw[key] = conv(raw)
            except ValueError as e:
                errors.append(f"{key}: {e}")

        take("action", parse_action)
        take("severity", lambda s: enum_ci(Severity, s))
        take("expiration_days", parse_expiration_days)
        take("title", str)
        take("description", str)
        take("rbac_groups", split_list)
        for key in _YES_NO_KEYS:
            take(key, parse_bool)
        take("feed", lambda s: s.strip() or None)
        if errors:
            raise SettingsError("invalid overrides: " + "; ".join(errors))
        return cls(**kw)  # type: ignore[arg-type]

    def dry_run_under(self, settings: Settings) -> bool:
        """The input's `dry_run` when it gives one, else DRY_RUN."""
        return settings.dry_run if self.dry_run is None else self.dry_run

    def check_sync(self) -> None:
        """Raise SettingsError when sync mode is asked for without a feed to sync."""
        if self.sync and not self.feed:
            raise SettingsError("invalid overrides: sync: sync=true needs feed=<name> (the feed whose state this is)")


NO_OPTIONS = InputOptions()


@dataclass(frozen=True, slots=True)
class RowDefaults:
    """What an entry that leaves a field empty takes: the app settings with one input's options over them.

    `action_from_input`: the default action came from the input's own options (a certificate needs an
    explicit action: the app-wide DEFAULT_ACTION does not count). `action_note`/`action_legacy`: set when
    the default action is a legacy name (`legacy action Alert mapped to Audit (file metadata)`): rows taking
    it carry the note and send generateAlert true.
    """

    action: Action
    action_from_input: bool
    action_note: str | None
    action_legacy: tuple[str, str] | None
    generate_alert: bool | None
    severity: Severity
    expiration_days: int
    title: str
    description: str
    rbac_groups: tuple[str, ...]
    expiration_days_by_type: Mapping[IndicatorType, int] = field(default_factory=dict)

    def expiration_days_for(self, t: IndicatorType) -> int:
        return self.expiration_days_by_type.get(t, self.expiration_days)


def row_defaults(settings: Settings, options: InputOptions = NO_OPTIONS) -> RowDefaults:
    """Combine DEFAULT_* app settings with an input's options (which win field by field).

    An input `action` replaces the app's action with its note and its legacy generateAlert: a legacy
    DEFAULT_ACTION's alert goes with the action it came with. An input `expiration_days` wins over
    EXPIRATION_DAYS_BY_TYPE for that input.
    """
    s, o = settings, options
    action, note, legacy, alert = s.default_action, s.default_action_note, s.default_action_legacy, s.generate_alert
    if o.action is not None:
        mapped = legacy_default(o.action, "file metadata", o.generate_alert)
        action, note, legacy = mapped.action, mapped.note, mapped.legacy
        alert = o.generate_alert if mapped.alert is None else mapped.alert
    elif o.generate_alert is not None:
        alert = o.generate_alert
    return RowDefaults(
        action=action,
        action_from_input=o.action is not None,
        action_note=note,
        action_legacy=legacy,
        generate_alert=alert,
        severity=o.severity or s.default_severity,
        expiration_days=s.default_expiration_days if o.expiration_days is None else o.expiration_days,
        title=s.default_title if o.title is None else o.title,
        description=s.default_description if o.description is None else o.description,
        rbac_groups=s.default_rbac_groups if o.rbac_groups is None else o.rbac_groups,
        expiration_days_by_type=s.expiration_days_by_type if o.expiration_days is None else {},
    )


def _override_names(metadata: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Option keys by their one name (lower case, `dryRun` read as `dry_run`), and the contradictions found.

    Two spellings of one option that disagree (`dryRun=true&dry_run=false`) are an error, never a silent
    choice: submitting for real what the caller meant as a dry run cannot be undone.
    """
    norm: dict[str, str] = {}
    given: dict[str, list[str]] = {}
    errors: list[str] = []
    for key, value in metadata.items():
        name = key.strip().lower()
        name = "dry_run" if name == "dryrun" else name
        given.setdefault(name, []).append(key)
        if name in norm and _differ(name, norm[name], value):
            spellings = " and ".join(quote(k, 40) for k in given[name])
            errors.append(f"{name}: given twice with different values ({spellings}); give it once")
        norm.setdefault(name, value)
    return norm, errors


def _differ(name: str, a: str, b: str) -> bool:
    if name in _YES_NO_KEYS:
        return yes_no(a) != yes_no(b) or (yes_no(a) is None and a.strip().lower() != b.strip().lower())
    return a.strip() != b.strip()
