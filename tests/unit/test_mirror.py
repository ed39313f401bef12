"""The tenant mirror (CONTRACT.md "Settings" [mirror], TENANT_REFRESH_MINUTES): its format, when it is refreshed,
the capacity margin of an older view, the drift signals, and — the property the mirror rests on — the steward
deciding exactly the same on a fresh listing and on a fresh mirror of it."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.errors import AccessDenied, DefenderUnavailable
from shared.core.model import Action, Outcome, Severity, Status
from shared.core.options import InputOptions
from shared.core.settings import Settings
from shared.tenant import capacity, ownership
from shared.tenant.drain import DrainTenant, import_drift, reports_cap
from shared.tenant.mirror import Mirror, MirrorHeader, MirrorUnreadable, decode, encode, refresh_reason
from shared.tenant.mirrored import CHANGING, STATE_KEY, MirrorCache, TenantMirror
from shared.tenant.records import TenantRecord, TenantView
from shared.tenant.steward import Steward
from tests.unit.test_quota import NOW, ind, iso  # the same clock and indicator builder as the steward's tests

APP = "app-identity"


def wire(id: str, value: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id,
        "indicatorValue": value,
        "indicatorType": "IpAddress",
        "action": "Block",
        "title": "t",
        "description": "d",
        "severity": "Medium",
        "expirationTime": iso(NOW + timedelta(days=80)),
        "createdBy": APP,
    }
    base.update(kw)
    return base


def submitted(value: str, id: str, **kw: Any) -> Outcome:
    i = ind(value, **kw)
    return Outcome(
        line=1, value=value, type="IpAddress", action=i.action.value, status=Status.submitted, id=id, indicator=i
    )


def mirror_of(view: TenantView, *, listed_at: datetime = NOW, refresh: str | None = None) -> Mirror:
    header = MirrorHeader("default", listed_at, listed_at, view.active_count, refresh)
    return decode(encode(header, view), tenant="default")


# ------------------------------------------------------------------------------------------ the format

texts = st.one_of(st.none(), st.text(max_size=40))
record_dicts = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10**9).map(str),
        "indicatorType": st.sampled_from(["IpAddress", "DomainName", "Url", "FileSha256", "CertificateThumbprint"]),
        "indicatorValue": st.text(min_size=1, max_size=60).filter(str.strip),
        "action": st.sampled_from(["Allowed", "Audit", "Warn", "Block", "BlockAndRemediate"]),
        "severity": st.one_of(st.none(), st.sampled_from(["Informational", "Low", "Medium", "High"])),
        "title": texts,
        "description": texts,
        "rbacGroupNames": st.lists(
            st.text(min_size=1, max_size=10).filter(lambda g: "," not in g and g.strip()), max_size=3
        ),
        "generateAlert": st.booleans(),
        "expirationTime": st.one_of(
            st.none(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(iso)
        ),
        "externalId": texts,
        "createdBy": texts,
        "recommendedActions": texts,
    }
)


@given(st.lists(record_dicts, max_size=20, unique_by=lambda r: r["id"]), st.sets(st.integers(0, 19)))
@settings(max_examples=150, deadline=None)
def test_every_record_reads_back_equal(items: list[dict[str, Any]], inferred_at: set[int]) -> None:
    """Whatever List answered (unicode, lone surrogates, no expiry, groups in any order) comes back field for
    field, with the ids whose owner was inferred."""
    view = TenantView(items, now=datetime(1999, 1, 1, tzinfo=UTC))
    view.owner_inferred = {items[i]["id"] for i in inferred_at if i < len(items)}
    back = mirror_of(view)
    assert back.records == view.records
    assert back.owner_inferred == view.owner_inferred


def test_header_and_expiry() -> None:
    view = TenantView(
        [wire("1", "20.0.0.1"), wire("2", "20.0.0.2", expirationTime=iso(NOW + timedelta(hours=1)))], now=NOW
    )
    m = mirror_of(view, listed_at=NOW - timedelta(minutes=5), refresh="drift")
    assert (m.header.tenant, m.header.count, m.header.refresh) == ("default", 2, "drift")
    assert m.age_seconds(NOW) == 300
    assert m.view(NOW + timedelta(hours=2)).ids == {"1"}  # expired since: Defender deleted it


def lines_of(view: TenantView) -> list[bytes]:
    return list(encode(MirrorHeader("default", NOW, NOW, view.active_count), view))


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda ls: [], "empty"),
        (lambda ls: [b"not json\n", *ls[1:]], "not JSON"),
        (lambda ls: [ls[0].replace(b'"mirror":1', b'"mirror":2'), *ls[1:]], "format"),
        (lambda ls: [ls[0].replace(b'"tenant":"default"', b'"tenant":"other"'), *ls[1:]], "tenant 'other'"),
        (lambda ls: ls[:-1], "holds 1 indicators, its header says 2"),  # cut short
        (lambda ls: [*ls, b"[1, 2]\n"], "not a JSON object"),
        (lambda ls: [ls[0], b'{"id": "3"}\n', *ls[2:]], "not an indicator"),
        (lambda ls: [ls[0].replace(b'"count":2', b'"count":"2"'), *ls[1:]], "lacks"),
    ],
)
def test_what_is_not_a_whole_mirror_is_unreadable(mangle: Any, why: str) -> None:
    view = TenantView([wire("1", "20.0.0.1"), wire("2", "20.0.0.2")], now=NOW)
    with pytest.raises(MirrorUnreadable, match=why):
        decode(mangle(lines_of(view)), tenant="default")


def test_an_error_of_the_byte_stream_is_unreadable() -> None:
    def broken() -> Iterator[bytes]:
        yield lines_of(TenantView([], now=NOW))[0]
        raise ValueError("the mirror blob is not a whole gzip stream")

    with pytest.raises(MirrorUnreadable, match="gzip"):
        decode(broken(), tenant="default")


@pytest.mark.parametrize(
    ("age_minutes", "refresh", "minutes", "reason"),
    [
        (5, None, 60, None),  # fresh enough: no List
        (59, None, 60, None),
        (60, None, 60, "60 minutes old"),
        (200, None, 60, "200 minutes old"),
        (1, None, 0, "TENANT_REFRESH_MINUTES is 0"),  # 0: list at the start of every drain
        (1, "a delete found indicator 7 gone", 60, "a delete found indicator 7 gone"),  # drift signal
    ],
)
def test_refresh_reason(age_minutes: int, refresh: str | None, minutes: float, reason: str | None) -> None:
    m = mirror_of(TenantView([], now=NOW), listed_at=NOW - timedelta(minutes=age_minutes), refresh=refresh)
    got = refresh_reason(m, None, now=NOW, refresh_minutes=minutes)
    assert (got is None) if reason is None else (got is not None and reason in got)


def test_no_mirror_or_an_unusable_one_is_listed() -> None:
    assert refresh_reason(None, None, now=NOW, refresh_minutes=60) == "there is no mirror yet"
    assert "unreadable (x)" in str(refresh_reason(None, "it is unreadable (x)", now=NOW, refresh_minutes=60))


# ------------------------------------------------------------------------------------------ capacity margin


@pytest.mark.parametrize(
    ("age_seconds", "margin"),
    [(0, 0), (5, 0), (7.2, 1), (360, 50), (3600, 500), (3600 + 600, 583), (-3, 0)],
)
def test_analyst_margin_is_a_portal_import_an_hour(age_seconds: float, margin: int) -> None:
    assert capacity.analyst_margin(age_seconds) == margin


@given(
    st.integers(0, 15_000), st.integers(0, 15_000), st.integers(0, 2000), st.floats(0, 7200), st.booleans(),
    st.lists(st.integers(0, 800), max_size=5),
)  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_capacity_is_never_planned_past_the_cap(
    cap: int, active: int, reserve: int, age: float, refreshed: bool, taken: list[int]
) -> None:
    """Whatever the view's age and what earlier jobs of the turn took: what the view counts, plus all the room
    given, plus the reserve and the margin, stays within the cap."""
    view = TenantView([wire(str(i), f"20.0.{i // 250}.{i % 250}") for i in range(min(active, 300))], now=NOW)
    t = DrainTenant(view, max_tenant_indicators=cap, capacity_reserve=reserve, listed_at=NOW - timedelta(seconds=age),
                    refreshed=refreshed, clock=lambda: NOW)  # fmt: skip
    given_room = 0
    for want in taken:
        room = t.room_left()
        got = min(room, want)
        given_room += got
        t.took(got)
    assert t.margin() == (0 if refreshed else capacity.analyst_margin(t.age_seconds()))
    assert view.active_count + given_room + t.room_left() <= max(view.active_count, cap - reserve - t.margin())


def test_a_refreshed_view_keeps_no_margin_an_older_one_does() -> None:
    view = TenantView([], now=NOW)
    listed = NOW - timedelta(minutes=30)
    fresh = DrainTenant(view, max_tenant_indicators=1000, capacity_reserve=100, listed_at=listed, refreshed=True,
                        clock=lambda: NOW)  # fmt: skip
    older = DrainTenant(view, max_tenant_indicators=1000, capacity_reserve=100, listed_at=listed, refreshed=False,
                        clock=lambda: NOW)  # fmt: skip
    assert (fresh.room_left(), older.room_left()) == (900, 650)
    assert older.report() == {"viewAgeSeconds": 1800, "refreshed": False, "refreshReason": None, "analystMargin": 250}


# ------------------------------------------------------------------------------------------ drift signals


@pytest.mark.parametrize(
    ("reason", "cap"),
    [
        ("Tenant indicator limit reached: 15000 of 15000 active indicators in use", True),  # the emulator's
        ("Defender rejected it: InvalidInput: the maximum number of indicators was exceeded", True),
        ("Quota exceeded", True),
        ("You have reached the tenant cap", True),
        ("Invalid hash value", False),
        ("Limit of 500 per request", False),  # a limit, but nothing reached
        (None, False),
    ],
)
def test_reports_cap(reason: str | None, cap: bool) -> None:
    assert reports_cap(reason) is cap


def test_import_drift() -> None:
    view = TenantView([wire("1", "20.0.0.1"), wire("2", "20.0.0.2", action="Audit")], now=NOW)
    assert import_drift(view, submitted("20.0.0.1", "1")) is None  # the id the mirror holds
    assert import_drift(view, submitted("20.0.0.9", "77")) is None  # a new value: any new id
    assert import_drift(view, submitted("20.0.0.2", "78")) is None  # Block next to an Audit: a new record
    assert "holds as 1" in str(import_drift(view, submitted("20.0.0.1", "79")))  # made again behind the mirror
    assert "holds for 20.0.0.2" in str(import_drift(view, submitted("20.0.0.8", "2")))  # an id of another value


def test_the_view_follows_imports_keeping_owners_it_knows() -> None:
    view = TenantView([wire("1", "20.0.0.1", createdBy="analyst")], now=NOW)
    t = DrainTenant(view, max_tenant_indicators=100, capacity_reserve=0)
    t.imported([submitted("20.0.0.1", "1", title="new"), submitted("20.0.0.5", "5")], APP)
    assert view.by_id("1").createdBy == "analyst" and view.by_id("1").title == "new"  # type: ignore[union-attr]
    assert view.by_id("5").createdBy == APP  # type: ignore[union-attr]
    assert view.owner_inferred == {"5"} and t.changed and t.drift == []


def test_a_cap_answer_while_the_view_has_room_is_drift_and_ends_the_turns_room() -> None:
    t = DrainTenant(TenantView([wire("1", "20.0.0.1")], now=NOW), max_tenant_indicators=100, capacity_reserve=0)
    o = Outcome(line=1, value="20.0.0.9", type="IpAddress", action="Block", status=None, indicator=ind("20.0.0.9"))
    t.imported([o.final(Status.failed, "Tenant indicator limit reached: 100 of 100 active indicators in use")], APP)
    assert t.room_left() == 0 and "cap is reached while the mirror counts 1 of 100" in t.drift[0]


def test_deletes_and_failed_imports() -> None:
    t = DrainTenant(TenantView([wire("1", "20.0.0.1"), wire("2", "20.0.0.2")], now=NOW), max_tenant_indicators=9,
                    capacity_reserve=0)  # fmt: skip
    t.deleted(["1"])
    assert t.view.ids == {"2"} and t.drift == []
    t.found_gone(["2"])
    assert t.view.ids == set() and "found indicator 2 gone" in t.drift[0]
    t.import_failed(AccessDenied("403"))  # nothing was stored
    assert len(t.drift) == 1
    t.import_failed(DefenderUnavailable("503 after 6 attempts"))  # it may have been
    assert "what it stored is unknown" in t.drift[1]


def test_before_change_tells_the_mirror_once() -> None:
    told: list[int] = []
    t = DrainTenant(TenantView([], now=NOW), max_tenant_indicators=9, capacity_reserve=0,
                    on_change=lambda: told.append(1))  # fmt: skip
    t.before_change()
    t.before_change()
    assert told == [1] and t.changing


# ------------------------------------------------------------------------------------------ one turn


class MemoryStore:
    """The mirror's blob in memory, with ETags like the real one (`storage.mirror.MirrorBlob`)."""

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.metadata: dict[str, str] = {}
        self.etag = 0
        self.writes = 0
        self.reads = 0
        self.downloads = 0
        self.refuse_writes = False

    def read(self, known_etag: str | None = None) -> tuple[str, Mapping[str, str], Iterable[bytes] | None] | None:
        if self.data is None:
            return None
        self.reads += 1
        if known_etag == str(self.etag):
            return known_etag, {}, None  # 304: not downloaded
        self.downloads += 1
        return str(self.etag), dict(self.metadata), gzip.decompress(self.data).splitlines(keepends=True)

    def mark(self, etag: str, metadata: Mapping[str, str]) -> str | None:
        if self.data is None or etag != str(self.etag):
            return None
        self.metadata = dict(metadata)
        self.etag += 1
        return str(self.etag)

    def write(self, lines: Iterable[bytes], *, etag: str | None, metadata: Mapping[str, str]) -> str | None:
        if self.refuse_writes or (etag is None) != (self.data is None) or (etag is not None and etag != str(self.etag)):
            return None
        self.data = gzip.compress(b"".join(lines))
        self.metadata = dict(metadata)
        self.etag += 1
        self.writes += 1
        return str(self.etag)

    def forget(self) -> None:
        self.data = None
        self.metadata = {}
        self.etag += 1


