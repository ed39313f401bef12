"""Quota stewardship decisions (issue 6; CONTRACT.md `unchanged`, `skipped` "tenant capacity",
`MAX_TENANT_INDICATORS`, `CAPACITY_RESERVE`), and the steward over a scripted tenant client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.batching import batches
from shared.core.errors import DefenderUnavailable, NotFoundError
from shared.core.model import Action, Indicator, IndicatorType, Outcome, Severity, Status, Summary
from shared.core.options import InputOptions
from shared.core.settings import Settings
from shared.tenant import capacity, delta, ownership, records
from shared.tenant.capacity import Priority
from shared.tenant.delta import Decision, Kind
from shared.tenant.records import TenantRecord, TenantView
from shared.tenant.steward import BATCH_DELETE_MAX_IDS, CAPACITY_REASON, Steward, prepare

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def ind(value: str = "1.2.3.4", **kw: Any) -> Indicator:
    base: dict[str, Any] = {
        "indicatorValue": value,
        "indicatorType": IndicatorType.IpAddress,
        "action": Action.Block,
        "title": "t",
        "description": "d",
        "severity": Severity.Medium,
        "expirationTime": iso(NOW + timedelta(days=90)),
    }
    base.update(kw)
    return Indicator(**base)


def rec(id: str = "1", value: str = "1.2.3.4", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id,
        "indicatorValue": value,
        "indicatorType": "IpAddress",
        "action": "Block",
        "title": "t",
        "description": "d",
        "severity": "Medium",
        "expirationTime": iso(NOW + timedelta(days=80)),
        "rbacGroupNames": [],
        "generateAlert": False,
        "createdBy": "app",
    }
    base.update(kw)
    return base


def mine(id: str = "1", value: str = "1.2.3.4", feed: str | None = None, **kw: Any) -> dict[str, Any]:
    """A record this app made: `rec` (createdBy "app") with the app's mark for its type and value."""
    r = rec(id, value=value, **kw)
    r["externalId"] = ownership.app_mark(feed, r["indicatorType"], r["indicatorValue"])
    return r


def decide(
    indicator: Indicator,
    *records: dict[str, Any],
    explicit: bool = False,
    window: int = 90,
    identities: tuple[str, ...] = (),
) -> Decision:
    view = TenantView(records, now=NOW)
    return delta.compare(
        indicator,
        view.for_indicator(indicator),
        now=NOW,
        expiry_window_days=window,
        explicit_expiry=explicit,
        identities=identities,
    )


# ------------------------------------------------------------------------------------------ tenant view


@pytest.mark.parametrize(
    ("type_", "raw", "want"),
    [
        ("FileSha256", "  ABCDEF ", "abcdef"),  # analysts paste upper-case hashes (defender-api.md §4)
        ("DomainName", "Example.COM.", "example.com"),
        ("IpAddress", "2001:db8::1", "2001:db8:0:0:0:0:0:1"),  # all eight groups (CONTRACT.md)
        ("IpAddress", "2001:0DB8:0:0:0:0:0:0001", "2001:db8:0:0:0:0:0:1"),
        ("Url", "HTTP://Example.com/Path?Q=1", "http://example.com/Path?Q=1"),  # path and query kept
        ("IpAddress", "not-an-ip", "not-an-ip"),  # kept as given, never raises
    ],
)
def test_tenant_key_writes_values_like_validation(type_: str, raw: str, want: str) -> None:
    assert records.tenant_key(type_, raw) == (type_, want)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05.1234567Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),  # .NET's 7 digits
        ("2025-01-02T05:04:05+02:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (None, None),
        ("garbage", None),
    ],
)
def test_parse_time(text: str | None, want: datetime | None) -> None:
    assert records.parse_time(text) == want


def test_view_counts_only_active_records_and_indexes_by_key() -> None:
    view = TenantView(
        [
            rec("1"),
            rec("2", value="5.6.7.8", expirationTime=None),  # never expires: active
            rec("3", value="9.9.9.9", expirationTime=iso(NOW - timedelta(seconds=1))),  # expired: gone
        ],
        now=NOW,
    )
    assert view.active_count == 2
    assert [r.id for r in view.get("IpAddress", "1.2.3.4")] == ["1"]
    assert view.get("IpAddress", "9.9.9.9") == []
    assert view.ids == {"1", "2"}


def test_record_from_wire_tolerates_legacy_shapes() -> None:
    r = TenantRecord.from_wire(
        {"id": 7, "indicatorType": "Url", "indicatorValue": "http://x/", "action": "AlertAndBlock",
         "rbacGroupNames": "b, a", "generateAlert": "True", "externalID": "e"}
    )  # fmt: skip
    assert (r.id, r.action, r.rbacGroupNames, r.generateAlert, r.externalId) == ("7", "Block", ("a", "b"), True, "e")


# ------------------------------------------------------------------------------------------ delta decisions

