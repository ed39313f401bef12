"""validate(): one Outcome per RawRow, defaults, reader verdicts, duplicates (CONTRACT.md "Outcome")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.checks.validate import DuplicateIndex, Validator, validate
from shared.core.model import FileProblem, Ignored, IndicatorType, Outcome, RawRow, Severity, Status
from shared.core.options import NO_OPTIONS, InputOptions, row_defaults
from shared.core.settings import MAX_EXPIRATION_DAYS, Settings, SettingsError

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def given(overrides, settings=None) -> tuple[Settings, InputOptions]:
    """App settings and one input's options (its blob metadata or query parameters)."""
    return settings or Settings(), InputOptions.parse(overrides)


def run(rows, settings=None, source="feed.csv"):
    """`settings`: a Settings, or (Settings, InputOptions) from `given`."""
    s, o = settings if isinstance(settings, tuple) else (settings or Settings(), NO_OPTIONS)
    return list(validate(rows, s, options=o, source=source, now=NOW))


def one(fields, settings=None, **kw) -> Outcome:
    (o,) = run([RawRow(7, fields, **kw)], settings)
    assert isinstance(o, Outcome)
    return o


def test_pending_entry_carries_a_ready_indicator_with_defaults():
    o = one({"value": f" {SHA256.upper()} "})
    assert o.status is None and o.line == 7
    assert (o.value, o.type, o.action) == (SHA256, "FileSha256", "Audit")
    ind = o.indicator
    assert ind is not None
    assert ind.to_wire() == {
        "indicatorValue": SHA256,
        "indicatorType": "FileSha256",
        "action": "Audit",
        "title": "Imported indicator",
        "description": "Imported from feed.csv",
        "severity": "Medium",
        "expirationTime": "2026-04-15T12:00:00Z",
        "generateAlert": True,  # Audit always sends generateAlert true
    }


def test_only_given_fields_are_sent():
    o = one({"value": "evil.example.com", "action": "Block"}, Settings(default_expiration_days=0))
    wire = o.indicator.to_wire()
    assert "expirationTime" not in wire  # 0 days = never
    assert "generateAlert" not in wire and "category" not in wire and "rbacGroupNames" not in wire


@pytest.mark.parametrize(
    ("env", "overrides"),
    [
        ({"DEFAULT_EXPIRATION_DAYS": "3000000"}, {}),  # now + days would pass year 9999
        ({"EXPIRATION_DAYS_BY_TYPE": "IpAddress=1000000000"}, {}),  # past timedelta's own limit
        ({}, {"expiration_days": "3000000"}),  # the same from a file's metadata
    ],
)
def test_expiry_days_beyond_the_calendar_are_a_settings_error_not_a_crash(env, overrides):
    with pytest.raises(SettingsError, match="days must be 0 to"):
        given(overrides, Settings.from_env(env))


@pytest.mark.parametrize(
    ("settings", "action", "alert", "note"),
    [
        (
            given({"action": "Alert"}),
            "Audit",
            True,
            "legacy action Alert mapped to Audit (file metadata)",
        ),
        (
            given({"ACTION": " alertandblock "}),  # any case, trimmed; noted as written
            "Block",
            True,
            "legacy action alertandblock mapped to Block (file metadata)",
        ),
        (
            (Settings.from_env({"DEFAULT_ACTION": "AlertAndBlock"}), NO_OPTIONS),
            "Block",
            True,
            "legacy action AlertAndBlock mapped to Block (DEFAULT_ACTION)",
        ),
        # An explicit generate_alert is kept for rows with their own action (below).
        (
            given({"action": "AlertAndBlock", "generate_alert": "false"}),
            "Block",
            False,
            "legacy action AlertAndBlock mapped to Block (file metadata)",
        ),
    ],
)
def test_legacy_default_action_is_mapped_not_a_settings_error(settings, action, alert, note):
    d = row_defaults(*settings)
    assert (d.action.value, d.generate_alert, d.action_note) == (action, alert, note)
    out = run(
        [
            RawRow(1, {"value": "evil.example.com"}),
            RawRow(2, {"value": "evil2.example.com", "generateAlert": "false"}),  # the legacy default still alerts
            RawRow(3, {"value": "evil3.example.com", "action": "Warn"}),  # own action: no legacy note
        ],
        settings,
    )
    assert [(o.action, o.notes, o.indicator.generateAlert) for o in out] == [
        (action, (note,), True),
        (action, (note,), True),
        ("Warn", (), alert),
    ]
    assert out[0].final(Status.submitted, id="1").reason == note