class Lister:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.list_calls = 0

    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Iterator[dict[str, Any]]:
        self.list_calls += 1
        yield from self.records


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def turn(store: MemoryStore, lister: Lister, clock: Clock, minutes: float = 60,
         cache: MirrorCache | None = None) -> TenantMirror:  # fmt: skip
    return TenantMirror(lister, store, tenant="default", settings=Settings(tenant_refresh_minutes=minutes),
                        clock=clock, cache=cache)  # fmt: skip


def test_a_turn_lists_once_and_the_next_ones_read_the_mirror_until_it_is_old() -> None:
    store, lister, clock = MemoryStore(), Lister([wire("1", "20.0.0.1")]), Clock()
    first = turn(store, lister, clock)
    t = first.open()
    assert (t.refreshed, t.refresh_reason, lister.list_calls) == (True, "there is no mirror yet", 1)
    t.before_change()  # no mirror to mark yet
    t.imported([submitted("20.0.0.2", "2")], APP)
    first.close(clean=True, lease_held=True)
    assert store.writes == 1 and store.metadata == {STATE_KEY: "clean"}

    clock.now += timedelta(minutes=30)
    second = turn(store, lister, clock)
    t2 = second.open()
    assert (t2.refreshed, lister.list_calls, t2.view.ids) == (False, 1, {"1", "2"})  # what the first one imported
    assert t2.age_seconds() == 1800 and t2.margin() == 250
    second.close(clean=True, lease_held=True)
    assert store.writes == 1  # nothing changed: nothing written

    clock.now += timedelta(minutes=31)
    third = turn(store, lister, clock)
    assert third.open().refreshed and lister.list_calls == 2  # older than TENANT_REFRESH_MINUTES