DELTA_TABLE = [
    # (indicator, tenant records, expected kind, existing_id, differences)  # why
    (ind(), [], Kind.new, None, ()),  # nothing in the tenant
    (ind(), [rec("1")], Kind.unchanged, "1", ()),  # identical; 80 of 90 days left ≥ half
    (ind(), [rec("1", indicatorValue="1.2.3.4 ")], Kind.unchanged, "1", ()),  # tenant value trimmed
    (ind(severity=Severity.High), [rec("1")], Kind.update, "1", ("severity",)),
    (ind(title="other"), [rec("1")], Kind.update, "1", ("title",)),
    (ind(description="other"), [rec("1")], Kind.update, "1", ("description",)),
    (ind(rbacGroupNames=("g1",)), [rec("1")], Kind.update, "1", ("rbacGroupNames",)),
    (ind(rbacGroupNames=("b", "a")), [rec("1", rbacGroupNames=["a", "b"])], Kind.unchanged, "1", ()),  # order
    (ind(rbacGroupNames=()), [rec("1", rbacGroupNames=None)], Kind.unchanged, "1", ()),  # [] = None = all
    (ind(generateAlert=True), [rec("1")], Kind.update, "1", ("generateAlert",)),
    (ind(generateAlert=None), [rec("1", generateAlert=False)], Kind.unchanged, "1", ()),  # unsent = false
    (ind(severity=None), [rec("1", severity="High")], Kind.unchanged, "1", ()),  # unsent: not compared
    (ind(recommendedActions="patch"), [rec("1")], Kind.update, "1", ("recommendedActions",)),
    (ind(externalId="someone-else"), [rec("1", externalId="x")], Kind.unchanged, "1", ()),  # never compared
    # A record with too little of its window left is refreshed (half-life rule).
    (ind(), [rec("1", expirationTime=iso(NOW + timedelta(days=44)))], Kind.update, "1", ("expirationTime",)),
    (ind(), [rec("1", expirationTime=iso(NOW + timedelta(days=45)))], Kind.unchanged, "1", ()),
    (ind(), [rec("1", expirationTime=None)], Kind.update, "1", ("expirationTime",)),  # never vs 90 days
    # Reaching beyond the window: the window was shortened since; apply it.
    (ind(), [rec("1", expirationTime=iso(NOW + timedelta(days=200)))], Kind.update, "1", ("expirationTime",)),
]


@pytest.mark.parametrize(("indicator", "records", "kind", "existing", "diff"), DELTA_TABLE)
def test_delta_decisions(
    indicator: Indicator, records: list[dict[str, Any]], kind: Kind, existing: str | None, diff: tuple[str, ...]
) -> None:
    d = decide(indicator, *records)
    assert (d.kind, d.existing_id, d.differences) == (kind, existing, diff)
    # The records are unmarked (an analyst's): an update never supersedes them, whatever id comes back.
    assert d.supersedes == () and d.conflicts == ()
    ours = [{**r, "externalId": ownership.app_mark(None, r["indicatorType"], r["indicatorValue"])} for r in records]
    d = decide(indicator, *ours)
    assert (d.kind, d.existing_id, d.differences) == (kind, existing, diff)
    if kind is Kind.update:
        assert d.supersedes == (existing,)  # ours: deleted only if the import returns another id
    if kind in (Kind.new, Kind.unchanged):
        assert d.supersedes == ()


def test_uppercase_hash_in_tenant_matches_lowercase_row() -> None:
    sha = "A" * 64
    i = ind(sha.lower(), indicatorType=IndicatorType.FileSha256)
    d = decide(i, rec("9", value=sha, indicatorType="FileSha256"))
    assert (d.kind, d.existing_id) == (Kind.unchanged, "9")


@pytest.mark.parametrize(
    ("wanted", "held", "kind"),
    [
        (NOW + timedelta(days=10), NOW + timedelta(days=10), Kind.unchanged),  # explicit: exact
        (NOW + timedelta(days=10), NOW + timedelta(days=10, seconds=1), Kind.update),  # to the second
        (None, None, Kind.unchanged),  # explicit "never"
        (NOW + timedelta(days=10), None, Kind.update),
    ],
)
def test_explicit_expiry_compares_exactly(wanted: datetime | None, held: datetime | None, kind: Kind) -> None:
    i = ind(expirationTime=iso(wanted) if wanted else None)
    d = decide(i, rec("1", expirationTime=iso(held) if held else None), explicit=True)
    assert d.kind is kind


def test_never_expiring_window() -> None:
    """`DEFAULT_EXPIRATION_DAYS=0` means never expire: only a record without expiry is unchanged."""
    i = ind(expirationTime=None)
    assert decide(i, rec("1", expirationTime=None), window=0).kind is Kind.unchanged
    assert decide(i, rec("1"), window=0).kind is Kind.update


def test_action_change_of_our_own_record_is_a_replace_listing_every_superseded_id() -> None:
    d = decide(ind(action=Action.Block), mine("1", action="Allowed"))
    assert (d.kind, d.old_id, d.old_action, d.existing_id, d.supersedes) == (Kind.replace, "1", "Allowed", None, ("1",))
    assert d.note() == "replaces Allowed indicator 1" and not d.adds


def test_replace_keeps_an_identical_same_action_record() -> None:
    """A same-action twin that is identical is the one Defender would upsert: never in `supersedes`."""
    d = decide(ind(), mine("1"), mine("2", action="Allowed"))
    assert (d.kind, d.existing_id, d.supersedes) == (Kind.replace, "1", ("2",))
    d = decide(ind(), mine("1", title="old"), mine("2", action="Warn"))
    assert (d.kind, d.existing_id, d.supersedes) == (Kind.replace, "1", ("2", "1"))
    d = decide(ind(), rec("1", title="old"), mine("2", action="Warn"))  # the differing twin is not ours
    assert (d.kind, d.existing_id, d.supersedes) == (Kind.replace, "1", ("2",))


ANALYST = "analyst@contoso.example"
US = ("app",)  # the app's identities (token claims); `rec` records say createdBy "app"


def copied(id: str, value: str = "1.2.3.4", **kw: Any) -> dict[str, Any]:
    """Our mark for this value, written by another app that copied it."""
    return mine(id, value, createdBy="other-app", **kw)


