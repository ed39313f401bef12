"""The tenant mirror end to end (CONTRACT.md "Settings" [mirror], TENANT_REFRESH_MINUTES): HTTP imports and blob
drops through the function entry points and the queue worker, on Azurite, the Defender emulator and the local
identity endpoint. Analysts act behind the mirror through the emulator's admin and its API; every drift is
seen and makes the next drain list the tenant first."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localdev.tokens import DEFAULT_SYSTEM_CLIENT_ID
from shared.storage.mirror import MirrorBlob
from shared.tenant import ownership
from shared.tenant.mirror import MirrorHeader, decode, encode
from shared.tenant.records import TenantView
from shared.tenant.steward import CAPACITY_REASON
from tests.app.test_http_import import post
from tests.app.test_stewardship import drop
from tests.support.stack import hex_value, public_ip

APP = DEFAULT_SYSTEM_CLIENT_ID  # the emulator writes the app's token appid into createdBy
ANALYST = "analyst@contoso.example"
_TURN_ENDS: list[Any] = []  # this test's queue host's drain(): the mirror is written at the end of the turn


@pytest.fixture(autouse=True)
def _turns(jobs_host: Any) -> Any:
    """A job's 200 comes when the job is final; the worker writes the mirror when its turn ends, a moment later.
    Reading the mirror waits for the turn (the queue host idle) first."""
    _TURN_ENDS[:] = [jobs_host.drain]
    yield
    _TURN_ENDS.clear()


def body(*indicators: dict[str, Any] | str) -> bytes:
    items = [{"indicatorValue": i} if isinstance(i, str) else i for i in indicators]
    return json.dumps({"Indicators": items}).encode()


def imported(functions: Any, blob_service: Any, app_env: dict[str, str], *indicators: dict[str, Any] | str,
             **params: str) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """POST, wait for the 200, and read the job's JSON report: (answer, report)."""
    status, answer, _ = post(functions, body(*indicators), **params)
    assert status == 200, answer
    raw = blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], answer["report"]).download_blob().readall()
    return answer, json.loads(raw)


def list_calls(defender: Any, since: int = 0) -> list[dict[str, Any]]:
    calls = defender.admin.calls()[since:]
    return [c for c in calls if c["method"] == "GET" and c["path"].lower() == "/api/indicators"]


def mirror_blob(blob_service: Any, app_env: dict[str, str]) -> MirrorBlob:
    return MirrorBlob(blob_service.get_container_client(app_env["STATE_CONTAINER"]), "default")


def read_mirror(blob_service: Any, app_env: dict[str, str]) -> Any:
    for turn_over in _TURN_ENDS:
        turn_over()
    found = mirror_blob(blob_service, app_env).read()
    assert found is not None, "no mirror"
    return decode(found[2], tenant="default"), found[1]


def analyst(n: int, prefix: str = "analyst") -> list[dict[str, Any]]:
    return [{"indicatorValue": hex_value(f"{prefix}-{i}"), "indicatorType": "FileSha256", "action": "Block"}
            for i in range(n)]  # fmt: skip


# ------------------------------------------------------------------------------------------ no List per drain


def test_sequential_posts_list_the_tenant_once(functions, make_runtime, defender, blob_service, app_env):
    """Five one-indicator POSTs, each its own drain, against a 1,500-indicator tenant: the first drain lists it
    (a page and the empty one after it) and writes the mirror; the others decide on the mirror alone."""
    defender.admin.seed(*analyst(1500))
    make_runtime()
    reports = [imported(functions, blob_service, app_env, public_ip(i))[1] for i in range(5)]
    assert len(list_calls(defender)) == 2
    assert [r["summary"]["listCalls"] for r in reports] == [2, 0, 0, 0, 0]
    assert [r["tenant"]["refreshed"] for r in reports] == [True, False, False, False, False]
    assert reports[0]["tenant"]["refreshReason"] == "there is no mirror yet"
    assert [r["tenant"]["countBefore"] for r in reports] == [1500, 1501, 1502, 1503, 1504]
    assert all(0 <= r["tenant"]["viewAgeSeconds"] < 60 for r in reports)
    mirror, metadata = read_mirror(blob_service, app_env)
    assert metadata == {"state": "clean"} and mirror.header.count == 1505 and mirror.header.refresh is None
    # The mirror's view is what Defender holds: ids from the import results.
    held = {r["id"]: (r["indicatorValue"], r["action"]) for r in defender.admin.indicators()}
    assert {r.id: (r.value, r.action) for r in mirror.records} == held


