"""Quota stewardship end to end (issue 6): process_stream + Steward + the real Defender client against the
Defender emulator on loopback. Pins CONTRACT.md `unchanged`, `skipped` "tenant capacity", `listCalls`,
`deleteCalls`, `MAX_TENANT_INDICATORS`, `CAPACITY_RESERVE`, `EXPIRATION_DAYS_BY_TYPE`, blob metadata
`feed`/`sync`/`sync_force`, and defender-api.md §3.2 (replace without a gap), §5 (BatchDelete 404)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from localdev.defender_emulator import DefenderEmulator
from localdev.tokens import DEFAULT_SYSTEM_CLIENT_ID
from shared.checks.validate import validate
from shared.core.model import (
    FIELD_ACTION,
    FIELD_EXPIRATION,
    FIELD_SEVERITY,
    FIELD_VALUE,
    Action,
    IndicatorType,
    RawRow,
    Summary,
)
from shared.core.options import NO_OPTIONS, InputOptions
from shared.core.settings import Settings
from shared.defender import make_client
from shared.defender.client import DefenderClient
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from shared.tenant import ownership, records
from shared.tenant.steward import CAPACITY_REASON, Steward, prepare
from tests.support.stack import mint_token, public_ip

pytestmark = pytest.mark.integration

APP = DEFAULT_SYSTEM_CLIENT_ID  # the app's identity: the emulator writes it into `createdBy`
ANALYST = "analyst@contoso.example"


class MintedCredential:
    """A token credential that mints the identity emulator's tokens directly (no azure-identity round trip)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(mint_token(key=self.key), int(time.time()) + 3600)


@dataclass
class Run:
    entries: list[dict[str, Any]]
    report: dict[str, Any]
    summary: Summary
    steward: Steward

    @property
    def tenant(self) -> dict[str, Any]:
        return self.report["tenant"]

    def statuses(self) -> list[str]:
        return [e["status"] for e in self.entries]


def rows(*values: str | dict[str, str]) -> list[dict[str, str]]:
    return [{FIELD_VALUE: v} if isinstance(v, str) else v for v in values]


def run_file(
    client: DefenderClient,
    given: Settings | tuple[Settings, InputOptions],
    fields: list[dict[str, str]],
    *,
    before_finish: Any = None,
    now: datetime | None = None,
) -> Run:
    """What the function app does for one input under the tenant lock, with the steward's hook points:
    load → (rank pass when the input may not fit) → process_stream(review/after_submit/finish).
    `given`: the app settings, or those and the input's options (`feed_input`)."""
    settings, options = given if isinstance(given, tuple) else (given, NO_OPTIONS)
    fixed = now is not None
    now = (now or datetime.now(UTC)).replace(microsecond=0)  # the same clock for both validation passes
    raw = [RawRow(i + 1, f) for i, f in enumerate(fields)]

    def reader(_stream: Any, _name: str) -> Iterator[RawRow]:
        return iter(raw)

    steward = Steward(client, settings, options=options, identities=[APP], now=now if fixed else None)
    prepare(
        steward,
        entries_at_most=len(raw),
        second_pass=lambda: validate(iter(raw), settings, options=options, source="feed.txt", now=now),
    )
    if before_finish is not None:
        original = steward.finish

        def finish(summary: Summary, *, file_error: bool) -> Any:
            before_finish()
            return original(summary, file_error=file_error)

        steward.finish = finish  # type: ignore[method-assign]
    jout, cout = io.StringIO(), io.StringIO()
    writer = ReportWriter(jout, cout, source={"name": "feed.txt"}, started_at=now, dry_run=steward.dry_run)
    result = process_stream(
        io.BytesIO(b""),
        "feed.txt",
        settings=settings,
        options=options,
        submitter=client,
        reports=writer,
        source="feed.txt",
        now=now,
        reader=reader,
        steward=steward,
    )
    report = json.loads(jout.getvalue())
    return Run(report["indicators"], report, result.summary, steward)


# How the emulator pages a List (fidelity-review 1.27): `$top` honoured in full; pages capped at 1,000 below
# `$top` with `@odata.nextLink`; capped without a link (only `$skip` paging until an empty page sees it all).
PAGING_MODES = {
    "full": {},
    "capped-nextlink": {"max_page": 1000, "next_link": True},
    "capped-skip": {"max_page": 1000, "next_link": False},
}