OWNERSHIP_TABLE = [
    # (record, identities, owned)  # why
    (mine("1"), US, True),  # our mark (no feed) and our identity
    (mine("1", feed="acme"), US, True),  # a feed's mark is the app's too
    (mine("1", feed="*"), US, True),  # a feed named "*" is written %2A, not confused with "no feed"
    (mine("1", createdBy="APP"), US, True),  # identities compare case-insensitively (GUIDs)
    (mine("1"), (), True),  # identity unknown: the mark alone
    (copied("1"), US, False),  # another identity with our mark: not ours
    (copied("1"), (), True),  # ...which only the identity can tell
    (rec("1"), US, False),  # no mark: made by hand (or by this app before it marked), never ours
    (rec("1", externalId="ticket-4711"), US, False),  # someone's own externalId
    (rec("1", createdBy=ANALYST), (), False),
    (rec("1", externalId=ownership.app_mark(None, "IpAddress", "9.9.9.9")), US, False),  # mark of another value
    (rec("1", externalId=ownership.app_mark(None, "DomainName", "1.2.3.4")), US, False),  # mark of another type
    (rec("1", externalId="ioc-importer:*:" + "0" * 24), US, False),  # our shape, digest does not verify
    (rec("1", externalId="ioc-importer::" + "0" * 24), US, False),  # empty feed segment
    (rec("1", externalId="ioc-importer:a:b:c"), US, False),
    (mine("1", createdBy=None), US, False),  # no createdBy: cannot be ours once identities are known
]


@pytest.mark.parametrize(("record", "identities", "owned"), OWNERSHIP_TABLE)
def test_owned_by_app(record: dict[str, Any], identities: tuple[str, ...], owned: bool) -> None:
    assert ownership.owned_by_app(TenantRecord.from_wire(record), identities) is owned


def test_mark_without_feed_is_unambiguous() -> None:
    m = ownership.app_mark(None, "IpAddress", "1.2.3.4")
    assert m.startswith("ioc-importer:*:") and ownership.mark_feed(m) is None
    assert m == ownership.app_mark(None, "IpAddress", " 1.2.3.4 ")  # written like validation writes it
    assert ownership.app_mark("*", "IpAddress", "1.2.3.4").startswith("ioc-importer:%2A:")
    assert ownership.mark_feed(ownership.app_mark("*", "IpAddress", "1.2.3.4")) == "*"
    assert ownership.app_mark("-", "IpAddress", "1.2.3.4").startswith("ioc-importer:-:")  # "-" is a valid feed name
    with pytest.raises(ValueError):
        ownership.feed_mark("", "IpAddress", "1.2.3.4")


@settings(max_examples=300, deadline=None)
@given(feed=st.text(min_size=1, max_size=20))
def test_no_feed_name_quotes_to_the_no_feed_token(feed: str) -> None:
    m = ownership.feed_mark(feed, "DomainName", "a.example")
    assert m.split(":")[1] != ownership.NO_FEED and len(m.split(":")) == 3
    assert ownership.mark_feed(m) == feed


def theirs(id: str, **kw: Any) -> dict[str, Any]:
    """An analyst's record, made in the portal (no mark)."""
    return rec(id, createdBy=ANALYST, **kw)


REPLACE_TABLE = [
    # (records, identities, kind, supersedes, conflict ids, adds)  # why
    ([mine("1", action="Allowed")], US, Kind.replace, ("1",), (), False),  # ours: replaced
    ([theirs("1", action="Allowed")], US, Kind.new, (), ("1",), True),  # analyst's: left in place
    ([copied("1", action="Allowed")], US, Kind.new, (), ("1",), True),  # copied mark: not ours
    ([copied("1", action="Allowed")], (), Kind.replace, ("1",), (), False),  # identity unknown: mark alone
    ([rec("1", action="Allowed")], (), Kind.new, (), ("1",), True),  # unmarked: never ours
    # Ours and an analyst's with other actions: ours replaced, the analyst's left.
    ([mine("1", action="Warn"), theirs("2", action="Allowed")], US, Kind.replace, ("1",), ("2",), False),
    # The value is already there as we want it; an analyst's Allow next to it is only reported.
    ([mine("1"), theirs("2", action="Allowed")], US, Kind.unchanged, (), ("2",), False),
    # An update of the analyst's same-action record: Defender's upsert, never a delete of it.
    ([theirs("1", title="x"), theirs("2", action="Audit")], US, Kind.update, (), ("2",), False),
    ([mine("1", title="x"), theirs("2", action="Audit")], US, Kind.update, ("1",), ("2",), False),
]  # fmt: skip


@pytest.mark.parametrize(("records", "identities", "kind", "supersedes", "conflicts", "adds"), REPLACE_TABLE)
def test_replace_decision_owned_versus_foreign(
    records: list[dict[str, Any]],
    identities: tuple[str, ...],
    kind: Kind,
    supersedes: tuple[str, ...],
    conflicts: tuple[str, ...],
    adds: bool,
) -> None:
    d = decide(ind(action=Action.Block), *records, identities=identities)
    assert (d.kind, d.supersedes, tuple(c.id for c in d.conflicts), d.adds) == (kind, supersedes, conflicts, adds)
    # Whatever id the import returns, a conflicting (foreign) record is never among the deletes.
    for returned in ("99", *(r["id"] for r in records)):
        assert not set(delta.superseded_to_delete(d, returned)) & set(conflicts)


def test_conflict_note_names_the_record_its_creator_and_the_precedence() -> None:
    d = decide(ind(action=Action.Block), theirs("123", action="Allowed"), identities=US)
    assert d.note() == (
        "conflicts with Allowed indicator 123 created by analyst@contoso.example, left in place"
        " (for network indicators Allow wins over Warn over Block)"
    )
    (c,) = d.conflicts
    assert c.in_place_note() == "Defender updated indicator 123 in place (it was created by analyst@contoso.example)"
    sha = "a" * 64
    d = decide(
        ind(sha, indicatorType=IndicatorType.FileSha256, action=Action.Block),
        rec("5", value=sha, indicatorType="FileSha256", action="Allowed", createdBy=None),
    )
    assert d.note() == "conflicts with Allowed indicator 5 created by an unknown identity, left in place"
    d = decide(ind(action=Action.Block), mine("1", action="Warn"), theirs("2", action="Allowed"))
    assert d.note() and d.note().startswith("replaces Warn indicator 1; conflicts with Allowed indicator 2")


