"""Property tests: arbitrary strings in every field never crash validation; one Outcome per RawRow."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.checks import validate as validate_module
from shared.checks.normalise import normalise
from shared.checks.validate import Validator, validate
from shared.core.model import KNOWN_FIELDS, FileProblem, Ignored, IndicatorType, Outcome, RawRow, Status
from shared.core.options import NO_OPTIONS, InputOptions
from shared.core.settings import Settings

NOW = datetime(2026, 1, 15, tzinfo=UTC)

# Text that leans towards the characters our parsers care about, plus anything at all.
_alphabet = st.sampled_from(list("0123456789abcdefABCDEF.:/[]()@-_ *%|\\?#xn-\u00a0\u200b\tä例")) | st.characters()
texts = st.text(_alphabet, max_size=40) | st.sampled_from(["", " ", "hxxp://a[.]b/c", "1.2.3.4:80", "::1", "Audit"])
fields = st.dictionaries(st.sampled_from(sorted(KNOWN_FIELDS)), texts, max_size=len(KNOWN_FIELDS))
rows = st.builds(
    RawRow,
    line=st.integers(1, 10**6),
    fields=fields,
    position=st.booleans(),
    invalid=st.none() | texts,
    skip=st.none() | texts,
    note=st.none() | texts,
)
items = st.lists(rows | st.builds(Ignored, st.integers(1, 100)) | st.builds(FileProblem, texts), max_size=20)


@settings(max_examples=300, deadline=None)
@given(items)
def test_every_raw_row_gives_exactly_one_outcome(batch):
    out = list(validate(batch, Settings(), source="p", now=NOW))
    assert len(out) == len(batch)
    for item, o in zip(batch, out, strict=True):
        if isinstance(item, RawRow):
            assert isinstance(o, Outcome) and o.line == item.line and o.position == item.position
            # Pending entries carry their indicator; so do duplicates (their first occurrence's fields).
            assert (o.status is None) <= (o.indicator is not None)
            assert (o.status in (Status.invalid, Status.skipped)) <= (o.indicator is None)
            if o.status in (Status.invalid, Status.skipped):
                assert o.reason
        else:
            assert o is item


@settings(max_examples=500, deadline=None)
@given(texts, st.none() | texts)
def test_normalise_never_raises(value, hint):
    normalise(value, hint)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["evil.example", "EVIL.example", "8.8.8.8", "hxxp://evil[.]example/x", "x"]), max_size=30)
)
def test_duplicates_always_point_back_to_an_earlier_pending_line(values):
    batch = [RawRow(i + 1, {"value": v}) for i, v in enumerate(values)]
    out = list(validate(batch, Settings(), source="p", now=NOW))
    pending_lines = set()
    for o in out:
        assert isinstance(o, Outcome)
        if o.status is None:
            pending_lines.add(o.line)
        elif o.status is Status.duplicate:
            assert o.duplicate_of in pending_lines and o.duplicate_of < o.line


# Spellings a file repeats row after row, good and bad, so that the memos are hit as well as missed.
_repeated = st.sampled_from(
    ["Block", " audit ", "Alert", "alert", "Bogus", "", " ", "High", "low", "x" * 4001, "2099-01-01", "1/2/2000", "no"]
)
_memoised = ("action", "severity", "title", "description", "expirationTime", "generateAlert", "category")
field_rows = st.lists(
    st.builds(
        RawRow,
        line=st.integers(1, 10**6),
        fields=st.fixed_dictionaries(
            {"value": st.sampled_from(["evil.example", "8.8.8.8", "a" * 40, "http://evil.example/x"])},
            optional={"type": st.sampled_from(["CertificateThumbprint", "FileSha1", "Url"])}
            | {name: _repeated for name in _memoised},
        ),
    ),
    max_size=20,
)
# The defaults the memos fall back on vary with the settings and the file's metadata (its options).
_settings = st.sampled_from(
    [
        NO_OPTIONS,
        InputOptions.parse({"action": "AlertAndBlock", "generate_alert": "false"}),
        InputOptions.parse({"action": "Allowed", "severity": "High", "expiration_days": "0"}),
    ]
)


@settings(max_examples=300, deadline=None)
@given(field_rows, _settings)
def test_memoised_field_resolution_equals_resolving_every_row(batch, options):
    """The field memos (validate._Memo: raw text → resolved value) change nothing but the speed."""
    s = Settings()
    memoised = list(validate(batch, s, options=options, source="p", now=NOW))
    saved = validate_module.MEMO_LIMIT
    validate_module.MEMO_LIMIT = 0  # every look-up misses and resolves afresh
    try:
        unmemoised = list(validate(batch, s, options=options, source="p", now=NOW))
    finally:
        validate_module.MEMO_LIMIT = saved
    assert memoised == unmemoised


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(IndicatorType)),
    st.text(max_size=10),
    st.lists(st.text(max_size=5), max_size=2).map(tuple),
    _settings,
)
def test_the_defaults_only_row_is_the_general_path_with_every_field_absent(t, value, notes, options):
    """`Validator._defaulted` (a row of only a value, and maybe a type) builds what `_indicator` builds."""
    v = Validator(Settings(), options=options, source="p", now=NOW)
    assert v._defaulted(t, value, notes) == v._indicator(t, value, {"value": value, "type": t.value}, notes)
