"""Action replacement never deletes an indicator the app does not own (issue 6, "Action change" and the
ownership rule of "Feed sync"), through the blob entry point on Azurite and the emulators.

Ownership = the app's mark in `externalId` (`shared.tenant.ownership.app_mark`) and the app's own identity in
`createdBy` (the emulator writes the token's `appid` there; defender-api.md §5). Tested under both upsert
keys the emulator knows, since Defender's is undocumented (defender-api.md §3.2).
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.tokens import DEFAULT_SYSTEM_CLIENT_ID
from shared.tenant import ownership
from tests.app.test_blob_import import deliver, report, upload
from tests.support.stack import public_ip

ANALYST = "analyst@contoso.example"
APP = DEFAULT_SYSTEM_CLIENT_ID  # the app's managed identity: the emulator writes its token's appid into createdBy
OTHER_APP = "0f0f0f0f-1111-2222-3333-444444444444"  # another tool's identity
DOMAIN = "exception.example.com"
PRECEDENCE = "(for network indicators Allow wins over Warn over Block)"
UPSERT_KEYS = ["type_value_action", "type_value"]


def conflict(id: str, who: str) -> str:
    return f"conflicts with Allowed indicator {id} created by {who}, left in place {PRECEDENCE}"


def drop(blob_service: Any, app_env: dict[str, str], name: str, data: bytes, **metadata: str) -> dict[str, Any]:
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], name, data, metadata or None)
    deliver(bc, app_env)
    return report(blob_service, app_env, name)


def csv(*rows: tuple[str, str]) -> bytes:
    return ("IndicatorValue,Action\r\n" + "".join(f"{v},{a}\r\n" for v, a in rows)).encode()


def held(defender: Any, value: str) -> list[dict[str, Any]]:
    return sorted((r for r in defender.admin.indicators() if r["indicatorValue"] == value), key=lambda r: int(r["id"]))


def delete_calls(defender: Any) -> list[dict[str, Any]]:
    return [c for c in defender.admin.calls() if c["method"] == "DELETE" or c["path"].endswith("BatchDelete")]


def seed_allowed(defender: Any, value: str = DOMAIN, **fields: Any) -> str:
    """An analyst's deliberate exception: Allowed, made in the portal."""
    (rec,) = defender.admin.seed(
        {"indicatorValue": value, "indicatorType": "DomainName", "action": "Allowed", "title": "FP exception", **fields}
    )
    return str(rec["id"])


@pytest.mark.parametrize("upsert_key", UPSERT_KEYS)
def test_feed_that_blocks_an_analysts_allowed_domain_never_deletes_it(
    blob_service, app_env, make_runtime, defender, upsert_key
):
    defender.admin.configure(upsert_key=upsert_key)
    make_runtime()
    analyst_id = seed_allowed(defender)
    others = [public_ip(300 + i) for i in range(4)]
    rep = drop(blob_service, app_env, "feeds/acme/state.csv", csv((DOMAIN, "Block"), *((v, "Block") for v in others)))

    (e, *rest) = rep["indicators"]
    assert e["status"] == "submitted" and {r["status"] for r in rest} == {"submitted"}
    assert delete_calls(defender) == [] and rep["summary"]["deleteCalls"] == 0
    records = held(defender, DOMAIN)
    t = rep["tenant"]
    assert t["replaced"] == 0 and t["deleted"] == 0 and t["decisions"]["replace"] == 0
    if upsert_key == "type_value_action":
        # Defender keeps both: the analyst's exception (which wins for a domain) and our Block.
        assert [(r["id"], r["action"], r["createdBy"]) for r in records] == [
            (analyst_id, "Allowed", ANALYST),
            (e["id"], "Block", APP),
        ]
        assert e["id"] != analyst_id
        assert e["reason"] == conflict(analyst_id, ANALYST)
        assert (t["conflictsLeft"], t["foreignUpdatedInPlace"], t["countAfter"]) == (1, 0, 6)
    else:
        # Defender keyed the upsert on type+value: it rewrote the analyst's record in place. Its behaviour,
        # which the app cannot prevent; the reason says so. The record is still the analyst's.
        assert [(r["id"], r["action"], r["createdBy"]) for r in records] == [(analyst_id, "Block", ANALYST)]
        assert records[0]["externalId"] == ownership.feed_mark("acme", "DomainName", DOMAIN)  # our mark, their record
        assert e["id"] == analyst_id
        assert e["reason"] == f"Defender updated indicator {analyst_id} in place (it was created by {ANALYST})"
        assert (t["conflictsLeft"], t["foreignUpdatedInPlace"], t["countAfter"]) == (0, 1, 5)

    # The feed drops the domain: feed sync deletes only what the app owns. Under type+value the analyst's
    # record now carries the feed's mark, but not the app's identity: still not the feed's.
    again = drop(blob_service, app_env, "feeds/acme/state.csv", csv(*((v, "Block") for v in others)))
    assert [r["status"] for r in again["indicators"]] == ["unchanged"] * 4
    sync = again["tenant"]["sync"]
    assert sync["heldBack"] is None
    if upsert_key == "type_value_action":
        assert (sync["stale"], again["tenant"]["deleted"]) == (1, 1)  # our own Block of the domain
        assert [(r["id"], r["action"]) for r in held(defender, DOMAIN)] == [(analyst_id, "Allowed")]
    else:
        assert (sync["stale"], again["tenant"]["deleted"]) == (0, 0)
        assert [r["id"] for r in held(defender, DOMAIN)] == [analyst_id]