def test_legacy_alert_and_block_record_equals_a_block_row() -> None:
    assert decide(ind(action=Action.Block), rec("1", action="AlertAndBlock")).kind is Kind.unchanged


def test_identical_twin_preferred_over_a_differing_one() -> None:
    d = decide(ind(), rec("1", title="old"), rec("2"))
    assert (d.kind, d.existing_id) == (Kind.unchanged, "2")


@pytest.mark.parametrize(
    ("supersedes", "returned", "deleted"),
    [
        (("1",), "2", ["1"]),  # a new record: delete the old one
        (("1",), "1", []),  # updated in place: deleting would delete the new one (defender-api.md §3.2)
        (("1",), None, []),  # import failed: the old one keeps protecting
        (("1", "2"), "2", ["1"]),
    ],
)
def test_superseded_to_delete(supersedes: tuple[str, ...], returned: str | None, deleted: list[str]) -> None:
    assert delta.superseded_to_delete(Decision(Kind.replace, supersedes=supersedes), returned) == deleted


def test_looks_defaulted() -> None:
    tol = timedelta(days=1)
    assert delta.looks_defaulted(iso(NOW + timedelta(days=90)), now=NOW, window_days=90, tolerance=tol)
    assert not delta.looks_defaulted(iso(NOW + timedelta(days=30)), now=NOW, window_days=90, tolerance=tol)
    assert delta.looks_defaulted(None, now=NOW, window_days=0, tolerance=tol)
    assert not delta.looks_defaulted(None, now=NOW, window_days=90, tolerance=tol)


# ------------------------------------------------------------------------------------------ capacity


@pytest.mark.parametrize(
    ("cap", "reserve", "active", "room"),
    [(15000, 500, 0, 14500), (15000, 500, 14500, 0), (15000, 500, 14999, 0), (100, 0, 40, 60)],
)
def test_room_left(cap: int, reserve: int, active: int, room: int) -> None:
    assert capacity.room_left(cap, reserve, active) == room


def test_default_priority_order() -> None:
    p = Priority()
    later = iso(NOW + timedelta(days=300))
    ordered = [
        ind(severity=Severity.High, action=Action.Audit),  # severity first
        ind(severity=Severity.Medium, action=Action.Block, expirationTime=later),
        ind(severity=Severity.Medium, action=Action.Block),  # latest expiry first
        ind(severity=Severity.Medium, action=Action.BlockAndRemediate),  # ties Block
        ind(severity=Severity.Medium, action=Action.Warn),
        ind(severity=Severity.Medium, action=Action.Audit),
        ind(severity=Severity.Medium, action=Action.Allowed),
        ind(severity=Severity.Low, action=Action.Block),
        ind(severity=Severity.Informational, action=Action.Block),
        ind(severity=None, action=Action.Block),
    ]
    keys = [p.key(i) for i in ordered]
    assert keys == sorted(keys)
    assert keys[2] == keys[3]


def test_priority_is_configurable_and_checked() -> None:
    p = Priority.parse("action, severity")
    assert p.key(ind(severity=Severity.Low, action=Action.Block)) < p.key(
        ind(severity=Severity.High, action=Action.Warn)
    )
    assert Priority.parse(None) == Priority()
    with pytest.raises(ValueError, match="capacity priority"):
        Priority.parse("severity,colour")
    with pytest.raises(ValueError):
        Priority.parse("severity,severity")


def test_expiry_buckets_are_whole_days() -> None:
    p = Priority.parse("expiry")
    a = p.key(ind(expirationTime=iso(NOW + timedelta(days=90))))
    b = p.key(ind(expirationTime=iso(NOW + timedelta(days=90, seconds=5))))
    assert a == b  # defaulted seconds apart: tie, input order decides
    assert p.key(ind(expirationTime=None)) < a  # never expires counts as latest


def run_plan(keys: list[tuple[int, ...]], room: int) -> list[bool]:
    admitter = capacity.Admitter(capacity.admit_plan(keys, room))
    return [admitter.admit(k) for k in keys]


def test_admit_plan_table() -> None:
    assert run_plan([(1,), (0,), (1,), (0,)], 3) == [True, True, False, True]
    assert run_plan([(1,), (0,), (1,), (0,)], 0) == [False] * 4
    assert run_plan([(1,), (0,)], 5) == [True, True]
    assert run_plan([(2,), (1,), (1,), (1,)], 2) == [False, True, True, False]


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=60),
    room=st.integers(-2, 70),
)
def test_admit_plan_properties(keys: list[tuple[int, int]], room: int) -> None:
    """Exactly min(room, n) admitted; every admitted key ≤ every refused key; ties go in input order."""
    admitted = run_plan(keys, room)
    assert sum(admitted) == min(max(room, 0), len(keys))
    ins = [k for k, a in zip(keys, admitted, strict=True) if a]
    outs = [k for k, a in zip(keys, admitted, strict=True) if not a]
    if ins and outs:
        assert max(ins) <= min(outs)
        cut = max(ins)
        positions = [i for i, k in enumerate(keys) if k == cut]
        taken = [admitted[i] for i in positions]
        assert taken == sorted(taken, reverse=True)  # admitted ones at the cut come first


# ------------------------------------------------------------------------------------------ feed ownership and sync


def test_feed_mark_is_bound_to_feed_and_value() -> None:
    m = ownership.feed_mark("abuse:urlhaus", "IpAddress", "1.2.3.4")
    assert m.startswith("ioc-importer:abuse%3Aurlhaus:")
    assert ownership.mark_feed(m) == "abuse:urlhaus"
    assert m != ownership.feed_mark("abuse:urlhaus", "IpAddress", "1.2.3.5")
    assert m != ownership.feed_mark("other", "IpAddress", "1.2.3.4")
    assert ownership.mark_feed("analyst-ticket-42") is None
    assert ownership.mark_feed(None) is None


