"""Per-input options beside the frozen app settings (CONTRACT.md "Settings": per-file overrides)."""

from __future__ import annotations

import dataclasses

import pytest

from shared.core.model import Action, IndicatorType, Severity
from shared.core.options import NO_OPTIONS, OVERRIDE_KEYS, InputOptions, row_defaults
from shared.core.settings import Settings, SettingsError

T = IndicatorType


def test_settings_carry_no_per_input_field():
    """What a file or a request asks for lives in InputOptions; Settings holds app settings only."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert not fields & {"feed", "sync", "sync_force", "action_from_metadata"}
    assert not hasattr(Settings, "with_overrides")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().dry_run = True  # type: ignore[misc]


def test_every_contract_key_is_read():
    metadata = {
        "action": "Block",
        "severity": "high",
        "expiration_days": "7",
        "title": "T",
        "description": "D {source}",
        "rbac_groups": "a, b",
        "generate_alert": "yes",
        "dryRun": "true",
        "feed": " acme ",
        "sync": "1",
        "sync_force": "on",
    }
    o = InputOptions.parse(metadata)
    assert o == InputOptions(
        action=(Action.Block, None),
        severity=Severity.High,
        expiration_days=7,
        title="T",
        description="D {source}",
        rbac_groups=("a", "b"),
        generate_alert=True,
        dry_run=True,
        feed="acme",
        sync=True,
        sync_force=True,
    )
    assert {k.lower() for k in metadata} <= OVERRIDE_KEYS


def test_empty_and_unknown_keys_leave_the_app_settings_in_force():
    assert InputOptions.parse({"severity": " ", "feed": "", "x-unknown": "1"}) == NO_OPTIONS
    s = Settings(default_severity=Severity.Low, dry_run=True)
    d = row_defaults(s, NO_OPTIONS)
    assert (d.severity, d.action, d.action_from_input) == (Severity.Low, Action.Audit, False)
    assert NO_OPTIONS.dry_run_under(s) is True
    assert InputOptions(dry_run=False).dry_run_under(s) is False  # the input's own word wins


def test_every_bad_value_is_listed_at_once():
    with pytest.raises(SettingsError) as e:
        InputOptions.parse({"action": "Nuke", "severity": "extreme", "sync": "perhaps"})
    text = str(e.value)
    assert text.startswith("invalid overrides: ")
    assert "action:" in text and "severity:" in text and "sync:" in text


def test_two_spellings_that_disagree_are_an_error():
    with pytest.raises(SettingsError, match="given twice with different values"):
        InputOptions.parse({"dryRun": "true", "dry_run": "false"})
    assert InputOptions.parse({"dryRun": "true", "dry_run": "yes"}).dry_run is True


def test_input_expiry_wins_over_the_per_type_table_for_that_input_only():
    s = Settings(default_expiration_days=90, expiration_days_by_type={T.IpAddress: 30})
    assert row_defaults(s).expiration_days_for(T.IpAddress) == 30
    per_input = row_defaults(s, InputOptions.parse({"expiration_days": "5"}))
    assert per_input.expiration_days_for(T.IpAddress) == 5 and per_input.expiration_days_for(T.Url) == 5
    assert s.expiration_days_for(T.IpAddress) == 30  # the app's settings unchanged


def test_sync_needs_a_feed():
    with pytest.raises(SettingsError, match="sync=true needs feed"):
        InputOptions.parse({"sync": "true"}).check_sync()
    InputOptions.parse({"sync": "true", "feed": "f"}).check_sync()