def test_a_process_reuses_the_mirror_it_wrote_while_the_blob_keeps_its_etag() -> None:
    """The next turn in the same process reads the blob conditionally: unchanged, nothing is downloaded or
    decoded; written by another instance (a new ETag), it is read again."""
    store, lister, clock, cache = MemoryStore(), Lister([wire("1", "20.0.0.1")]), Clock(), MirrorCache()
    first = turn(store, lister, clock, cache=cache)
    first.open().imported([submitted("20.0.0.2", "2")], APP)
    first.close(clean=True, lease_held=True)
    written_bytes = store.data
    second = turn(store, lister, clock, cache=cache)
    t = second.open()
    assert (t.refreshed, t.view.ids, store.downloads) == (False, {"1", "2"}, 0)
    t.imported([submitted("20.0.0.3", "3")], APP)
    second.close(clean=True, lease_held=True)
    assert store.data != written_bytes
    assert {r.id for r in mirror_of_store(store).records} == {"1", "2", "3"}
    other = turn(store, lister, clock)  # another instance: no cache, downloads it
    assert other.open().view.ids == {"1", "2", "3"} and store.downloads == 1
    store.etag += 1  # that instance wrote it since
    assert turn(store, lister, clock, cache=cache).open().view.ids == {"1", "2", "3"} and store.downloads == 2