def owned(id: str, value: str, feed: str = "f", **kw: Any) -> dict[str, Any]:
    return rec(id, value=value, externalId=ownership.feed_mark(feed, "IpAddress", value), **kw)


def sync_view() -> TenantView:
    return TenantView(
        [
            owned("1", "1.0.0.1"),
            owned("2", "1.0.0.2"),
            owned("3", "1.0.0.3"),
            owned("4", "1.0.0.4"),
            owned("5", "1.0.0.5", feed="other"),  # another feed's
            rec("6", value="1.0.0.6"),  # an analyst's, no mark
            rec("7", value="1.0.0.7", externalId=ownership.feed_mark("f", "IpAddress", "1.0.0.8")),  # copied mark
            owned("8", "1.0.0.9", createdBy="someone"),  # our mark, someone else's identity
        ],
        now=NOW,
    )


def keys(*last_octets: int) -> list[tuple[str, str]]:
    return [("IpAddress", f"1.0.0.{n}") for n in last_octets]


SYNC_TABLE = [
    # (present, invalid_ratio, file_error, force, delete_ids, held_back)  # why
    (keys(1, 2, 3), 0.0, False, False, ("4",), None),  # only this feed's own stale one
    (keys(1, 2, 3, 4), 0.0, False, False, (), None),  # nothing stale
    (keys(1, 2, 3), 0.0, True, False, ("4",), "file-level error"),
    (keys(1, 2, 3), 0.11, False, False, ("4",), "invalid"),
    (keys(1, 2, 3), 0.10, False, False, ("4",), None),  # exactly 10% is allowed ("more than 10%")
    (keys(1, 2), 0.0, False, False, ("3", "4"), None),  # exactly half is allowed
    (keys(1), 0.0, False, False, ("2", "3", "4"), "more than half"),
    (keys(1), 0.5, True, True, ("2", "3", "4"), None),  # force overrides every rule
    (keys(1, 2, 3), 0.0, True, True, ("4",), None),
]


@pytest.mark.parametrize(("present", "ratio", "file_error", "force", "ids", "held"), SYNC_TABLE)
def test_sync_plan(
    present: list[tuple[str, str]], ratio: float, file_error: bool, force: bool, ids: tuple[str, ...], held: str | None
) -> None:
    plan = ownership.sync_plan(
        "f", sync_view(), present, invalid_ratio=ratio, file_error=file_error, force=force, identities=["APP"]
    )
    assert plan.delete_ids == ids
    assert plan.feed_count == 4
    if held:
        assert plan.held_back_reason and held in plan.held_back_reason
        assert "sync_force" in plan.held_back_reason
        assert plan.deletes == ()
    else:
        assert plan.held_back_reason is None
        assert plan.deletes == ids


def test_sync_without_known_identity_relies_on_the_mark() -> None:
    plan = ownership.sync_plan("f", sync_view(), keys(1, 2, 3, 4), invalid_ratio=0, file_error=False, force=False)
    assert plan.delete_ids == ("8",)  # mark verified; identity not checked when unknown
    assert plan.feed_count == 5


def test_chunks_of_500() -> None:
    """BatchDelete takes at most 500 ids a call (defender-api.md §2, §5): core's one chunker cuts them."""
    ids = [str(i) for i in range(1201)]
    assert [len(c) for c in batches(ids, BATCH_DELETE_MAX_IDS)] == [500, 500, 201]


def test_steward_deletes_in_calls_of_500_ids_each_id_once() -> None:
    ids = [str(i) for i in range(1201)]
    client = FakeTenant([rec(i, value=f"9.9.{int(i) // 256}.{int(i) % 256}") for i in ids])
    gone = Steward(client, settings_(), now=NOW)._delete([*ids, "0", "1"])
    assert [len(b) for b in client.batches] == [500, 500, 201] and gone == set(ids) and client.records == {}


