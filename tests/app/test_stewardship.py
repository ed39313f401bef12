"""Quota stewardship through the function entry points (issue 6), on Azurite and the emulators: blob drops
and HTTP imports near the tenant cap, resubmitted files, feed sync with its ownership mark and safety
rules, dry runs (CONTRACT.md `unchanged`, `skipped` "tenant capacity", `listCalls`, `deleteCalls`,
`MAX_TENANT_INDICATORS`, `CAPACITY_RESERVE`, blob metadata `feed`/`sync`/`sync_force`)."""

from __future__ import annotations

import json
from typing import Any

from shared.tenant import ownership
from shared.tenant.steward import CAPACITY_REASON
from tests.app.test_blob_import import deliver, import_calls, report, upload
from tests.app.test_http_import import post
from tests.support.stack import hex_value, public_ip

ANALYST = "analyst@contoso.example"  # the emulator's seeded records are an analyst's, made in the portal


def calls(defender: Any, method: str, path: str) -> list[dict[str, Any]]:
    return [c for c in defender.admin.calls() if c["method"] == method and c["path"].lower() == path.lower()]


def deletes(defender: Any) -> list[dict[str, Any]]:
    return calls(defender, "POST", "/api/indicators/BatchDelete") + [
        c for c in defender.admin.calls() if c["method"] == "DELETE"
    ]


def store(defender: Any) -> dict[str, dict[str, Any]]:
    return {r["indicatorValue"]: r for r in defender.admin.indicators()}


def drop(blob_service: Any, app_env: dict[str, str], name: str, data: bytes, **metadata: str) -> dict[str, Any]:
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], name, data, metadata or None)
    deliver(bc, app_env)
    return report(blob_service, app_env, name)


def seed_analyst(defender: Any, values: list[str]) -> None:
    defender.admin.seed(*({"indicatorValue": v, "indicatorType": "FileSha256", "action": "Block"} for v in values))


def lines(values: list[str]) -> bytes:
    return ("\n".join(values) + "\n").encode()


# ------------------------------------------------------------------------------------------ capacity


def test_blob_near_the_cap_submits_in_priority_order_and_skips_the_rest(blob_service, app_env, make_runtime, defender):
    """10 analyst indicators, cap 30, reserve 5: room for 15 of 25 new rows; High first (Block before
    Allowed), then Medium; the other 10 `skipped` "tenant capacity"; the report in input order."""
    defender.admin.configure(tenant_cap=30)
    make_runtime(MAX_TENANT_INDICATORS="30", CAPACITY_RESERVE="5")
    seed_analyst(defender, [hex_value(f"analyst-{i}") for i in range(10)])
    sev = ["Low", "High", "Medium", "Informational", "High"]
    act = ["Audit", "Block", "Warn", "Block", "Allowed"]
    rows = [(public_ip(i), act[i % 5], sev[i % 5]) for i in range(25)]
    csv = "IndicatorValue,Action,Severity\r\n" + "".join(f"{v},{a},{s}\r\n" for v, a, s in rows)
    rep = drop(blob_service, app_env, "near-cap.csv", csv.encode())

    s = rep["summary"]
    assert (s["submitted"], s["skipped"], s["failed"], s["invalid"]) == (15, 10, 0, 0)
    assert [e["line"] for e in rep["indicators"]] == list(range(2, 27))  # input order (line 1 is the header)
    by_value = {v: (a, sv) for v, a, sv in rows}
    admitted = sorted(by_value[e["indicatorValue"]] for e in rep["indicators"] if e["status"] == "submitted")
    assert admitted == sorted([("Block", "High")] * 5 + [("Allowed", "High")] * 5 + [("Warn", "Medium")] * 5)
    assert {e["reason"] for e in rep["indicators"] if e["status"] == "skipped"} == {CAPACITY_REASON}
    t = rep["tenant"]
    assert (t["countBefore"], t["countAfter"], t["roomBefore"], t["roomLeft"], t["capacitySkipped"]) == (
        10,
        25,
        15,
        0,
        10,
    )
    assert len(defender.admin.indicators()) == 25
    assert (s["listCalls"], s["apiCalls"], s["deleteCalls"]) == (2, 1, 0)  # a page, then the empty one
    assert len(calls(defender, "GET", "/api/indicators")) == 2