def mirror_of_store(store: MemoryStore) -> Mirror:
    assert store.data is not None
    return decode(gzip.decompress(store.data).splitlines(keepends=True), tenant="default")


def test_unchanged_records_are_written_with_the_lines_they_were_read_from() -> None:
    view = TenantView([wire("1", "20.0.0.1"), wire("2", "20.0.0.2")], now=NOW)
    read_back = mirror_of(view)
    later = read_back.view(NOW)
    later.add(TenantRecord.from_wire(wire("2", "20.0.0.2", title="changed")))
    header = MirrorHeader("default", NOW, NOW, 2)
    kept: dict[str, Any] = {}
    lines = list(encode(header, later, reuse=read_back.lines, keep=kept))
    assert lines[1] is read_back.lines["1"][2]  # reused as is
    assert lines[2] is not read_back.lines["2"][2] and b'"title":"changed"' in lines[2]
    assert lines == list(encode(header, later))  # the same bytes as encoding anew
    assert set(kept) == {"1", "2"}


def test_refresh_minutes_zero_lists_every_turn() -> None:
    store, lister, clock = MemoryStore(), Lister([]), Clock()
    for _ in range(3):
        m = turn(store, lister, clock, minutes=0)
        m.open()
        m.close(clean=True, lease_held=True)
    assert lister.list_calls == 3


