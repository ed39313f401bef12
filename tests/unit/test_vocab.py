"""The shared vocabularies of `core/` (text, vocab, times): one home, and every layer reading them alike.

Pins architecture-review.md §3 and §8 item 4: the text reader and validation refang by one table (a form
the reader takes as an indicator is refanged by validation to the same value), and settings, rows, MISP and
the tenant's records read yes/no words, legacy actions and times the same way.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.checks.normalise import TYPE_NAMES
from shared.checks.rules import ActionChoice, parse_datetime, resolve_action, resolve_generate_alert
from shared.checks.validate import validate
from shared.core import text as core_text
from shared.core.model import Action, IndicatorType, Outcome, Problem, RawRow, Status
from shared.core.options import InputOptions, row_defaults
from shared.core.settings import Settings, SettingsError, parse_bool
from shared.core.text import REFANG, refang
from shared.core.times import format_utc, parse_iso_utc
from shared.core.vocab import NO_WORDS, YES_WORDS, legacy_action, secure_url, yes_no
from shared.readers import MISP_TYPES, read
from shared.readers._columns import TYPED_COLUMNS
from shared.readers._misp import to_ids_false
from shared.tenant.records import TenantRecord, parse_time

T = IndicatorType
NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
HOST = "evil-site.example.com"


def _scheme(form: str) -> tuple[str, str]:
    fanged = "ftp" if form.lower() == "fxp" else "https" if form.lower().endswith("s") else "http"
    return f"{form}://{HOST}/x", f"{fanged}://{HOST}/x"


# Replacement of a REFANG rule → (defanged value holding one form, the value validation writes for it).
BUILD = {
    "://": lambda f: (f"https{f}{HOST}/x", f"https://{HOST}/x"),
    ".": lambda f: (f"evil-site{f}example.com", HOST),
    "@": lambda f: (f"https://{HOST}/user{f}x", f"https://{HOST}/user@x"),  # `@` in a path: a valid URL
    ":": lambda f: (f"https://{HOST}{f}8443/x", f"https://{HOST}:8443/x"),
    "/": lambda f: (f"https://{HOST}{f}x", f"https://{HOST}/x"),
    r"\1": lambda f: (f"evil-site{f}.example.com", f"evil-site{f[1]}.example.com"),
    r"http\1": _scheme,
    "ftp": _scheme,
}
FORMS = [(repl, form) for _pattern, repl, forms in REFANG for form in forms]


def test_every_rule_lists_its_forms_and_each_form_is_what_the_rule_undoes():
    for pattern, repl, forms in REFANG:
        assert forms and repl in BUILD, pattern.pattern
        for form in forms:
            assert pattern.search(BUILD[repl](form)[0]), (pattern.pattern, form)


def _read_line(value: str) -> list[RawRow]:
    reading = read(io.BytesIO(f"# defanged list\n{value}\n".encode()), "list.txt")
    assert reading.format == "text"
    return [i for i in reading if isinstance(i, RawRow)]


def _validate(row: RawRow) -> Outcome:
    (o,) = validate([row], Settings(), source="list.txt", now=NOW)
    assert isinstance(o, Outcome)
    return o


@pytest.mark.parametrize(("repl", "form"), FORMS)
def test_reader_and_validation_agree_on_every_refang_form(repl, form):
    """A defanged value alone on a text line is an entry, and validation refangs it to a valid indicator."""
    value, fanged = BUILD[repl](form)
    assert refang(value) != value  # the fast path's pre-check lets every form through
    rows = _read_line(value)
    assert [(r.line, r.value, r.invalid) for r in rows] == [(2, value, None)]  # passed on as written
    o = _validate(rows[0])
    assert o.value == fanged
    if repl == "ftp":
        # ftp is refanged like the rest, then refused for what it is (defender-api.md §4: http and https only).
        assert o.status is Status.invalid and "got 'ftp'" in (o.reason or "")
    else:
        assert o.status is None and o.reason is None  # valid, waiting to be submitted
        assert o.type == (T.DomainName if fanged == HOST or "://" not in fanged else T.Url).value


def test_meow_scheme_is_http_for_the_reader_and_validation_alike():
    """The review's example: the reader took `meow://…` as a URL that validation refused as scheme 'meow'."""
    rows = _read_line(f"meow://{HOST}/x")
    assert len(rows) == 1
    o = _validate(rows[0])
    assert (o.status, o.type, o.value) == (None, "Url", f"http://{HOST}/x")