def test_capacity_priority_setting_changes_the_order(blob_service, app_env, make_runtime, defender):
    """CAPACITY_PRIORITY=action: Block before Audit whatever the severity."""
    defender.admin.configure(tenant_cap=12)
    make_runtime(MAX_TENANT_INDICATORS="12", CAPACITY_RESERVE="10", CAPACITY_PRIORITY="action")
    csv = "IndicatorValue,Action,Severity\r\n" + "".join(
        f"{public_ip(i)},{'Audit' if i < 3 else 'Block'},{'High' if i < 3 else 'Low'}\r\n" for i in range(5)
    )
    rep = drop(blob_service, app_env, "order.csv", csv.encode())
    assert [e["status"] for e in rep["indicators"]] == ["skipped"] * 3 + ["submitted"] * 2


# ------------------------------------------------------------------------------------------ delta


def test_same_file_dropped_again_is_only_unchanged_and_makes_no_import_call(
    blob_service, app_env, make_runtime, defender
):
    make_runtime()
    values = [hex_value(f"again-{i}") for i in range(6)] + ["evil-again.example.com", "http://evil-again.example.com/x"]
    first = drop(blob_service, app_env, "again.txt", lines(values))
    assert [e["status"] for e in first["indicators"]] == ["submitted"] * 8
    etag1 = first["source"]["etag"]

    second = drop(blob_service, app_env, "again.txt", lines(values))  # a new upload: new ETag, same bytes
    assert second["source"]["etag"] != etag1
    assert [e["status"] for e in second["indicators"]] == ["unchanged"] * 8
    assert [e["id"] for e in second["indicators"]] == [e["id"] for e in first["indicators"]]
    assert len(import_calls(defender)) == 1  # the first drop's call only
    # The first drop listed the tenant and left its mirror: the second decides on it without a List.
    assert second["summary"]["apiCalls"] == 0 and second["summary"]["listCalls"] == 0
    assert (second["tenant"]["refreshed"], first["tenant"]["refreshed"]) == (False, True)
    assert second["tenant"]["countBefore"] == second["tenant"]["countAfter"] == 8


def test_changed_action_replaces_the_old_indicator(blob_service, app_env, make_runtime, defender):
    make_runtime()
    v = "evil-action.example.com"
    drop(blob_service, app_env, "act.csv", f"IndicatorValue,Action\r\n{v},Audit\r\n".encode())
    old_id = store(defender)[v]["id"]
    n = len(defender.admin.calls())
    rep = drop(blob_service, app_env, "act.csv", f"IndicatorValue,Action\r\n{v},Block\r\n".encode())
    (e,) = rep["indicators"]
    # The emulator's upsert key includes the action: the new indicator has its own id, the old one goes.
    assert e["status"] == "submitted" and e["id"] != old_id
    assert e["reason"] == f"replaces Audit indicator {old_id}; old indicator {old_id} deleted"
    held = [r for r in defender.admin.indicators() if r["indicatorValue"] == v]
    assert [(r["action"], r["id"]) for r in held] == [("Block", e["id"])]
    assert rep["tenant"]["replaced"] == 1 and rep["summary"]["deleteCalls"] == 1
    # Import first, delete after: no moment without protection. The view is the mirror the first drop left;
    # the old indicator's owner came from that drop's import result, so a List by value confirms it first.
    assert [(c["method"], c["path"]) for c in defender.admin.calls()[n:]] == [
        ("POST", "/api/indicators/import"),
        ("GET", "/api/indicators"),
        ("GET", "/api/indicators"),  # the short page is followed by an empty one (fidelity-review 1.27)
        ("DELETE", f"/api/indicators/{old_id}"),
    ]
    assert "$filter" in defender.admin.calls()[n + 1]["query"]


# ------------------------------------------------------------------------------------------ feed sync