@pytest.mark.parametrize("upsert_key", UPSERT_KEYS)
def test_our_own_block_then_allowed_is_still_replaced(blob_service, app_env, make_runtime, defender, upsert_key):
    defender.admin.configure(upsert_key=upsert_key)
    make_runtime()
    v = "own-change.example.com"
    first = drop(blob_service, app_env, "own.csv", csv((v, "Block")))
    old_id = first["indicators"][0]["id"]
    (rec,) = held(defender, v)
    assert rec["externalId"] == ownership.app_mark(None, "DomainName", v)  # marked although no feed

    rep = drop(blob_service, app_env, "own.csv", csv((v, "Allowed")))
    (e,) = rep["indicators"]
    assert e["status"] == "submitted" and [r["action"] for r in held(defender, v)] == ["Allowed"]
    assert rep["tenant"]["conflictsLeft"] == 0 and rep["tenant"]["replaced"] == 1
    if upsert_key == "type_value_action":
        assert e["id"] != old_id
        assert e["reason"] == f"replaces Block indicator {old_id}; old indicator {old_id} deleted"
        assert rep["summary"]["deleteCalls"] == 1 and rep["tenant"]["deleted"] == 1
    else:
        assert e["id"] == old_id
        assert e["reason"] == f"replaces Block indicator {old_id}; Defender updated it in place (same id)"
        assert rep["summary"]["deleteCalls"] == 0


def test_our_mark_written_by_another_identity_is_not_ours(blob_service, app_env, make_runtime, defender):
    """Another app copied our externalId (for the right value, even): `createdBy` tells it apart."""
    make_runtime()
    copied = seed_allowed(defender, externalId=ownership.app_mark(None, "DomainName", DOMAIN), createdBy=OTHER_APP)
    feed_copy = "copied-feed.example.com"
    feed_copy_id = seed_allowed(
        defender, feed_copy, action="Block", externalId=ownership.feed_mark("acme", "DomainName", feed_copy),
        createdBy=OTHER_APP,
    )  # fmt: skip
    rep = drop(blob_service, app_env, "copied.csv", csv((DOMAIN, "Block")))
    (e,) = rep["indicators"]
    assert e["status"] == "submitted" and e["id"] != copied
    assert e["reason"] == conflict(copied, OTHER_APP)
    assert [r["id"] for r in held(defender, DOMAIN)] == [copied, e["id"]]
    assert rep["summary"]["deleteCalls"] == 0

    # Feed sync of "acme" without that value: the copy of acme's mark is not acme's to delete.
    sync = drop(blob_service, app_env, "feeds/acme/x.csv", csv((public_ip(7), "Block")))
    assert sync["tenant"]["sync"]["feedCountBefore"] == 0 and sync["tenant"]["sync"]["stale"] == 0
    assert [r["id"] for r in held(defender, feed_copy)] == [feed_copy_id]
    assert delete_calls(defender) == []


def test_dry_run_says_the_same(blob_service, app_env, make_runtime, defender):
    make_runtime()
    analyst_id = seed_allowed(defender)
    before = defender.admin.indicators()
    rep = drop(blob_service, app_env, "dry.csv", csv((DOMAIN, "Block")), dry_run="true")
    (e,) = rep["indicators"]
    assert e["status"] == "skipped"
    assert e["reason"] == (conflict(analyst_id, ANALYST) + "; dry run")
    assert rep["tenant"]["conflictsLeft"] == 1 and rep["tenant"]["wouldDelete"] == 0
    assert defender.admin.indicators() == before