def test_refresh_minutes_zero_lists_at_the_start_of_every_drain(functions, make_runtime, defender, blob_service,
                                                               app_env):  # fmt: skip
    make_runtime(TENANT_REFRESH_MINUTES="0")
    reports = [imported(functions, blob_service, app_env, public_ip(i))[1] for i in range(3)]
    assert [r["tenant"]["refreshed"] for r in reports] == [True, True, True]
    assert "TENANT_REFRESH_MINUTES is 0" in reports[1]["tenant"]["refreshReason"]
    # An empty tenant is one (empty) page; one or two indicators a page and the empty page after it.
    assert [r["summary"]["listCalls"] for r in reports] == [1, 2, 2] and len(list_calls(defender)) == 5


# ------------------------------------------------------------------------------------------ drift behind it


def test_analysts_adding_behind_the_mirror_up_to_the_cap_is_drift(functions, make_runtime, defender, blob_service,
                                                                 app_env):  # fmt: skip
    """The mirror says there is room; Defender answers its cap is reached: those entries are `failed` with its
    reason, no later job of the drain plans room, and the next drain lists and skips for capacity."""
    defender.admin.configure(tenant_cap=40)
    make_runtime(MAX_TENANT_INDICATORS="40", CAPACITY_RESERVE="0")
    first = imported(functions, blob_service, app_env, *(public_ip(i) for i in range(5)))[1]
    assert first["summary"]["submitted"] == 5
    defender.admin.seed(*analyst(35))  # the tenant is full now; the mirror counts 5

    answer, second = imported(functions, blob_service, app_env, *(public_ip(10 + i) for i in range(3)))
    # The mirror's room, less the margin its age keeps for analysts (a few seconds old: none, under load: one).
    assert second["tenant"]["refreshed"] is False
    assert second["tenant"]["roomBefore"] == 35 - second["tenant"]["analystMargin"] > 3
    assert [v["isFailed"] for v in answer["value"]] == [True] * 3
    assert all("limit reached" in v["failureReason"] for v in answer["value"])
    mirror, _ = read_mirror(blob_service, app_env)
    assert "cap is reached while the mirror counts 5 of 40" in mirror.header.refresh

    third = imported(functions, blob_service, app_env, public_ip(20), public_ip(21))[1]
    assert third["tenant"]["refreshed"] is True and "cap is reached" in third["tenant"]["refreshReason"]
    assert third["tenant"]["countBefore"] == 40 and third["tenant"]["roomBefore"] == 0
    assert [e["reason"] for e in third["indicators"]] == [CAPACITY_REASON] * 2
    assert read_mirror(blob_service, app_env)[0].header.refresh is None  # the listing settled it
    assert len(defender.admin.indicators()) == 40  # never past the cap