def test_spaced_brackets_are_one_token_but_spaced_prose_stays_prose():
    reading = read(io.BytesIO(b"evil-site[ . ]example[ . ]com\nsee evil-site[ . ]example.com today\n"), "list.txt")
    items = list(reading)
    assert [(i.line, i.value) for i in items if isinstance(i, RawRow)] == [(1, "evil-site[ . ]example[ . ]com")]


def _full_table(value: str) -> str:
    for pattern, repl, _forms in REFANG:
        value = pattern.sub(repl, value)
    return value


@given(st.text(alphabet="[](){}\\.:@/ hxpHXPmeowMEOWfsSd*tacolnATDCOLN-ex1", max_size=24))
def test_fast_path_pre_check_never_skips_a_value_the_table_would_change(s):
    assert refang(s) == _full_table(s)


def test_pre_check_is_cheap_for_plain_values():
    """Plain values (most rows) skip the table: nothing in them looks like the start of a form."""
    for plain in (HOST, "https://evil-site.example.com/path?q=1", "203.0.113.9:443", "dot.example", "a" * 64):
        assert not core_text._HAS_DEFANG(plain), plain


# ------------------------------------------------------------------------------------------- yes / no

WORDS = sorted(YES_WORDS | NO_WORDS)
CHOICE = ActionChoice(Action.Block, False, ())


@pytest.mark.parametrize("word", [*WORDS, *(w.upper() for w in WORDS), " On ", "\u200bno"])
def test_every_yes_no_word_means_the_same_in_settings_rows_and_misp(word):
    want = yes_no(word)
    assert want is not None
    assert parse_bool(word) is want
    assert InputOptions.parse({"dry_run": word}).dry_run_under(Settings()) is want
    assert resolve_generate_alert(word, row_defaults(Settings()), CHOICE) is want
    assert to_ids_false(word) is (not want)


def test_a_word_that_is_neither_stays_an_error_where_it_was_one_and_empty_keeps_each_callers_meaning():
    assert yes_no("maybe") is None and yes_no("") is None
    with pytest.raises(ValueError):
        parse_bool("maybe")
    with pytest.raises(SettingsError):
        Settings.from_env({"DRY_RUN": "maybe"})
    assert isinstance(resolve_generate_alert("maybe", row_defaults(Settings()), CHOICE), Problem)
    assert to_ids_false("maybe") is False  # MISP: only a no word turns detection off
    # Empty: settings read false; a row takes the file's value; MISP keeps its default (true).
    assert parse_bool("") is False and parse_bool("  ") is False
    assert resolve_generate_alert("", row_defaults(Settings(generate_alert=True)), CHOICE) is True
    assert resolve_generate_alert(" ", row_defaults(Settings()), CHOICE) is None
    assert to_ids_false("") is False


def test_tenant_records_read_generate_alert_words_too():
    assert TenantRecord.from_wire({"generateAlert": "True"}).generateAlert is True
    assert TenantRecord.from_wire({"generateAlert": "false"}).generateAlert is False
    assert TenantRecord.from_wire({"generateAlert": True}).generateAlert is True


# ------------------------------------------------------------------------------------- legacy actions