@pytest.fixture(params=list(PAGING_MODES))
def tenant(defender: DefenderEmulator, request: pytest.FixtureRequest) -> DefenderEmulator:
    defender.admin.configure(**PAGING_MODES[request.param])
    return defender


def make_settings(defender: DefenderEmulator, **kw: Any) -> Settings:
    return replace(Settings(), defender_api_url=defender.base_url, **kw)


@pytest.fixture
def client_for(defender: DefenderEmulator) -> Iterator[Any]:
    made: list[DefenderClient] = []

    def build(given: Settings | tuple[Settings, InputOptions]) -> DefenderClient:
        settings = given[0] if isinstance(given, tuple) else given
        c = make_client(settings, credential=MintedCredential(defender.signing_key))
        made.append(c)
        return c

    yield build
    for c in made:
        c.close()


def calls_to(defender: DefenderEmulator, path: str) -> list[dict[str, Any]]:
    return defender.admin.calls(path=path)


def store(defender: DefenderEmulator) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["indicatorType"], r["indicatorValue"]): r for r in defender.admin.indicators()}


# ------------------------------------------------------------------------------------------ capacity


def test_cap_reached_in_the_middle_of_a_file_keeps_priority_order(tenant: DefenderEmulator, client_for: Any) -> None:
    """10 analyst indicators, cap 30, reserve 5: room for 15 of 25 new rows, best first, rest `skipped`."""
    tenant.admin.configure(tenant_cap=30)
    tenant.admin.seed(*({"indicatorValue": public_ip(900 + i), "indicatorType": "IpAddress"} for i in range(10)))
    s = make_settings(tenant, max_tenant_indicators=30, capacity_reserve=5)
    fields = []
    for i in range(25):
        sev = ["Low", "High", "Medium", "Informational", "High"][i % 5]
        act = ["Audit", "Block", "Warn", "Block", "Allowed"][i % 5]
        fields.append({FIELD_VALUE: public_ip(i), FIELD_SEVERITY: sev, FIELD_ACTION: act})
    run = run_file(client_for(s), s, fields)

    assert run.summary.submitted == 15 and run.summary.skipped == 10 and run.summary.failed == 0
    skipped = [e for e in run.entries if e["status"] == "skipped"]
    assert {e["reason"] for e in skipped} == {CAPACITY_REASON}
    # Priority: High (10 rows: Block first, then Allowed), then Medium/Warn (5): exactly 15 admitted.
    admitted_sev = [fields[e["line"] - 1][FIELD_SEVERITY] for e in run.entries if e["status"] == "submitted"]
    assert sorted(admitted_sev) == ["High"] * 10 + ["Medium"] * 5
    assert [e["line"] for e in run.entries] == list(range(1, 26))  # report stays in input order
    assert run.tenant["countBefore"] == 10 and run.tenant["countAfter"] == 25
    assert run.tenant["roomBefore"] == 15 and run.tenant["roomLeft"] == 0 and run.tenant["capacitySkipped"] == 10
    assert len(tenant.admin.indicators()) == 25
    assert run.summary.listCalls == 2 and run.summary.apiCalls == 1


def test_a_tenant_listed_in_capped_pages_is_counted_fully(tenant: DefenderEmulator, client_for: Any) -> None:
    """3,500 analyst indicators served 1,000 a page: the steward counts all of them and never plans past the cap."""
    tenant.admin.configure(tenant_cap=5000)
    tenant.admin.seed(*({"indicatorValue": f"analyst-{i}.example", "indicatorType": "DomainName"} for i in range(3500)))
    s = make_settings(tenant, max_tenant_indicators=5000, capacity_reserve=0)
    run = run_file(client_for(s), s, rows(*(public_ip(i) for i in range(2000))))
    assert run.tenant["countBefore"] == 3500 and run.tenant["roomBefore"] == 1500
    assert run.summary.submitted == 1500 and run.summary.skipped == 500 and run.summary.failed == 0
    assert len(tenant.admin.indicators()) == 5000
    # Capped: 1,000 + 1,000 + 1,000 + 500 (the second page shows the cap, so 500 ends it); full: 3,500 + empty.
    assert run.summary.listCalls == (4 if tenant.options.max_page else 2)


# ------------------------------------------------------------------------------------------ delta