def test_feed_folder_resync_deletes_only_that_feeds_stale_indicators(blob_service, app_env, make_runtime, defender):
    """`feeds/<feed>/...` is the feed's full state. Re-dropped with 3 of 10 rows gone: those 3 are deleted
    (one BatchDelete); the other feed's and the analyst's indicators (one with the same value) stay."""
    make_runtime()
    acme = [hex_value(f"acme-{i}") for i in range(10)]
    other = [hex_value(f"other-{i}") for i in range(4)]
    analyst = [hex_value(f"hand-{i}") for i in range(3)]
    seed_analyst(defender, analyst)
    first = drop(blob_service, app_env, "feeds/acme/current.txt", lines(acme))
    assert first["summary"]["submitted"] == 10 and first["tenant"]["sync"]["feed"] == "acme"
    drop(blob_service, app_env, "feeds/other/list.txt", lines(other))
    # Defender keeps our ownership mark (externalId) on what we created for the feed.
    marks = {r["indicatorValue"]: r.get("externalId") for r in defender.admin.indicators()}
    assert all(marks[v] == ownership.feed_mark("acme", "FileSha256", v) for v in acme)
    assert all(ownership.mark_feed(marks[v]) == "other" for v in other)

    rep = drop(blob_service, app_env, "feeds/acme/current.txt", lines(acme[3:]))
    assert [e["status"] for e in rep["indicators"]] == ["unchanged"] * 7
    sync = rep["tenant"]["sync"]
    assert (sync["feed"], sync["feedCountBefore"], sync["stale"], sync["heldBack"]) == ("acme", 10, 3, None)
    assert rep["tenant"]["deleted"] == 3 and rep["summary"]["deleteCalls"] == 1
    assert rep["tenant"]["countBefore"] == 17 and rep["tenant"]["countAfter"] == 14
    held = store(defender)
    assert set(held) == set(acme[3:]) | set(other) | set(analyst)
    assert {held[v]["createdBy"] for v in analyst} == {ANALYST}
    assert len(deletes(defender)) == 1


def test_resync_that_would_delete_most_of_the_feed_is_held_back_unless_forced(
    blob_service, app_env, make_runtime, defender
):
    make_runtime()
    feed = [hex_value(f"held-{i}") for i in range(6)]
    drop(blob_service, app_env, "feeds/held/all.txt", lines(feed))
    rep = drop(blob_service, app_env, "feeds/held/all.txt", lines(feed[:2]))  # 4 of 6 would go
    assert (
        "more than half" in rep["tenant"]["sync"]["heldBack"] and "sync_force=true" in rep["tenant"]["sync"]["heldBack"]
    )
    assert rep["tenant"]["deleted"] == 0 and deletes(defender) == []
    assert len(defender.admin.indicators()) == 6

    forced = drop(blob_service, app_env, "feeds/held/all.txt", lines(feed[:2]), sync_force="true")
    assert forced["tenant"]["sync"]["heldBack"] is None and forced["tenant"]["deleted"] == 4
    assert set(store(defender)) == set(feed[:2])


def test_metadata_wins_over_the_feed_folder(blob_service, app_env, make_runtime, defender):
    make_runtime()
    feed = [hex_value(f"meta-{i}") for i in range(4)]
    drop(blob_service, app_env, "feeds/meta/a.txt", lines(feed))
    rep = drop(blob_service, app_env, "feeds/meta/a.txt", lines(feed[:3]), sync="false")
    assert rep["tenant"]["sync"] is None and deletes(defender) == []
    # Metadata naming another feed: this file's indicators are that feed's, the folder's feed is left alone.
    rep = drop(blob_service, app_env, "feeds/meta/b.txt", lines([hex_value("meta-b")]), feed="renamed")
    assert rep["tenant"]["sync"]["feed"] == "renamed" and rep["tenant"]["deleted"] == 0
    assert len(defender.admin.indicators()) == 5


def test_sync_without_a_feed_is_refused_naming_the_key(blob_service, app_env, make_runtime, defender):
    make_runtime()
    rep = drop(blob_service, app_env, "nofeed.txt", lines([hex_value("nofeed")]), sync="true")
    assert rep["status"] == "failed" and "feed=<name>" in rep["errors"][0]["message"]
    assert import_calls(defender) == []


# ------------------------------------------------------------------------------------------ dry run