def test_core_module_imports_no_sdk() -> None:
    """quota.py is core: standard library only (STYLE.md module map)."""
    code = (
        "import sys, shared.tenant; "
        "print([m for m in sys.modules if m.split('.')[0] in {'azure', 'requests', 'urllib3'}])"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ steward, scripted client


class FakeTenant:
    """A scripted tenant client: List pages, BatchDelete all-or-nothing 404, counters like the real client."""

    def __init__(self, records: list[dict[str, Any]], *, page_size: int = 2) -> None:
        self.records = {r["id"]: r for r in records}
        self.page_size = page_size
        self.list_calls = 0
        self.delete_calls = 0
        self.batches: list[list[str]] = []
        self.fail_delete: Exception | None = None

    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Iterator[dict[str, Any]]:
        items = list(self.records.values())
        skip = 0
        while True:
            self.list_calls += 1
            page = items[skip : skip + self.page_size]
            yield from page
            if len(page) < self.page_size:
                return
            skip += len(page)

    def batch_delete(self, ids: Sequence[str]) -> None:
        self.delete_calls += 1
        self.batches.append(list(ids))
        if self.fail_delete:
            raise self.fail_delete
        if any(i not in self.records for i in ids):
            raise NotFoundError("not found", status=404)
        for i in ids:
            del self.records[i]

    def delete(self, id: str) -> bool:
        self.delete_calls += 1
        self.batches.append([id])
        return self.records.pop(id, None) is not None


def pending(line: int, indicator: Indicator) -> Outcome:
    return Outcome(
        line=line,
        value=indicator.indicatorValue,
        type=indicator.indicatorType.value,
        action=indicator.action.value,
        status=None,
        indicator=indicator,
    )


def settings_(**kw: Any) -> Settings:
    return replace(Settings(max_tenant_indicators=10, capacity_reserve=2), **kw)


def test_steward_load_counts_pages_and_room() -> None:
    client = FakeTenant([rec(str(i), value=f"9.9.9.{i}") for i in range(5)])
    s = Steward(client, settings_(), now=NOW)
    s.load()
    assert (s.view.active_count if s.view else None, s.room, s.list_calls) == (5, 3, 3)  # pages 2+2+1


def test_steward_classify_unchanged_update_replace_and_new() -> None:
    client = FakeTenant(
        [
            rec("1", value="1.1.1.1"),
            rec("2", value="2.2.2.2"),
            mine("3", value="3.3.3.3", action="Allowed"),
            theirs("5", value="5.5.5.5", action="Allowed"),
        ]
    )
    s = Steward(client, settings_(), now=NOW, identities=US)
    out = [
        s.review(pending(1, ind("1.1.1.1"))),
        s.review(pending(2, ind("2.2.2.2", title="new title"))),
        s.review(pending(3, ind("3.3.3.3"))),
        s.review(pending(4, ind("4.4.4.4"))),
        s.review(pending(5, ind("5.5.5.5"))),
    ]
    assert (out[0].status, out[0].id) == (Status.unchanged, "1")
    assert out[1].status is None and "updates indicator 2 (title)" in out[1].notes
    assert out[2].status is None and "replaces Allowed indicator 3" in out[2].notes
    assert out[3].status is None and out[3].notes == ()
    assert out[4].status is None and out[4].notes == (
        "conflicts with Allowed indicator 5 created by analyst@contoso.example, left in place"
        " (for network indicators Allow wins over Warn over Block)",
    )
    tenant = s.report_extra()["tenant"]
    assert tenant["decisions"] == {"new": 2, "unchanged": 1, "update": 1, "replace": 1}
    assert tenant["conflictsLeft"] == 1
    # Everything sent carries the app's mark (no feed), so a later run knows it as its own.
    for o in out[1:]:
        assert o.indicator and o.indicator.externalId == ownership.app_mark(None, "IpAddress", o.value)


def test_steward_after_submit_deletes_only_when_the_id_changed() -> None:
    client = FakeTenant([mine("1", value="1.1.1.1", action="Allowed"), mine("2", value="2.2.2.2", action="Warn")])
    s = Steward(client, settings_(), now=NOW, identities=US)
    a = s.review(pending(1, ind("1.1.1.1")))
    b = s.review(pending(2, ind("2.2.2.2")))
    done = s.after_submit([a.final(Status.submitted, id="10"), b.final(Status.submitted, id="2")])
    assert client.batches == [["1"]]  # single id: plain DELETE
    assert "1" not in client.records and "2" in client.records
    assert done[0].reason and "old indicator 1 deleted" in done[0].reason
    assert done[1].reason and "updated it in place" in done[1].reason
    extra = s.report_extra()["tenant"]
    assert (extra["replaced"], extra["updatedInPlace"], extra["deleted"]) == (2, 1, 1)
    assert (extra["countBefore"], extra["countAfter"]) == (2, 2)  # +10, -1


def test_steward_deletes_nothing_once_the_tenant_turn_is_lost() -> None:
    """The lease check (the tenant lock's) runs before every delete of the job's client: a lost turn stops
    deletes, not the steward's decisions."""
    from shared.pipeline.job import LeaseChecked

    class TurnLost(Exception):
        pass

    class Lost:
        def check(self) -> None:
            raise TurnLost

    client = FakeTenant([mine("1", value="1.1.1.1", action="Allowed")])
    s = Steward(LeaseChecked(client, Lost()), settings_(), now=NOW, identities=US)  # type: ignore[arg-type]
    a = s.review(pending(1, ind("1.1.1.1")))
    with pytest.raises(TurnLost):
        s.after_submit([a.final(Status.submitted, id="10")])
    assert client.batches == [] and "1" in client.records


def test_steward_failed_import_deletes_nothing() -> None:
    client = FakeTenant([mine("1", value="1.1.1.1", action="Allowed")])
    s = Steward(client, settings_(), now=NOW)
    a = s.review(pending(1, ind("1.1.1.1")))
    s.after_submit([a.final(Status.failed, "rejected")])
    assert client.batches == [] and "1" in client.records


@pytest.mark.parametrize("returned", ["10", "1"])
def test_steward_never_deletes_a_foreign_conflict(returned: str) -> None:
    """An analyst's Allowed and a file that Blocks the value: imported, the analyst's record never deleted.

    "10": Defender created a record of its own (upsert key with the action): the conflict is left in place.
    "1": Defender keyed the upsert on type+value and rewrote the analyst's record: the reason says so.
    """
    client = FakeTenant([theirs("1", value="1.1.1.1", action="Allowed"), copied("2", value="2.2.2.2", action="Warn")])
    s = Steward(client, settings_(), now=NOW, identities=US)
    a = s.review(pending(1, ind("1.1.1.1")))
    b = s.review(pending(2, ind("2.2.2.2")))  # our mark, another app's identity: not ours either
    assert a.status is None and b.status is None
    done = s.after_submit([a.final(Status.submitted, id=returned), b.final(Status.submitted, id="20")])
    assert client.batches == [] and set(client.records) == {"1", "2"} and s.delete_calls == 0
    tenant = s.report_extra()["tenant"]
    assert done[1].reason and done[1].reason.startswith("conflicts with Warn indicator 2 created by other-app")
    if returned == "10":
        assert done[0].reason == (
            "conflicts with Allowed indicator 1 created by analyst@contoso.example, left in place"
            " (for network indicators Allow wins over Warn over Block)"
        )
        assert (tenant["conflictsLeft"], tenant["foreignUpdatedInPlace"], tenant["countAfter"]) == (2, 0, 4)
    else:
        assert done[0].reason == "Defender updated indicator 1 in place (it was created by analyst@contoso.example)"
        assert (tenant["conflictsLeft"], tenant["foreignUpdatedInPlace"], tenant["countAfter"]) == (1, 1, 3)
    assert (tenant["replaced"], tenant["deleted"], tenant["decisions"]["new"]) == (0, 0, 2)


def test_steward_foreign_conflict_needs_room_and_says_why_when_skipped() -> None:
    """Under an upsert key holding the action the import adds a record next to the analyst's: it takes room."""
    client = FakeTenant([theirs("1", value="1.1.1.1", action="Allowed"), mine("2", value="2.2.2.2", action="Warn")])
    s = Steward(client, settings_(max_tenant_indicators=4), now=NOW, identities=US)  # room 4 - 2 - 2 = 0
    a = s.review(pending(1, ind("1.1.1.1")))
    b = s.review(pending(2, ind("2.2.2.2")))  # a replacement of our own: no room needed
    assert a.status is Status.skipped and a.reason
    assert a.reason.endswith("left in place (for network indicators Allow wins over Warn over Block); tenant capacity")
    assert b.status is None


def test_steward_update_of_a_foreign_same_action_record_is_never_a_delete() -> None:
    client = FakeTenant([theirs("1", value="1.1.1.1", title="analyst's title")])
    s = Steward(client, settings_(), now=NOW, identities=US)
    a = s.review(pending(1, ind("1.1.1.1")))
    assert a.notes == ("updates indicator 1 (title)",)
    done = s.after_submit([a.final(Status.submitted, id="7")])  # an id other than the analyst's
    assert done[0].reason == "updates indicator 1 (title); indicator 1 left in place (not created by this app)"
    assert client.batches == [] and "1" in client.records
    same = Steward(FakeTenant([theirs("1", value="1.1.1.1", title="x")]), settings_(), now=NOW, identities=US)
    a = same.review(pending(1, ind("1.1.1.1")))
    assert same.after_submit([a.final(Status.submitted, id="1")])[0].reason.endswith("in place (same id)")
    assert same.report_extra()["tenant"]["updatedInPlace"] == 1


@pytest.mark.parametrize(
    ("own", "expected", "note"),
    [
        (None, "mark", None),  # no externalId: the app's mark
        ("ticket-4711", "ticket-4711", None),  # the row's own is kept (the record is then not ours)
        ("ioc-importer:acme:" + "0" * 24, "mark", "imitated"),  # one imitating our mark is replaced
    ],
)
def test_steward_marks_every_indicator_it_sends(own: str | None, expected: str, note: str | None) -> None:
    s = Steward(FakeTenant([]), settings_(), now=NOW)
    o = s.review(pending(1, ind("1.0.0.1", externalId=own)))
    mark = ownership.app_mark(None, "IpAddress", "1.0.0.1")
    assert o.indicator and o.indicator.externalId == (mark if expected == "mark" else expected)
    assert any(note in n for n in o.notes) if note else o.notes == ()


def test_steward_warns_when_no_marked_record_is_created_by_its_identity(caplog: pytest.LogCaptureFixture) -> None:
    """What it looks like when Defender's createdBy is not the token's appid/oid: nothing counts as ours."""
    client = FakeTenant([mine("1", value="1.0.0.1", createdBy="Some Display Name")])
    with caplog.at_level("WARNING", logger="shared.tenant.steward"):
        Steward(client, settings_(), now=NOW, identities=("app-guid",)).load()
    assert "none was created by its identity app-guid" in caplog.text and "Some Display Name" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="shared.tenant.steward"):
        Steward(FakeTenant([mine("1", value="1.0.0.1")]), settings_(), now=NOW, identities=US).load()
        Steward(client, settings_(), now=NOW).load()  # identity unknown: the mark alone, nothing to check
    assert caplog.text == ""