def test_resubmitting_the_same_set_gives_only_unchanged_and_no_import_call(
    tenant: DefenderEmulator, client_for: Any
) -> None:
    s = make_settings(tenant)
    fields = rows(
        public_ip(1),
        "evil.example.com",
        "http://evil.example.com/x",
        "a" * 64,
        {FIELD_VALUE: public_ip(2), FIELD_ACTION: "Audit"},
    )
    first = run_file(client_for(s), s, fields)
    assert first.statuses() == ["submitted"] * 5
    ids = [e["id"] for e in first.entries]
    imports = len(calls_to(tenant, "/api/indicators/import"))

    second = run_file(client_for(s), s, fields)
    assert second.statuses() == ["unchanged"] * 5
    assert [e["id"] for e in second.entries] == ids
    assert second.summary.apiCalls == 0 and second.summary.unchanged == 5
    assert len(calls_to(tenant, "/api/indicators/import")) == imports
    assert second.tenant["decisions"] == {"new": 0, "unchanged": 5, "update": 0, "replace": 0}


def test_changed_severity_is_an_update_of_the_same_record(tenant: DefenderEmulator, client_for: Any) -> None:
    s = make_settings(tenant)
    first = run_file(client_for(s), s, rows(public_ip(1), public_ip(2)))
    second = run_file(client_for(s), s, rows({FIELD_VALUE: public_ip(1), FIELD_SEVERITY: "High"}, public_ip(2)))
    assert second.statuses() == ["submitted", "unchanged"]
    assert second.entries[0]["id"] == first.entries[0]["id"]
    assert "updates indicator" in second.entries[0]["reason"] and "severity" in second.entries[0]["reason"]
    assert store(tenant)[("IpAddress", public_ip(1))]["severity"] == "High"
    assert second.summary.deleteCalls == 0


@pytest.mark.parametrize("upsert_key", ["type_value_action", "type_value"])
def test_changed_action_replaces_without_a_gap(tenant: DefenderEmulator, client_for: Any, upsert_key: str) -> None:
    """Import first; delete the old record only if the import returned a different id (defender-api.md §3.2)."""
    tenant.admin.configure(upsert_key=upsert_key)
    s = make_settings(tenant)
    v = "stale-allow.example.com"
    first = run_file(client_for(s), s, rows({FIELD_VALUE: v, FIELD_ACTION: "Allowed"}))
    old_id = first.entries[0]["id"]
    second = run_file(client_for(s), s, rows({FIELD_VALUE: v, FIELD_ACTION: "Block"}))
    entry = second.entries[0]
    assert entry["status"] == "submitted" and "replaces Allowed indicator" in entry["reason"]
    held = [r for r in tenant.admin.indicators() if r["indicatorValue"] == v]
    assert [r["action"] for r in held] == ["Block"]  # the stale Allow is gone either way
    paths = [c["path"] for c in tenant.admin.calls() if not c["path"].startswith("/api/indicators?")]
    last_import = max(i for i, p in enumerate(paths) if p == "/api/indicators/import")
    if upsert_key == "type_value_action":
        assert entry["id"] != old_id and held[0]["id"] == entry["id"]
        assert f"old indicator {old_id} deleted" in entry["reason"]
        deletes = [i for i, p in enumerate(paths) if p.endswith(f"/{old_id}") or p.endswith("BatchDelete")]
        assert deletes and min(deletes) > last_import  # the new one existed before the old one went
        assert second.summary.deleteCalls == 1
    else:
        assert entry["id"] == old_id and "updated it in place" in entry["reason"]
        assert second.summary.deleteCalls == 0  # deleting would have deleted the new one


def test_analyst_record_with_identical_fields_counts_as_unchanged(tenant: DefenderEmulator, client_for: Any) -> None:
    tenant.admin.seed(
        {"indicatorValue": "b" * 64, "indicatorType": "FileSha256", "action": "Block", "title": "Imported indicator",
         "description": "Imported from feed.txt", "severity": "Medium", "expirationTime": None}
    )  # fmt: skip
    s = make_settings(tenant, default_action=Action.Block, default_expiration_days=0)
    run = run_file(client_for(s), s, rows("B" * 64))
    assert run.statuses() == ["unchanged"] and run.summary.apiCalls == 0


# ------------------------------------------------------------------------------------------ feed sync


def feed_settings(defender: DefenderEmulator, feed: str, **kw: Any) -> tuple[Settings, InputOptions]:
    """The app settings and the options of one file of `feed` in sync mode (its blob metadata)."""
    return make_settings(defender), InputOptions.parse({"feed": feed, "sync": "true", **kw})