def test_a_drift_signal_makes_the_next_turn_list() -> None:
    store, lister, clock = MemoryStore(), Lister([wire("1", "20.0.0.1")]), Clock()
    first = turn(store, lister, clock)
    first.open().found_gone(["1"])
    first.close(clean=True, lease_held=True)
    second = turn(store, lister, clock)
    t = second.open()
    assert t.refreshed and "found indicator 1 gone" in str(t.refresh_reason) and lister.list_calls == 2
    second.close(clean=True, lease_held=True)
    third = turn(store, lister, clock)
    assert not third.open().refreshed  # the listing cleared it


def test_a_turn_that_dies_after_changing_the_tenant_leaves_the_mirror_marked() -> None:
    store, lister, clock = MemoryStore(), Lister([wire("1", "20.0.0.1")]), Clock()
    m = turn(store, lister, clock)
    m.open()
    m.close(clean=True, lease_held=True)
    dying = turn(store, lister, clock)
    dying.open().before_change()
    assert store.metadata == {STATE_KEY: CHANGING}
    dying.close(clean=False, lease_held=True)  # a crash: the mark stays
    assert store.metadata == {STATE_KEY: CHANGING}
    t = turn(store, lister, clock).open()
    assert t.refreshed and "ended before it wrote the mirror" in str(t.refresh_reason)


def test_a_lost_lease_writes_nothing() -> None:
    store, lister, clock = MemoryStore(), Lister([]), Clock()
    m = turn(store, lister, clock)
    m.open()
    m.close(clean=True, lease_held=False)
    assert store.data is None


def test_an_etag_conflict_drops_the_mirror_so_the_next_turn_lists() -> None:
    store, lister, clock = MemoryStore(), Lister([wire("1", "20.0.0.1")]), Clock()
    m = turn(store, lister, clock)
    m.open()
    m.close(clean=True, lease_held=True)
    ours = turn(store, lister, clock)
    ours.open().imported([submitted("20.0.0.2", "2")], APP)
    store.etag += 1  # someone wrote the mirror meanwhile
    ours.close(clean=True, lease_held=True)
    assert store.data is None
    assert turn(store, lister, clock).open().refresh_reason == "there is no mirror yet"