def test_an_analyst_changing_an_indicator_behind_the_mirror_is_drift(functions, make_runtime, defender,
                                                                     blob_service, app_env):  # fmt: skip
    """Our Audit indicator turned into an analyst's Block: the update the mirror planned comes back with another
    id (a value the mirror knows, a different id), and the analyst's record is not deleted although the mirror
    thought it the app's own (its owner is confirmed by a List first)."""
    make_runtime()
    v = "changed-behind.example.com"
    answer, _ = imported(functions, blob_service, app_env, {"indicatorValue": v, "action": "Audit", "title": "one"})
    rid = answer["value"][0]["id"]
    defender.admin.seed({"id": rid, "indicatorValue": v, "indicatorType": "DomainName", "action": "Block",
                         "createdBy": ANALYST})  # fmt: skip

    changed = {"indicatorValue": v, "action": "Audit", "title": "two"}
    answer, second = imported(functions, blob_service, app_env, changed)
    (entry,) = second["indicators"]
    assert entry["status"] == "submitted" and entry["id"] != rid
    assert f"indicator {rid} left in place (Defender lists it as created by {ANALYST})" in entry["reason"]
    assert {(r["id"], r["action"]) for r in defender.admin.indicators()} == {(rid, "Block"), (entry["id"], "Audit")}
    assert second["summary"]["deleteCalls"] == 0
    refresh = read_mirror(blob_service, app_env)[0].header.refresh
    assert f"Defender returned indicator {entry['id']} for {v}, which the mirror holds as {rid}" in refresh

    third = imported(functions, blob_service, app_env, public_ip(1))[1]
    assert third["tenant"]["refreshed"] is True and rid in third["tenant"]["refreshReason"]


def test_an_analyst_deleting_behind_the_mirror_is_drift(functions, make_runtime, defender, defender_api,
                                                        blob_service, app_env):  # fmt: skip
    """A replacement's delete finds the old indicator gone (404): the next drain lists first."""
    v = "deleted-behind.example.com"
    mark = ownership.app_mark(None, "DomainName", v)
    (ours,) = defender.admin.seed({"indicatorValue": v, "indicatorType": "DomainName", "action": "Audit",
                                   "createdBy": APP, "externalId": mark})  # fmt: skip
    make_runtime()
    imported(functions, blob_service, app_env, public_ip(1))  # lists: the mirror knows our Audit indicator
    assert defender_api.delete(ours["id"]).status_code == 204  # an analyst deletes it in the portal

    n = len(defender.admin.calls())
    second = imported(functions, blob_service, app_env, {"indicatorValue": v, "action": "Block"})[1]
    (entry,) = second["indicators"]
    assert entry["status"] == "submitted" and f"replaces Audit indicator {ours['id']}" in entry["reason"]
    deletes = [c for c in defender.admin.calls()[n:] if c["method"] == "DELETE"]
    assert [c["status"] for c in deletes] == [404]
    assert f"a delete found indicator {ours['id']} gone" in read_mirror(blob_service, app_env)[0].header.refresh

    third = imported(functions, blob_service, app_env, public_ip(2))[1]
    assert third["tenant"]["refreshed"] is True and "gone" in third["tenant"]["refreshReason"]


# ------------------------------------------------------------------------------------------ the blob itself


def test_an_unreadable_mirror_is_refreshed(functions, make_runtime, defender, blob_service, app_env):
    make_runtime()
    imported(functions, blob_service, app_env, public_ip(1))
    container = blob_service.get_container_client(app_env["STATE_CONTAINER"])
    container.upload_blob("default/mirror.ndjson.gz", b"\x1f\x8b truncated", overwrite=True)
    second = imported(functions, blob_service, app_env, public_ip(2))[1]
    assert second["tenant"]["refreshed"] is True and "gzip" in second["tenant"]["refreshReason"]
    assert read_mirror(blob_service, app_env)[0].header.count == 2  # written whole again