def test_sync_deletes_only_this_feeds_own_stale_indicators(tenant: DefenderEmulator, client_for: Any) -> None:
    tenant.admin.seed({"indicatorValue": public_ip(50), "indicatorType": "IpAddress"})  # an analyst's
    a = feed_settings(tenant, "feed-a")
    b = feed_settings(tenant, "feed-b")
    run_file(client_for(a), a, rows(*(public_ip(i) for i in range(1, 7))))
    run_file(client_for(b), b, rows(public_ip(20), public_ip(21)))
    marks = {r["indicatorValue"]: r.get("externalId") for r in tenant.admin.indicators()}
    assert ownership.mark_feed(marks[public_ip(1)]) == "feed-a"
    assert ownership.mark_feed(marks[public_ip(20)]) == "feed-b"

    again = run_file(client_for(a), a, rows(*(public_ip(i) for i in range(1, 6))))  # public_ip(6) dropped
    assert again.statuses() == ["unchanged"] * 5
    values = {r["indicatorValue"] for r in tenant.admin.indicators()}
    assert public_ip(6) not in values
    assert {public_ip(20), public_ip(21), public_ip(50)} <= values  # feed B's and the analyst's intact
    assert len(values) == 5 + 2 + 1
    assert again.summary.deleteCalls == 1 and again.tenant["deleted"] == 1
    assert again.tenant["sync"]["heldBack"] is None and again.tenant["countAfter"] == 8


def test_sync_holds_back_mass_deletes_unless_forced(tenant: DefenderEmulator, client_for: Any) -> None:
    a = feed_settings(tenant, "feed-a")
    run_file(client_for(a), a, rows(*(public_ip(i) for i in range(1, 5))))
    held = run_file(client_for(a), a, rows(public_ip(1)))  # would delete 3 of 4
    assert "more than half" in held.tenant["sync"]["heldBack"]
    assert len(tenant.admin.indicators()) == 4 and held.summary.deleteCalls == 0

    forced = feed_settings(tenant, "feed-a", sync_force="true")
    done = run_file(client_for(forced), forced, rows(public_ip(1)))
    assert done.tenant["sync"]["heldBack"] is None and done.tenant["deleted"] == 3
    assert [r["indicatorValue"] for r in tenant.admin.indicators()] == [public_ip(1)]


def test_sync_holds_back_when_too_many_entries_are_invalid(tenant: DefenderEmulator, client_for: Any) -> None:
    a = feed_settings(tenant, "feed-a")
    run_file(client_for(a), a, rows(*(public_ip(i) for i in range(1, 5))))
    bad = run_file(client_for(a), a, rows(*(public_ip(i) for i in range(1, 4)), "10.0.0.1", "not a thing!"))
    assert bad.summary.invalid == 2
    assert "invalid" in bad.tenant["sync"]["heldBack"] and len(tenant.admin.indicators()) == 4


def test_sync_lists_afresh_so_an_indicator_gone_behind_the_view_is_not_deleted(
    tenant: DefenderEmulator, client_for: Any
) -> None:
    """CONTRACT.md [mirror]: feed sync lists afresh before it deletes; an indicator deleted by hand after the
    view was read is not in that listing, so BatchDelete names only what is there (no 404)."""
    a = feed_settings(tenant, "feed-a")
    first = run_file(client_for(a), a, rows(*(public_ip(i) for i in range(1, 11))))
    gone_id = first.entries[9]["id"]
    other = client_for(a)
    again = run_file(
        client_for(a), a, rows(*(public_ip(i) for i in range(1, 8))), before_finish=lambda: other.delete(gone_id)
    )
    assert [c["status"] for c in calls_to(tenant, "/api/indicators/BatchDelete")] == [204]
    assert {r["indicatorValue"] for r in tenant.admin.indicators()} == {public_ip(i) for i in range(1, 8)}
    assert again.tenant["deleted"] == 2 and again.tenant["deleteErrors"] == [] and again.tenant["sync"]["stale"] == 2
    assert again.summary.deleteCalls == 1


class DeletesBehind:
    """The client of a run, with someone deleting one indicator by hand just before its BatchDelete (after the
    List that sync makes before deleting)."""

    def __init__(self, client: DefenderClient, other: DefenderClient, gone_id: str) -> None:
        self._client = client
        self._other = other
        self._gone: str | None = gone_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_delete(self, ids: Any) -> Any:
        if self._gone is not None:
            self._other.delete(self._gone)
            self._gone = None
        return self._client.batch_delete(ids)