def test_steward_capacity_two_passes_respect_priority_and_input_order() -> None:
    client = FakeTenant([rec(str(i), value=f"9.9.9.{i}") for i in range(5)])  # room 10 - 2 - 5 = 3
    s = Steward(client, settings_(), now=NOW)
    rows = [
        pending(1, ind("1.0.0.1", severity=Severity.Low)),
        pending(2, ind("1.0.0.2", severity=Severity.High)),
        pending(3, ind("9.9.9.1")),  # unchanged: takes no room
        pending(4, ind("1.0.0.4", severity=Severity.Medium)),
        pending(5, ind("1.0.0.5", severity=Severity.Medium)),
        pending(6, ind("1.0.0.6", severity=Severity.High)),
    ]
    for o in rows:
        s.rank(o)
    s.plan()
    out = [s.review(o) for o in rows]
    assert [o.status for o in out] == [Status.skipped, None, Status.unchanged, None, Status.skipped, None]
    assert out[0].reason == CAPACITY_REASON
    assert s.report_extra()["tenant"]["capacitySkipped"] == 2


def test_steward_without_ranking_admits_in_input_order() -> None:
    client = FakeTenant([])
    s = Steward(client, settings_(max_tenant_indicators=4, capacity_reserve=1), now=NOW)
    assert s.fits(3) and not s.fits(4)
    out = [s.review(pending(i, ind(f"1.0.0.{i}"))) for i in range(1, 6)]
    assert [o.status for o in out] == [None, None, None, Status.skipped, Status.skipped]


def test_steward_stamps_the_feed_mark() -> None:
    s = Steward(FakeTenant([]), settings_(), options=InputOptions(feed="f"), now=NOW)
    o = s.review(pending(1, ind("1.0.0.1", externalId="row-own")))
    assert o.indicator and o.indicator.externalId == ownership.feed_mark("f", "IpAddress", "1.0.0.1")
    assert "externalId replaced by the feed's ownership mark" in o.notes


def sync_steward(client: FakeTenant, **kw: Any) -> Steward:
    """A steward for one file of feed `f` in sync mode; `kw`: more of the file's options."""
    options = InputOptions(feed="f", sync=True, **kw)
    return Steward(client, settings_(max_tenant_indicators=100), options=options, now=NOW)


