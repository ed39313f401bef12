"""`shared.tenant`: the feed folder convention, sync checks, the entry bound that spares small inputs a
second read, and the stand-ins used when the tenant cannot be listed (issue 6)."""

from __future__ import annotations

import gzip
import io
from typing import Any

import pytest

from shared.core.errors import AccessDenied, DefenderUnavailable
from shared.core.model import RawRow, Status
from shared.core.options import InputOptions
from shared.core.settings import Settings, SettingsError
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from shared.readers import read
from shared.tenant.feeds import blob_overrides, folder_overrides
from shared.tenant.session import Refused, UnreadTenant, entries_bound, identities_of, start


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("feeds/acme/current.csv", {"feed": "acme", "sync": "true"}),
        ("feeds/acme/2024/06/state.txt.gz", {"feed": "acme", "sync": "true"}),
        ("feeds/acme", {}),  # a file named like the folder: no feed
        ("feeds//x.txt", {}),
        ("feeds/acme/", {}),
        ("drop/feeds/acme/x.txt", {}),  # only at the top of the container
        ("Feeds/acme/x.txt", {}),  # blob names are case-sensitive
        ("list.txt", {}),
    ],
)
def test_feed_folder_convention(name: str, expected: dict[str, str]) -> None:
    assert folder_overrides(name) == expected


def test_blob_metadata_wins_over_the_folder() -> None:
    assert blob_overrides("feeds/acme/x.txt", {"Sync": "false"}) == {"feed": "acme", "sync": "false"}
    assert blob_overrides("feeds/acme/x.txt", {"feed": "other"}) == {"feed": "other", "sync": "true"}
    o = InputOptions.parse(blob_overrides("feeds/acme/x.txt", {"sync_force": "true"}))
    assert (o.feed, o.sync, o.sync_force) == ("acme", True, True)


def test_sync_needs_a_feed() -> None:
    with pytest.raises(SettingsError, match="sync=true needs feed"):
        InputOptions.parse({"sync": "true"}).check_sync()
    InputOptions.parse({"sync": "true", "feed": "f"}).check_sync()
    InputOptions().check_sync()


def test_entry_bound_is_never_below_the_entries_read() -> None:
    """The shortest valid entries, one per byte-minimal line: the bound still covers them all."""
    data = b"a.io\nb.co\nx.yz\n1.1.1.1\nc.de"
    rows = [i for i in read(io.BytesIO(data), "t.txt") if isinstance(i, RawRow)]
    bound = entries_bound(data[:2], len(data))
    assert bound is not None and len(rows) == 5 <= bound
    assert entries_bound(gzip.compress(data)[:2], 30) is None


class Lister:
    """A TenantClient whose List fails (or lists `items`); counts calls like the real client."""

    def __init__(self, error: Exception | None = None, items: list[dict[str, Any]] | None = None) -> None:
        self.error = error
        self.items = items or []
        self.list_calls = 0
        self.delete_calls = 0
        self.api_calls = 0
        self.retries = 0

    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Any:
        self.list_calls += 1
        if self.error is not None:
            raise self.error
        yield from self.items

    def batch_delete(self, ids: Any) -> None:
        raise AssertionError("no delete expected")

    def delete(self, id: str) -> bool:
        raise AssertionError("no delete expected")

    def submit(self, batch: Any) -> Any:
        raise AssertionError("no import expected")


def run(settings: Settings, client: Lister, text: bytes) -> tuple[dict[str, Any], Any]:
    import json

    steward, submitter = start(client, settings, entries_at_most=None, second_pass=lambda: [])
    jout, cout = io.StringIO(), io.StringIO()
    writer = ReportWriter(jout, cout, source={"name": "t.txt"}, started_at=_now(), dry_run=settings.dry_run)
    result = process_stream(
        io.BytesIO(text), "t.txt", settings=settings, submitter=submitter, reports=writer, source="t.txt",
        steward=steward,
    )  # fmt: skip
    return json.loads(jout.getvalue()), result


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_tenant_unreadable_fails_every_entry_with_the_reason_and_no_import() -> None:
    err = AccessDenied("Defender refused the token: the app lacks Ti.ReadWrite.All", status=403)
    client = Lister(err)
    steward, submitter = start(client, Settings(), entries_at_most=None, second_pass=lambda: [])
    assert isinstance(steward, UnreadTenant) and isinstance(submitter, Refused)
    report, result = run(Settings(), Lister(err), b"evil.example.com\n8.8.8.8\n")
    assert result.status == "failed"
    assert [e["status"] for e in report["indicators"]] == ["failed", "failed"]
    assert all("Ti.ReadWrite.All" in e["reason"] for e in report["indicators"])
    assert "Ti.ReadWrite.All" in report["tenant"]["error"] and report["summary"]["listCalls"] == 1


def test_tenant_unreadable_in_a_dry_run_reports_and_still_validates() -> None:
    settings = Settings(dry_run=True)
    report, result = run(settings, Lister(DefenderUnavailable("Defender answered 503", status=503)), b"e.example.com\n")
    assert [(e["status"], e["reason"]) for e in report["indicators"]] == [(Status.skipped.value, "dry run")]
    assert report["tenant"] == {
        "error": "could not read the tenant's indicators: Defender answered 503",
        "dryRun": True,
    }
    assert result.status == "completed"


def test_dry_run_gets_a_steward_but_no_submitter() -> None:
    steward, submitter = start(Lister(), Settings(dry_run=True), entries_at_most=1, second_pass=lambda: [])
    assert submitter is None and steward.view is not None and steward.view.active_count == 0


class Identified(Lister):
    """A client that knows who it is (`DefenderClient.identity_ids`), or fails to get a token."""

    def __init__(self, ids: tuple[str, ...] = (), error: Exception | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.ids = ids
        self.identity_error = error

    def identity_ids(self) -> tuple[str, ...]:
        if self.identity_error is not None:
            raise self.identity_error
        return self.ids


def test_start_gives_the_steward_the_clients_identity() -> None:
    steward, _ = start(Identified(("app-guid", "obj-guid")), Settings(), entries_at_most=1, second_pass=lambda: [])
    assert steward.identities == ("app-guid", "obj-guid")
    steward, _ = start(Lister(), Settings(), entries_at_most=1, second_pass=lambda: [])  # a client without one
    assert steward.identities == ()
    steward, _ = start(Identified(()), Settings(), entries_at_most=1, second_pass=lambda: [])  # claims unreadable
    assert steward.identities == ()
    assert identities_of(object()) == ()


def test_start_without_a_token_is_an_unread_tenant() -> None:
    from shared.core.errors import IdentityUnavailable

    client = Identified(error=IdentityUnavailable("no token for scope x from the managed identity"))
    steward, submitter = start(client, Settings(), entries_at_most=1, second_pass=lambda: [])
    assert isinstance(steward, UnreadTenant) and isinstance(submitter, Refused)
    assert "no token" in steward.report_extra()["tenant"]["error"] and client.list_calls == 0