def test_file_action_replaces_a_legacy_default_action_and_its_alert():
    env = Settings.from_env({"DEFAULT_ACTION": "Alert"})
    s = given({"action": "Block"}, env)
    d = row_defaults(*s)
    assert (d.action.value, d.generate_alert, d.action_note) == ("Block", None, None)
    o = one({"value": "evil.example.com"}, s)
    assert (o.action, o.notes, o.indicator.generateAlert) == ("Block", (), None)
    kept = row_defaults(*given({"severity": "High"}, env))  # no file action: the app setting's mapping stays
    assert (kept.action.value, kept.generate_alert, kept.action_note) == (
        "Audit",
        True,
        "legacy action Alert mapped to Audit (DEFAULT_ACTION)",
    )


def test_unknown_action_is_still_a_settings_error():
    with pytest.raises(SettingsError, match="action: expected one of"):
        InputOptions.parse({"action": "AlertOnly"})
    with pytest.raises(SettingsError, match="DEFAULT_ACTION: expected one of"):
        Settings.from_env({"DEFAULT_ACTION": "Alerts"})


def test_legacy_file_action_on_a_certificate_row_says_why_it_is_invalid():
    o = one({"value": "a" * 40, "type": "CertificateThumbprint"}, given({"action": "Alert"}))
    assert o.status is Status.invalid
    assert o.reason == (
        "legacy action Alert mapped to Audit (file metadata); "
        "action Audit is not valid for CertificateThumbprint; use Allowed, BlockAndRemediate"
    )


def test_longest_allowed_expiry_still_validates():
    s = Settings.from_env({"DEFAULT_EXPIRATION_DAYS": str(MAX_EXPIRATION_DAYS)})
    per_file = row_defaults(*given({"expiration_days": str(MAX_EXPIRATION_DAYS)}, s))
    assert per_file.expiration_days == MAX_EXPIRATION_DAYS
    assert one({"value": "evil.example.com"}, s).indicator.expirationTime == "2125-12-22T12:00:00Z"  # NOW + 36500 days


def test_row_fields_win_over_defaults():
    o = one(
        {
            "value": "hxxps://evil[.]example[.]com/gate",
            "type": "URL",
            "action": "Block ",
            "severity": "high",
            "title": " My title ",
            "description": "Seen in campaign",
            "expirationTime": "4/19/2027",
            "rbacGroupNames": "Servers, Laptops",
            "category": "suspicious activity",
            "mitreTechniques": "T1566.001",
            "generateAlert": "FALSE",
            "recommendedActions": "Isolate",
            "externalId": "x-1",
        },
        Settings(default_rbac_groups=("Other",)),
    )
    ind = o.indicator
    assert ind is not None
    assert ind.indicatorValue == "https://evil.example.com/gate"
    assert (ind.severity, ind.title, ind.description) == (Severity.High, "My title", "Seen in campaign")
    assert ind.expirationTime == "2027-04-19T00:00:00Z"
    assert ind.rbacGroupNames == ("Servers", "Laptops")
    assert (ind.category, ind.mitreTechniques, ind.generateAlert) == ("SuspiciousActivity", ("T1566.001",), False)
    assert (ind.recommendedActions, ind.externalId) == ("Isolate", "x-1")


def test_invalid_entries_say_why_and_keep_notes():
    o = one({"value": "transfer.sh/a b", "type": "DomainName"})
    assert o.status is Status.invalid and o.indicator is None
    assert o.reason is not None
    assert o.reason.startswith("type corrected from DomainName to Url; http:// added (no scheme); a URL cannot contain")


def test_field_problems_make_the_row_invalid():
    assert one({"value": "evil.example.com", "expirationTime": "4/19/2023 12:00:00 AM"}).status is Status.invalid
    assert one({"value": "evil.example.com", "mitreTechniques": "T1,T2"}).status is Status.invalid
    o = one({"value": "a" * 40, "type": "CertificateThumbprint"})
    assert o.status is Status.invalid and "explicit action" in (o.reason or "")


def test_certificate_with_metadata_action():
    o = one({"value": "A" * 40, "type": "CertificateThumbprint"}, given({"action": "Allowed"}))
    assert o.status is None and o.indicator is not None and o.indicator.action.value == "Allowed"


def test_notes_are_kept_on_pending_entries():
    o = one({"value": "103.15.28.208|443", "action": "AlertAndBlock"}, note="from comment")
    assert o.status is None
    assert o.notes == (
        "port 443 removed",
        "from comment",
        "legacy action AlertAndBlock mapped to Block with generateAlert true",
    )
    assert o.indicator is not None and o.indicator.generateAlert is True
    assert o.final(Status.submitted, id="5").reason == "; ".join(o.notes)