def test_steward_sync_lists_afresh_and_deletes_only_what_that_listing_shows() -> None:
    """CONTRACT.md [mirror] "Feed sync never deletes on a stale view": an indicator deleted behind the view is
    not asked for; the List before the deletes is a second one (after the one that loaded the view)."""
    records = [owned(str(i), f"1.0.0.{i}") for i in range(1, 7)] + [rec("90", value="5.5.5.5")]
    client = FakeTenant(records, page_size=100)
    s = sync_steward(client)
    for i in (1, 2, 3):
        s.review(pending(i, ind(f"1.0.0.{i}")))
    del client.records["5"]  # deleted by hand (or expired) after the view was read
    plan = s.finish(Summary(total=3), file_error=False)
    assert plan and plan.delete_ids == ("4", "6")
    assert client.batches == [["4", "6"]]
    assert set(client.records) == {"1", "2", "3", "90"}
    extra = s.report_extra()["tenant"]
    assert extra["deleted"] == 2 and extra["sync"]["heldBack"] is None and extra["sync"]["stale"] == 2
    assert s.list_calls == 2 and s.delete_calls == 1


class ExpiringTenant(FakeTenant):
    """An indicator expires between the List and the BatchDelete that names it."""

    def __init__(self, records: list[dict[str, Any]], *, expires: str) -> None:
        super().__init__(records, page_size=100)
        self.expires: str | None = expires

    def batch_delete(self, ids: Sequence[str]) -> None:
        if self.expires is not None:
            self.records.pop(self.expires, None)
            self.expires = None
        super().batch_delete(ids)


def test_steward_sync_recovers_a_404_of_batch_delete() -> None:
    records = [owned(str(i), f"1.0.0.{i}") for i in range(1, 7)] + [rec("90", value="5.5.5.5")]
    client = ExpiringTenant(records, expires="5")
    s = sync_steward(client)
    for i in (1, 2, 3):
        s.review(pending(i, ind(f"1.0.0.{i}")))
    plan = s.finish(Summary(total=3), file_error=False)
    assert plan and plan.delete_ids == ("4", "5", "6")
    assert client.batches == [["4", "5", "6"], ["4", "6"]]  # re-listed, retried without the missing id
    assert set(client.records) == {"1", "2", "3", "90"}
    extra = s.report_extra()["tenant"]
    assert extra["deleted"] == 2 and extra["sync"]["heldBack"] is None and extra["sync"]["stale"] == 3
    assert s.list_calls == 3 and s.delete_calls == 2
    assert s.drain is not None and any("gone" in why for why in s.drain.drift)  # a drift signal for the mirror


def test_steward_sync_held_back_and_dry_run() -> None:
    records = [owned(str(i), f"1.0.0.{i}") for i in range(1, 5)]
    client = FakeTenant(records, page_size=100)
    s = sync_steward(client)
    s.review(pending(1, ind("1.0.0.1")))
    plan = s.finish(Summary(total=1), file_error=False)
    assert plan and plan.held_back_reason and "more than half" in plan.held_back_reason
    assert client.batches == [] and s.report_extra()["tenant"]["sync"]["heldBack"] == plan.held_back_reason

    dry = sync_steward(FakeTenant(records, page_size=100), dry_run=True, sync_force=True)
    dry.review(pending(1, ind("1.0.0.1")))
    dry.finish(Summary(total=1), file_error=False)
    extra = dry.report_extra()["tenant"]
    assert (extra["wouldDelete"], extra["deleted"], dry.delete_calls) == (3, 0, 0)


def test_steward_sync_invalid_ratio_uses_the_summary() -> None:
    client = FakeTenant([owned(str(i), f"1.0.0.{i}") for i in range(1, 5)], page_size=100)
    s = sync_steward(client)
    for i in (1, 2, 3):
        s.review(pending(i, ind(f"1.0.0.{i}")))
    plan = s.finish(Summary(total=10, invalid=2), file_error=False)
    assert plan and plan.held_back_reason and "20%" in plan.held_back_reason


def test_steward_delete_error_is_reported_not_raised() -> None:
    client = FakeTenant([owned(str(i), f"1.0.0.{i}") for i in range(1, 5)], page_size=100)
    client.fail_delete = DefenderUnavailable("down")
    s = sync_steward(client, sync_force=True)
    s.review(pending(1, ind("1.0.0.1")))
    s.finish(Summary(total=1), file_error=False)
    assert s.report_extra()["tenant"]["deleteErrors"] == ["deleting 3 indicators failed: down"]
    assert len(client.records) == 4


def test_no_sync_without_feed_or_flag() -> None:
    client = FakeTenant([owned("1", "1.0.0.1")])
    s = Steward(client, settings_(), options=InputOptions(sync=True), now=NOW)  # sync without a feed name
    assert s.finish(Summary(), file_error=False) is None
    s = Steward(client, settings_(), options=InputOptions(feed="f"), now=NOW)  # feed without sync
    assert s.finish(Summary(), file_error=False) is None
    assert client.batches == []


def test_prepare_ranks_only_when_the_input_may_not_fit() -> None:
    rows = [pending(1, ind("1.0.0.1", severity=Severity.Low)), pending(2, ind("1.0.0.2", severity=Severity.High))]
    reopened: list[int] = []

    def reopen() -> list[object]:
        reopened.append(1)
        return [*rows, Summary()]  # anything that is not a pending outcome is passed over

    s = Steward(FakeTenant([]), settings_(max_tenant_indicators=3, capacity_reserve=2), now=NOW)  # room 1
    assert prepare(s, entries_at_most=None, second_pass=reopen).cut is not None and reopened == [1]
    assert [s.review(o).status for o in rows] == [Status.skipped, None]  # High wins the one slot

    s = Steward(FakeTenant([]), settings_(), now=NOW)  # room 8
    assert prepare(s, entries_at_most=2, second_pass=reopen).cut is None and reopened == [1]  # no second pass