def test_batch_delete_404_is_recovered_by_relisting(tenant: DefenderEmulator, client_for: Any) -> None:
    a = feed_settings(tenant, "feed-a")
    first = run_file(client_for(a), a, rows(*(public_ip(i) for i in range(1, 11))))
    gone_id = first.entries[9]["id"]
    client = DeletesBehind(client_for(a), client_for(a), gone_id)

    # One stale indicator disappears between the List and the BatchDelete (expired, deleted by hand).
    again = run_file(client, a, rows(*(public_ip(i) for i in range(1, 8))))  # type: ignore[arg-type]
    batch_calls = calls_to(tenant, "/api/indicators/BatchDelete")
    assert [c["status"] for c in batch_calls] == [404, 204]
    assert {r["indicatorValue"] for r in tenant.admin.indicators()} == {public_ip(i) for i in range(1, 8)}
    assert again.tenant["deleted"] == 2 and again.tenant["deleteErrors"] == []
    # load, the List before the deletes, the re-list after the 404: a page and an empty one each
    assert again.summary.deleteCalls == 2 and again.summary.listCalls == 6


def test_dry_run_decides_everything_and_changes_nothing(tenant: DefenderEmulator, client_for: Any) -> None:
    a = feed_settings(tenant, "feed-a")
    run_file(client_for(a), a, rows(public_ip(1), public_ip(2), {FIELD_VALUE: public_ip(3), FIELD_ACTION: "Allowed"}))
    before = tenant.admin.indicators()
    dry = feed_settings(tenant, "feed-a", dry_run="true", sync_force="true")
    run = run_file(
        client_for(dry), dry, rows(public_ip(1), {FIELD_VALUE: public_ip(3), FIELD_ACTION: "Block"}, public_ip(4))
    )
    assert run.statuses() == ["unchanged", "skipped", "skipped"]
    assert "replaces Allowed indicator" in run.entries[1]["reason"] and "dry run" in run.entries[1]["reason"]
    assert run.tenant["wouldDelete"] == 1 and run.tenant["deleted"] == 0 and run.tenant["dryRun"] is True
    assert run.summary.apiCalls == 0 and run.summary.deleteCalls == 0
    assert tenant.admin.indicators() == before


# ------------------------------------------------------------------------------------------ expiry per type


def test_expiry_per_type_and_half_life_refresh(tenant: DefenderEmulator, client_for: Any) -> None:
    s = replace(make_settings(tenant), expiration_days_by_type={IndicatorType.IpAddress: 30})
    fields = rows(public_ip(1), "c" * 64, {FIELD_VALUE: "expl.example.com", FIELD_EXPIRATION: "2099-01-01T00:00:00Z"})
    start = datetime.now(UTC)
    run_file(client_for(s), s, fields)
    held = store(tenant)
    ip_exp = records.parse_time(held[("IpAddress", public_ip(1))]["expirationTime"])
    hash_exp = records.parse_time(held[("FileSha256", "c" * 64)]["expirationTime"])
    assert ip_exp and abs(ip_exp - (start + timedelta(days=30))) < timedelta(minutes=1)
    assert hash_exp and abs(hash_exp - (start + timedelta(days=90))) < timedelta(minutes=1)  # DEFAULT_EXPIRATION_DAYS
    explicit = records.parse_time(held[("DomainName", "expl.example.com")]["expirationTime"])
    assert explicit == datetime(2099, 1, 1, tzinfo=UTC)

    # Twenty days later: the 30-day IP record has 10 days left (< half its window) and is refreshed;
    # the 90-day hash keeps 70 (≥ half) and the explicit expiry compares equal: both unchanged.
    tenant.admin.advance_clock(20 * 86400)
    later = run_file(client_for(s), s, fields, now=start + timedelta(days=20))
    assert later.statuses() == ["submitted", "unchanged", "unchanged"]
    assert "expirationTime" in later.entries[0]["reason"]
    # The IP window shortened to 5 days: the fresh 30-day record now reaches too far and is refreshed too.
    shorter = replace(s, expiration_days_by_type={IndicatorType.IpAddress: 5})
    again = run_file(client_for(shorter), shorter, fields, now=start + timedelta(days=20))
    assert again.statuses() == ["submitted", "unchanged", "unchanged"]
    ip_exp = records.parse_time(store(tenant)[("IpAddress", public_ip(1))]["expirationTime"])
    assert ip_exp and abs(ip_exp - (start + timedelta(days=25))) < timedelta(minutes=1)