def test_wrapped_values_are_unwrapped_noted_and_deduplicated():
    out = run(
        [
            RawRow(1, {"value": "evil.example.com"}),
            RawRow(2, {"value": '"evil.example.com"'}),
            RawRow(3, {"value": "<https://evil.example.com/x>"}),
            RawRow(4, {"value": "<https://evil.example.com/?<unique_to_target>>"}),  # a placeholder, not an autolink
        ]
    )
    assert [o.status for o in out] == [None, Status.duplicate, None, Status.invalid]
    assert out[1].reason == "quotes removed; duplicate of line 1"
    assert (out[2].value, out[2].notes) == ("https://evil.example.com/x", ("angle brackets removed",))
    assert "placeholder" in (out[3].reason or "")


def test_thumbprint_with_separators_is_joined_and_noted():
    sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    colons = ":".join(sha1[i : i + 2] for i in range(0, 40, 2)).upper()
    o = one({"value": colons, "type": "CertificateThumbprint", "action": "BlockAndRemediate"})
    assert (o.status, o.value, o.notes) == (None, sha1, ("separators removed",))
    sha256_fingerprint = ":".join(SHA256[i : i + 2] for i in range(0, 64, 2))
    o = one({"value": sha256_fingerprint, "type": "CertificateThumbprint", "action": "Allowed"})
    assert o.status is Status.invalid
    assert o.reason == "separators removed; CertificateThumbprint needs 40 hex characters, got 64"
    assert one({"value": colons}).status is Status.invalid  # untyped: never guessed to be a hash


def test_reader_verdicts_stand():
    inv = one({"value": " {bad json"}, invalid="line is not JSON")
    skip = one({"value": "evil.example.com", "type": "domain"}, skip="to_ids is false")
    assert (inv.status, inv.reason, inv.value) == (Status.invalid, "line is not JSON", "{bad json")
    assert (skip.status, skip.reason, skip.type) == (Status.skipped, "to_ids is false", "domain")


def test_ignored_and_file_problems_pass_through_unchanged():
    ign, prob = Ignored(3), FileProblem("bad", line=9, column=2)
    out = run([ign, RawRow(4, {"value": "evil.example.com"}), prob])
    assert out[0] is ign and out[2] is prob and isinstance(out[1], Outcome)


def test_duplicates_point_at_the_first_line():
    rows = [
        RawRow(1, {"value": "Evil.Example.Com"}),
        RawRow(2, {"value": "evil.example.com", "type": "domain"}),  # same after normalisation
        RawRow(3, {"value": "evil.example.com/x"}),  # a Url: other type
        RawRow(4, {"value": "http://EVIL.example.com"}),  # Url too: different value
        RawRow(5, {"value": "hxxp://evil[.]example[.]com/x"}),  # same Url as line 3
        RawRow(5, {"value": "bad value!"}),
        RawRow(6, {"value": "bad value!"}),  # invalid entries are never duplicates
    ]
    out = run(rows)
    assert [o.status for o in out] == [
        None,
        Status.duplicate,
        None,
        None,
        Status.duplicate,
        Status.invalid,
        Status.invalid,
    ]
    assert (out[1].duplicate_of, out[1].reason) == (1, "duplicate of line 1")
    assert (out[4].duplicate_of, out[4].reason) == (3, "duplicate of line 3")
    assert out[2].notes == ("http:// added (no scheme)",)


def test_same_line_repeats_are_duplicates_too():
    out = run([RawRow(2, {"value": SHA256}), RawRow(2, {"value": SHA256})])
    assert [o.status for o in out] == [None, Status.duplicate]


def test_duplicate_index_stores_only_compact_keys():
    idx = DuplicateIndex()
    for i in range(1000):
        assert idx.first_line(IndicatorType.FileSha256, f"{i:064x}", i + 1) is None
    assert idx.first_line(IndicatorType.FileSha256, f"{5:064x}", 2000) == 6
    assert len(idx) == 1000
    assert all(isinstance(k, int) and k < 2**60 for k in idx._first)


def test_user_description_template_with_stray_braces_does_not_crash():
    o = one({"value": "evil.example.com"}, Settings(default_description="{oops} from {source} {0}"))
    assert o.indicator is not None and o.indicator.description == "{oops} from feed.csv {0}"


def test_title_and_description_are_deterministic():
    a = Validator(Settings(), source="s", now=NOW).row(RawRow(1, {"value": "evil.example.com"}))
    b = Validator(Settings(), source="s", now=NOW).row(RawRow(1, {"value": "evil.example.com"}))
    assert a == b