def test_a_mirror_written_by_someone_else_meanwhile_is_dropped_and_the_next_drain_lists(
    functions, make_runtime, defender, blob_service, app_env
):
    """The drain marks the mirror before its first import; someone changes the blob while the import runs (its
    ETag moves): the drain's write is refused, the mirror deleted, the next drain lists."""
    make_runtime()
    imported(functions, blob_service, app_env, public_ip(1))
    defender.admin.configure(import_seconds=3)
    blob = blob_service.get_blob_client(app_env["STATE_CONTAINER"], "default/mirror.ndjson.gz")

    def meddle() -> None:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if blob.get_blob_properties().metadata.get("state") == "changing":
                blob.set_blob_metadata({"state": "clean", "by": "someone else"})
                return
            time.sleep(0.05)

    other = threading.Thread(target=meddle)
    other.start()
    second = imported(functions, blob_service, app_env, public_ip(2))[1]
    other.join()
    assert second["summary"]["submitted"] == 1 and second["tenant"]["refreshed"] is False
    assert mirror_blob(blob_service, app_env).read() is None  # dropped, not overwritten blindly
    defender.admin.configure(import_seconds=0)
    third = imported(functions, blob_service, app_env, public_ip(3))[1]
    assert third["tenant"]["refreshReason"] == "there is no mirror yet"


# ------------------------------------------------------------------------------------------ capacity on an older view


def test_an_hour_old_mirror_keeps_a_margin_for_analysts(functions, make_runtime, defender, blob_service, app_env):
    """A mirror listed 59 minutes ago (still fresh enough to use): 500 an hour of its age stays free, so 600 new
    indicators against a cap of 1,000 get 1,000 minus that margin; the rest are `skipped` for capacity."""
    defender.admin.configure(tenant_cap=1000)
    make_runtime(MAX_TENANT_INDICATORS="1000", CAPACITY_RESERVE="0")
    listed = datetime.now(UTC) - timedelta(minutes=59)
    empty = TenantView([], now=listed)
    assert mirror_blob(blob_service, app_env).write(encode(MirrorHeader("default", listed, listed, 0), empty),
                                                    etag=None, metadata={"state": "clean"})  # fmt: skip
    _, rep = imported(functions, blob_service, app_env, *(public_ip(i) for i in range(600)))
    t = rep["tenant"]
    assert t["refreshed"] is False and 3540 <= t["viewAgeSeconds"] < 3600
    assert 491 <= t["analystMargin"] <= 499 and t["roomBefore"] == 1000 - t["analystMargin"]
    assert rep["summary"]["submitted"] == t["roomBefore"] and rep["summary"]["skipped"] == 600 - t["roomBefore"]
    assert rep["summary"]["listCalls"] == 0
    assert len(defender.admin.indicators()) == t["roomBefore"]


# ------------------------------------------------------------------------------------------ feed sync


def test_feed_sync_lists_afresh_before_it_deletes(make_runtime, defender, defender_api, blob_service, app_env):
    """A feed's indicator deleted by hand behind the mirror is not named in a delete; what the fresh listing and
    the feed's new state agree is stale is deleted, with the safety rules."""
    make_runtime()
    values = [public_ip(100 + i) for i in range(4)]
    first = drop(blob_service, app_env, "feeds/acme/state.txt", ("\n".join(values) + "\n").encode())
    ids = {e["indicatorValue"]: e["id"] for e in first["indicators"]}
    assert defender_api.delete(ids[values[3]]).status_code == 204  # by hand, behind the mirror

    n = len(defender.admin.calls())
    again = drop(blob_service, app_env, "feeds/acme/state.txt", ("\n".join(values[:2]) + "\n").encode())
    sync = again["tenant"]["sync"]
    assert again["tenant"]["refreshed"] is False  # decided on the mirror...
    assert len(list_calls(defender, n)) == 2  # ...and listed afresh before deleting (a page, then an empty one)
    assert (sync["feedCountBefore"], sync["stale"], sync["heldBack"]) == (3, 1, None)
    assert again["tenant"]["deleted"] == 1
    assert [c["status"] for c in defender.admin.calls()[n:] if c["method"] == "DELETE"] == [204]
    assert {r["indicatorValue"] for r in defender.admin.indicators()} == set(values[:2])
    mirror, _ = read_mirror(blob_service, app_env)
    assert {r.value for r in mirror.records} == set(values[:2]) and mirror.header.refresh is None