def test_an_unreadable_mirror_is_listed() -> None:
    store, lister, clock = MemoryStore(), Lister([]), Clock()
    store.data = gzip.compress(b"garbage\n")
    t = turn(store, lister, clock).open()
    assert t.refreshed and "unreadable" in str(t.refresh_reason) and lister.list_calls == 1


# ------------------------------------------------------------------------------------------ the property


class Tenant:
    """A scripted tenant client for the steward (List only: the decisions are compared, nothing is sent)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.list_calls = 0
        self.delete_calls = 0

    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Iterator[dict[str, Any]]:
        self.list_calls += 1
        yield from self.records

    def batch_delete(self, ids: Sequence[str]) -> None:
        raise AssertionError("nothing is deleted here")

    def delete(self, id: str) -> bool:
        raise AssertionError("nothing is deleted here")


VALUES = [f"20.0.0.{i}" for i in range(8)]
ACTIONS = ["Audit", "Block", "Allowed", "Warn"]
OWNERS = [APP, "analyst@contoso.example", None]
tenant_records = st.lists(
    st.fixed_dictionaries(
        {
            "indicatorValue": st.sampled_from(VALUES),
            "action": st.sampled_from(ACTIONS),
            "severity": st.sampled_from(["Medium", "High", None]),
            "title": st.sampled_from(["t", "other"]),
            "createdBy": st.sampled_from(OWNERS),
            "marked": st.sampled_from([None, "f", "g"]),  # the app's mark, for feed f or g, or none
            "days": st.sampled_from([None, 10, 60, 80, 90]),  # expiry, days from now
        }
    ),
    max_size=12,
)
inputs = st.lists(
    st.fixed_dictionaries(
        {
            "value": st.sampled_from(VALUES),
            "action": st.sampled_from(ACTIONS),
            "severity": st.sampled_from([Severity.Medium, Severity.High]),
            "title": st.sampled_from(["t", "other"]),
        }
    ),
    min_size=1,
    max_size=10,
)


def to_wire(i: int, r: dict[str, Any]) -> dict[str, Any]:
    out = wire(str(i + 1), r["indicatorValue"], action=r["action"], severity=r["severity"], title=r["title"],
               createdBy=r["createdBy"])  # fmt: skip
    out["expirationTime"] = iso(NOW + timedelta(days=r["days"])) if r["days"] is not None else None
    if r["marked"] is not None:
        out["externalId"] = ownership.app_mark(r["marked"], "IpAddress", r["indicatorValue"])
    return out


@given(tenant_records, inputs, st.sampled_from([None, "f"]), st.integers(0, 12))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_decisions_are_the_same_on_a_fresh_listing_and_on_a_fresh_mirror(
    tenant: list[dict[str, Any]], rows: list[dict[str, Any]], feed: str | None, room: int
) -> None:
    """Every outcome (status, id, reason, notes, the indicator that would be sent) and the report's decisions are
    identical whether the steward lists the tenant itself or decides on the mirror written from that listing."""
    records = [to_wire(i, r) for i, r in enumerate(tenant)]
    s = replace(Settings(), max_tenant_indicators=len(records) + room, capacity_reserve=0)
    options = InputOptions(feed=feed)

    def run(drain: DrainTenant | None) -> tuple[list[Outcome], dict[str, Any]]:
        steward = Steward(Tenant(records), s, options=options, now=NOW, identities=[APP], drain=drain)
        out = []
        for n, r in enumerate(rows):
            i = ind(r["value"], action=Action(r["action"]), severity=r["severity"], title=r["title"])
            out.append(
                steward.review(
                    Outcome(
                        line=n + 1,
                        value=i.indicatorValue,
                        type="IpAddress",
                        action=i.action.value,
                        status=None,
                        indicator=i,
                    )
                )
            )
        tenant_section = steward.report_extra()["tenant"]
        for key in ("viewAgeSeconds", "refreshed", "refreshReason", "analystMargin"):
            tenant_section.pop(key)
        return out, tenant_section

    listed = run(None)
    mirror = mirror_of(TenantView(Tenant(records).list_indicators(), now=NOW))
    from_mirror = run(DrainTenant(mirror.view(NOW), max_tenant_indicators=s.max_tenant_indicators,
                                  capacity_reserve=0, listed_at=NOW, refreshed=False, clock=lambda: NOW))  # fmt: skip
    assert from_mirror == listed