@pytest.mark.parametrize(
    ("name", "t", "action"),
    [
        ("Alert", T.FileSha256, Action.Audit),
        ("Alert", T.Url, Action.Audit),
        # Issue "Nothing silently dropped": AlertAndBlock was renamed BlockAndRemediate (fidelity-review [Ovw]);
        # network types cannot take it, so they get Block.
        ("AlertAndBlock", T.FileSha256, Action.BlockAndRemediate),
        ("AlertAndBlock", T.FileMd5, Action.BlockAndRemediate),
        ("AlertAndBlock", T.CertificateThumbprint, Action.BlockAndRemediate),
        ("AlertAndBlock", T.Url, Action.Block),
        ("AlertAndBlock", T.IpAddress, Action.Block),
    ],
)
def test_one_legacy_action_map_for_settings_rows_and_tenant_records(name, t, action):
    assert legacy_action(name, t) is action
    app_wide = row_defaults(Settings.from_env({"DEFAULT_ACTION": name}))
    per_input = row_defaults(Settings(), InputOptions.parse({"action": name.upper()}))
    for defaults in (app_wide, per_input):
        if t is not T.CertificateThumbprint or defaults.action_from_input:
            choice = resolve_action(None, t, defaults)
            assert isinstance(choice, ActionChoice) and choice.action is action and choice.force_alert
            assert f"mapped to {action.value}" in choice.notes[0]
    choice = resolve_action(f" {name} ", t, row_defaults(Settings()))
    assert isinstance(choice, ActionChoice) and choice.action is action and choice.force_alert
    assert TenantRecord.from_wire({"action": name, "indicatorType": t.value}).action == action.value


# ---------------------------------------------------------------------------------------- URL scheme

URLS = [
    ("https://api.securitycenter.microsoft.com", True),
    ("https://stdata.blob.core.windows.net/", True),
    ("http://127.0.0.1:10000/devstoreaccount1", True),  # Azurite
    ("http://localhost:7071", True),
    ("http://[::1]:8080", True),  # loopback too
    ("http://stdata.blob.core.windows.net", False),
    ("http://localhost.evil.example", False),  # a prefix is not a host
    ("http://127.0.0.1.evil.example/", False),
    ("ftp://127.0.0.1", False),
    ("api.securitycenter.microsoft.com", False),
]


@pytest.mark.parametrize(("url", "ok"), URLS)
def test_one_url_scheme_rule_for_the_defender_url_and_the_storage_uri(url, ok):
    from shared.storage.blobs import ConnectionSettingsError, parse_connection

    assert secure_url(url) is ok
    if ok:
        Settings.from_env({"DEFENDER_API_URL": url})
        parse_connection({"IndicatorStorage__blobServiceUri": url})
    else:
        with pytest.raises(SettingsError, match="https://"):
            Settings.from_env({"DEFENDER_API_URL": url})
        with pytest.raises(ConnectionSettingsError, match="https://"):
            parse_connection({"IndicatorStorage__blobServiceUri": url})


# --------------------------------------------------------------------------------------------- times

ISO = [
    ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2025-01-02T03:04:05z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2025-01-02T05:04:05+02:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2025-01-02T03:04:05", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),  # naive: UTC
    ("2025-01-02", datetime(2025, 1, 2, tzinfo=UTC)),
    ("9999-12-31T23:59:59-01:00", None),  # past the last datetime once in UTC
    ("garbage", None),
]


@pytest.mark.parametrize(("text", "want"), ISO)
def test_users_dates_and_defenders_answers_share_one_iso_parser(text, want):
    assert parse_iso_utc(text) == want
    assert parse_datetime(text) == want
    assert parse_time(text) == want


def test_the_parsers_differ_only_where_their_sources_do():
    # Users write US dates (SOURCES.md file 15); Defender never does.
    assert parse_datetime("3/4/2026") == datetime(2026, 3, 4, tzinfo=UTC) and parse_time("3/4/2026") is None
    # Defender's seven fractional digits: the second is what the tenant's decisions compare.
    assert parse_time("2025-01-02T03:04:05.1234567Z") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_datetime("2025-01-02T03:04:05.5Z") == datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("") is None


def test_one_utc_format_for_expiry_dates_and_report_stamps():
    assert format_utc(datetime(2025, 1, 2, 5, 4, 5, 999, tzinfo=UTC)) == "2025-01-02T05:04:05Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", format_utc(NOW))


# ---------------------------------------------------------------------------------------- type names


def test_reader_type_names_mean_what_normalisation_reads_them_as():
    """MISP_TYPES and TYPED_COLUMNS live with their readers; each name resolves in normalise.TYPE_NAMES alike."""
    for name, t in MISP_TYPES.items():
        assert TYPE_NAMES[name] is t, name
    for column, hint in TYPED_COLUMNS.items():
        assert isinstance(TYPE_NAMES.get(hint.lower()), IndicatorType), column