def test_dry_run_shows_every_decision_and_changes_nothing(blob_service, app_env, make_runtime, defender):
    """A feed in the tenant, then a dry-run re-drop that drops 2 of its rows, changes one action and adds
    rows beyond the room: the report says unchanged / capacity / would-delete; the tenant is untouched."""
    defender.admin.configure(tenant_cap=9)
    make_runtime(MAX_TENANT_INDICATORS="9", CAPACITY_RESERVE="1")
    feed = [public_ip(100 + i) for i in range(6)]
    drop(
        blob_service,
        app_env,
        "feeds/dry/state.csv",
        ("IndicatorValue,Action\r\n" + "".join(f"{v},Block\r\n" for v in feed)).encode(),
    )
    before = defender.admin.indicators()
    calls_before = len(defender.admin.calls())

    rows = [(v, "Block") for v in feed[:3]] + [(feed[3], "Warn")] + [(public_ip(200 + i), "Block") for i in range(4)]
    csv = "IndicatorValue,Action\r\n" + "".join(f"{v},{a}\r\n" for v, a in rows)
    rep = drop(blob_service, app_env, "feeds/dry/state.csv", csv.encode(), dry_run="true")

    assert rep["dryRun"] is True and rep["tenant"]["dryRun"] is True
    got = [(e["status"], e["reason"]) for e in rep["indicators"]]
    assert [g[0] for g in got[:3]] == ["unchanged"] * 3
    assert [e["id"] for e in rep["indicators"][:3]] == [store(defender)[v]["id"] for v in feed[:3]]
    assert got[3] == ("skipped", f"replaces Block indicator {store(defender)[feed[3]]['id']}; dry run")
    # Room: cap 9 - reserve 1 - 6 active = 2 new; the other 2 new rows are refused for capacity.
    assert [g[0] for g in got[4:]] == ["skipped"] * 4
    assert sorted(g[1] for g in got[4:]) == ["dry run", "dry run", CAPACITY_REASON, CAPACITY_REASON]
    t = rep["tenant"]
    assert t["capacitySkipped"] == 2 and t["decisions"]["replace"] == 1 and t["decisions"]["unchanged"] == 3
    assert t["sync"]["stale"] == 2 and t["wouldDelete"] == 2 and t["deleted"] == 0
    # Nothing changed in the tenant; the only calls were the List.
    assert defender.admin.indicators() == before
    new_calls = defender.admin.calls()[calls_before:]
    assert [(c["method"], c["path"]) for c in new_calls] == [("GET", "/api/indicators")] * 2
    assert rep["summary"]["listCalls"] == 2 and rep["summary"]["apiCalls"] == rep["summary"]["deleteCalls"] == 0


def test_dry_run_with_the_tenant_unreadable_still_validates(blob_service, app_env, make_runtime, defender):
    make_runtime()
    defender.admin.add_fault(kind="status", status=503, count=20, path="/api/indicators")
    rep = drop(blob_service, app_env, "dry-down.txt", lines([hex_value("dd")]), dry_run="true")
    assert [(e["status"], e["reason"]) for e in rep["indicators"]] == [("skipped", "dry run")]
    assert "could not read the tenant" in rep["tenant"]["error"]
    assert import_calls(defender) == []


def test_tenant_unreadable_submits_nothing_and_fails_the_run(blob_service, app_env, make_runtime, defender):
    """Retried on the schedule while List fails; once the retries ran out, final and failed, nothing sent."""
    make_runtime(JOB_RETRY_MAX_HOURS="0.0006")
    defender.admin.add_fault(kind="status", status=503, count=500, path="/api/indicators")
    rep = drop(blob_service, app_env, "down-list.txt", lines([hex_value("dl-1"), hex_value("dl-2")]))
    assert rep["status"] == "failed"
    assert {e["status"] for e in rep["indicators"]} == {"failed"}
    assert import_calls(defender) == []


# ------------------------------------------------------------------------------------------ HTTP


def test_http_import_with_feed_sync_query_parameters(functions, make_runtime, defender):
    make_runtime()
    values = [hex_value(f"http-feed-{i}") for i in range(5)]
    body = json.dumps(values).encode()
    status, answer, _ = post(functions, body, feed="logicapp", sync="true")
    assert status == 200 and answer["summary"]["submitted"] == 5
    # Resent with one value fewer: four unchanged (same defaulted description), one stale deleted.
    status, answer, _ = post(functions, json.dumps(values[:4]).encode(), feed="logicapp", sync="true")
    assert status == 200
    assert answer["summary"]["unchanged"] == 4 and answer["summary"]["submitted"] == 0
    assert answer["summary"]["deleteCalls"] == 1 and answer["summary"]["listCalls"] == 2
    assert set(store(defender)) == set(values[:4])
    assert len(import_calls(defender)) == 1


def test_http_sync_without_feed_is_a_400(functions, make_runtime, defender):
    make_runtime()
    status, answer, _ = post(functions, json.dumps([hex_value("x")]).encode(), sync="true")
    assert status == 400 and "feed" in json.dumps(answer)
