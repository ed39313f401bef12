"""The blob-drop function end to end on the real local stack: Azurite, real SDK clients, the Defender and
identity emulators; events delivered as the host delivers them (CONTRACT.md "Reports", "Defender calls";
issue "Triggers": idempotent, one import at a time per tenant, failure never loses data, streamed)."""

from __future__ import annotations

import gzip
import json
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from localdev.stack import blob_created_event, deliver_blob_created
from shared.app import blob_import, runtime, worker
from shared.app.runtime import get_runtime
from tests.app.conftest import active_host, import_now
from tests.conftest import REPO
from tests.support.stack import hex_value, public_ip

SAMPLES = REPO / "samples"
METADATA = {"signer.pem": {"action": "BlockAndRemediate"}}


def upload(blob_service: Any, container: str, name: str, data: bytes, metadata: dict[str, str] | None = None) -> Any:
    return blob_service.get_container_client(container).upload_blob(name, data, overwrite=True, metadata=metadata)


def deliver(blob_client: Any, app_env: dict[str, str], host: Any = None) -> None:
    """What the host does for a BlobCreated event: build a BlobClient for the blob and call the function."""
    props = blob_client.get_blob_properties()
    event = blob_created_event(
        blob_client.container_name,
        blob_client.blob_name,
        etag=props.etag,
        size=props.size,
        url=blob_client.url,
        content_type="application/octet-stream",
    )
    deliver_blob_created(event, app_env["IndicatorStorage"], watched_container=app_env["INDICATORS_CONTAINER"])
    (host or active_host()).drain()  # the queued job, run to its end


def report(blob_service: Any, app_env: dict[str, str], name: str) -> dict[str, Any]:
    reports = blob_service.get_container_client(app_env["REPORTS_CONTAINER"])
    return json.loads(reports.download_blob(f"{name}.report.json").readall())


def import_calls(defender: Any) -> list[dict[str, Any]]:
    return [c for c in defender.admin.calls() if c["path"].lower() == "/api/indicators/import"]


def hashes(n: int, seed: str) -> list[str]:
    return [hex_value(f"{seed}-{i}") for i in range(n)]


def counts(submitted: int, duplicate: int = 0, invalid: int = 0, ignored: int = 0) -> dict[str, int]:
    return {
        "submitted": submitted,
        "duplicate": duplicate,
        "failed": 0,
        "invalid": invalid,
        "skipped": 0,
        "ignoredLines": ignored,
    }


CWE = "completed_with_errors"
# Expected per sample (samples/ are ours; documentation-range IPs are invalid: Defender takes external IPs only).
EXPECTED: dict[str, tuple[str, dict[str, int]]] = {
    # domain, URL, hash; a repeated domain; two documentation IPs; one prose line
    "c2-list.txt": (CWE, counts(3, duplicate=1, invalid=2, ignored=1)),
    # hash, domain + IP from an OR pattern, URL; the IP and a MATCHES pattern are invalid
    "campaign.stix.json": (CWE, counts(3, invalid=2)),
    # domain, hash, legacy Alert URL; documentation IPv6 and an entry without indicatorValue invalid
    "defender-body.json": (CWE, counts(3, invalid=2)),
    # five good rows, a repeated URL; documentation IP, short hash, certificate with Block invalid
    "defender-portal.csv": (CWE, counts(5, duplicate=1, invalid=3)),
    # two good lines; a broken JSON line and a documentation IP invalid
    "events.ndjson": (CWE, counts(2, invalid=2)),
    # refanged URL, domain, hash; documentation IP:port, prose value, private IP invalid
    "generic-feed.csv": (CWE, counts(3, invalid=3)),
    # nine hashes from the gzip stream; one line that is no indicator
    "hashes.txt.gz": ("completed", counts(9, ignored=1)),
    # a PDF: unsupported format, nothing read
    "report.pdf": ("failed", counts(0)),
    # one certificate thumbprint, action from blob metadata
    "signer.pem": ("completed", counts(1)),
    # domain, hash, URL; documentation IP:port invalid
    "threatfox-style.json": (CWE, counts(3, invalid=1)),
}


def test_every_sample_is_pinned() -> None:
    assert set(EXPECTED) == {p.name for p in SAMPLES.iterdir()}


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir()))
def test_each_sample_gives_its_report(sample: str, blob_service, app_env, make_runtime, defender, jobs_host) -> None:
    make_runtime()
    data = (SAMPLES / sample).read_bytes()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], f"drop/{sample}", data, METADATA.get(sample))
    etag = bc.get_blob_properties().etag
    deliver(bc, app_env, jobs_host)
    rep = report(blob_service, app_env, f"drop/{sample}")
    assert rep["schemaVersion"] == 1
    assert rep["source"]["container"] == app_env["INDICATORS_CONTAINER"]
    assert rep["source"]["name"] == f"drop/{sample}"
    assert rep["source"]["etag"] == etag.strip('"')
    assert rep["source"]["size"] == len(data)
    s = rep["summary"]
    assert s["total"] == len(rep["indicators"])
    assert s["total"] == sum(s[k] for k in ("submitted", "unchanged", "duplicate", "failed", "invalid", "skipped"))
    got = (rep["status"], {k: s[k] for k in ("submitted", "duplicate", "failed", "invalid", "skipped", "ignoredLines")})
    assert got == EXPECTED[sample]
    assert rep["source"]["format"]
    if rep["status"] == "failed":
        assert "unsupported format" in rep["errors"][0]["message"]
    # Every submitted entry has the id Defender gave it.
    stored = {i["id"] for i in defender.admin.indicators()}
    assert {e["id"] for e in rep["indicators"] if e["status"] == "submitted"} <= stored
    assert s["apiCalls"] == len(import_calls(defender))
    # The input is untouched.
    assert bc.get_blob_properties().etag == etag
    csv_text = blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], f"drop/{sample}.report.csv").download_blob()
    assert csv_text.readall().decode().count("\r\n") == s["total"] + 1
    # [html] the page beside them, with the same totals.
    page = blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], f"drop/{sample}.report.html").download_blob()
    text = page.readall().decode()
    assert f'id="count-total" title="indicator entries read"><span class="n">{s["total"]:,}</span>' in text
    assert all("code" in e for e in rep["indicators"])


def test_same_event_twice_submits_once(blob_service, app_env, make_runtime, defender, jobs_host) -> None:
    make_runtime()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "twice.txt", "\n".join(hashes(5, "twice")).encode())
    deliver(bc, app_env, jobs_host)
    first = report(blob_service, app_env, "twice.txt")
    deliver(bc, app_env, jobs_host)
    assert len(import_calls(defender)) == 1
    assert report(blob_service, app_env, "twice.txt") == first  # the complete report was left alone


def test_same_event_concurrently_submits_once(blob_service, app_env, make_runtime, defender, jobs_host) -> None:
    make_runtime()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "burst.txt", "\n".join(hashes(5, "burst")).encode())
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            deliver(bc, app_env, jobs_host)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(import_calls(defender)) == 1
    assert report(blob_service, app_env, "burst.txt")["summary"]["submitted"] == 5


def test_two_files_at_once_take_turns_within_the_rate_limit(
    blob_service, app_env, make_runtime, defender, jobs_host, monkeypatch
) -> None:
    """Two drops at the same time: one import after the other (no interleaved calls), never more than
    MAX_CALLS_PER_MINUTE calls in any window (emulator and app on a 60x clock: a window is 1 s)."""
    defender.configure(time_scale=60)
    make_runtime(time_scale=60, BATCH_SIZE="2", MAX_CALLS_PER_MINUTE="3")
    names = {"a.txt": hashes(6, "file-a"), "b.txt": hashes(6, "file-b")}
    clients = {
        n: upload(blob_service, app_env["INDICATORS_CONTAINER"], n, "\n".join(v).encode()) for n, v in names.items()
    }
    monkeypatch.setattr(worker, "CONTENTION_DELAY_SECONDS", 0.5)
    threads = [threading.Thread(target=deliver, args=(bc, app_env)) for bc in clients.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    jobs_host.drain()
    calls = import_calls(defender)
    assert len(calls) == 6 and all(c["status"] == 200 for c in calls)  # no 429: pacing kept us inside
    times = sorted(c["monotonic"] for c in calls)
    assert all(times[i + 3] - times[i] >= 1.0 for i in range(len(times) - 3))
    # No interleaving: Defender ids are handed out in arrival order; each file's ids form one run.
    ids = {n: sorted(int(e["id"]) for e in report(blob_service, app_env, n)["indicators"]) for n in names}
    a, b = ids["a.txt"], ids["b.txt"]
    assert max(a) < min(b) or max(b) < min(a)


def test_reupload_is_imported_again_and_replaces_the_report(
    blob_service, app_env, make_runtime, defender, jobs_host
) -> None:
    make_runtime()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "feed.txt", "\n".join(hashes(3, "v1")).encode())
    deliver(bc, app_env, jobs_host)
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "feed.txt", "\n".join(hashes(4, "v2")).encode())
    deliver(bc, app_env, jobs_host)
    rep = report(blob_service, app_env, "feed.txt")
    assert len(import_calls(defender)) == 2
    assert rep["source"]["etag"] == bc.get_blob_properties().etag.strip('"')
    assert [e["indicatorValue"] for e in rep["indicators"]] == hashes(4, "v2")


def test_defender_down_for_good_gives_a_complete_failed_report(
    blob_service, app_env, make_runtime, defender, jobs_host
) -> None:
    """Retried on JOB_RETRY_SCHEDULE_MINUTES until JOB_RETRY_MAX_HOURS; then final: every entry failed, why."""
    make_runtime(JOB_RETRY_MAX_HOURS="0.0006")  # about 2 s: two scheduled retries of 1.2 s, then given up
    defender.add_fault(kind="status", status=503, count=500, path="/api/indicators/import")
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "down.txt", "\n".join(hashes(3, "down")).encode())
    etag = bc.get_blob_properties().etag
    deliver(bc, app_env, jobs_host)  # ends cleanly: no exception for the host to retry
    rep = report(blob_service, app_env, "down.txt")
    assert rep["status"] == "failed"
    assert [e["status"] for e in rep["indicators"]] == ["failed"] * 3
    assert all("retries given up" in e["reason"] for e in rep["indicators"])
    assert jobs_host.failures == 0 and jobs_host.poisoned == 0  # retried on a schedule, not by redelivery
    assert len(import_calls(defender)) >= 4  # two attempts a run, at least two runs
    assert bc.get_blob_properties().etag == etag  # input untouched
    assert bc.download_blob().readall() == "\n".join(hashes(3, "down")).encode()


def test_identity_endpoint_down_gives_a_failed_report(blob_service, app_env, make_runtime, identity, jobs_host) -> None:
    make_runtime(JOB_RETRY_MAX_HOURS="0.0006")
    identity.admin.fail_next(count=500, status=500, message="identity endpoint broken")
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "noid.txt", "\n".join(hashes(2, "noid")).encode())
    deliver(bc, app_env, jobs_host)
    rep = report(blob_service, app_env, "noid.txt")
    assert rep["status"] == "failed"
    assert {e["status"] for e in rep["indicators"]} == {"failed"}


def test_bad_metadata_gives_a_failed_report_naming_the_key(
    blob_service, app_env, make_runtime, defender, jobs_host
) -> None:
    make_runtime()
    bc = upload(
        blob_service, app_env["INDICATORS_CONTAINER"], "meta.txt", b"evil.example.com\n", {"severity": "Severe"}
    )
    deliver(bc, app_env, jobs_host)
    rep = report(blob_service, app_env, "meta.txt")
    assert rep["status"] == "failed"
    assert "severity" in rep["errors"][0]["message"]
    assert import_calls(defender) == []


def test_metadata_overrides_apply(blob_service, app_env, make_runtime, defender, jobs_host) -> None:
    make_runtime()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "dry.txt", b"evil.example.com\n", {"dry_run": "true"})
    deliver(bc, app_env, jobs_host)
    rep = report(blob_service, app_env, "dry.txt")
    assert rep["dryRun"] is True
    assert [(e["status"], e["reason"]) for e in rep["indicators"]] == [("skipped", "dry run")]
    assert import_calls(defender) == []


def test_blob_outside_the_watched_container_is_not_imported(
    blob_service, app_env, make_runtime, defender, jobs_host
) -> None:
    make_runtime()
    bc = upload(blob_service, app_env["REPORTS_CONTAINER"], "x.txt", b"evil.example.com\n")
    deliver(bc, app_env, jobs_host)
    assert import_calls(defender) == []


def test_handle_blob_itself_refuses_blobs_outside_the_watched_container(
    blob_service, app_env, make_runtime, defender, jobs_host
) -> None:
    """A report (or lock) blob handed to the handler directly — a misrouted Event Grid subscription, a test
    harness — is never imported: importing a report would write a report of the report, and so on."""
    make_runtime()
    for container in (app_env["REPORTS_CONTAINER"], app_env["LOCK_CONTAINER"]):
        if not blob_service.get_container_client(container).exists():
            blob_service.create_container(container)
        bc = upload(blob_service, container, "x.txt", b"evil.example.com\n")
        run = import_now(bc, runtime=get_runtime(), host=jobs_host)
        assert run.status is None and run.report_json == ""
    assert import_calls(defender) == []
    reports = blob_service.get_container_client(app_env["REPORTS_CONTAINER"])
    assert sorted(b.name for b in reports.list_blobs()) == ["x.txt"]


def test_lock_held_elsewhere_waits_without_burning_a_dequeue(
    blob_service, app_env, make_runtime, defender, jobs_host, monkeypatch
) -> None:
    """Contention rings the doorbell again later and the invocation succeeds: no redelivery, no report until
    the job ran; it runs once the other holder is done."""
    monkeypatch.setattr(worker, "CONTENTION_DELAY_SECONDS", 0.5)
    rt = make_runtime()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "busy.txt", b"evil.example.com\n")
    other = runtime.Runtime.from_env(app_env)
    report_blob = blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], "busy.txt.report.json")
    with other.lock.hold(timeout=5):
        run = blob_import.handle_blob(bc, runtime=rt)
        time.sleep(2.0)  # several doorbells answered meanwhile
        assert not report_blob.exists()
        record = rt.jobs.get(run.job)[0]
        assert record.state.value == "queued" and record.attempt == 0
    jobs_host.drain()
    assert rt.jobs.get(run.job)[0].state.value == "completed"
    assert jobs_host.failures == 0 and jobs_host.invocations >= 3
    assert report_blob.exists()


def _peak_for(size_mb: int, tmp: Path, blob_service: Any, app_env: dict[str, str], host: Any, gz: bool = False) -> int:
    # Mostly comment lines plus the same few indicators: the input grows, the indicator set does not.
    values = "\n".join(public_ip(i) for i in range(200)) + "\n"
    filler = "# " + "x" * 1021 + "\n"
    data = (values + filler * (size_mb * 1024)).encode()
    name = f"big-{size_mb}.txt"
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], name, data, {"dry_run": "true"})
    del data
    tracemalloc.start()
    try:
        import_now(bc, runtime=get_runtime(), host=host)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rep = report(blob_service, app_env, name)
    assert rep["summary"]["skipped"] == 200
    assert rep["source"]["size"] >= size_mb * 1024 * 1024
    return peak


def test_memory_does_not_grow_with_the_input(blob_service, app_env, make_runtime, tmp_path, jobs_host) -> None:
    make_runtime()
    small = _peak_for(5, tmp_path, blob_service, app_env, jobs_host)
    large = _peak_for(50, tmp_path, blob_service, app_env, jobs_host)
    assert large < 30 * 1024 * 1024, f"peak {large / 2**20:.1f} MB for a 50 MB input"
    assert large - small < 8 * 1024 * 1024, f"peak grew from {small / 2**20:.1f} MB to {large / 2**20:.1f} MB"


def test_gzip_is_read_as_a_stream(blob_service, app_env, make_runtime, defender, jobs_host) -> None:
    make_runtime()
    data = gzip.compress(("\n".join(hashes(3, "gz")) + "\n").encode())
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "in/list.txt.gz", data)
    deliver(bc, app_env, jobs_host)
    rep = report(blob_service, app_env, "in/list.txt.gz")
    assert rep["summary"]["submitted"] == 3


class ReplacedMidRead:
    """A BlobClient stand-in that lets a new version be uploaded before range request number `at`.

    A blob larger than the room left is read twice: the head (request 1), the steward's ranking pass
    (requests 2 to 5 for four ranges), then the processing pass goes on from its first range (request 6).
    """

    def __init__(self, real: Any, new_data: bytes, *, at: int = 6) -> None:
        self._real = real
        self._new = new_data
        self._at = at
        self._reads = 0
        self.container_name = real.container_name
        self.blob_name = real.blob_name

    def get_blob_properties(self) -> Any:
        return self._real.get_blob_properties()

    def download_blob(self, **kw: Any) -> Any:
        self._reads += 1
        if self._reads == self._at:
            self._real.upload_blob(self._new, overwrite=True)
        return self._real.download_blob(**kw)


def replace_in_worker(rt: Any, bc: Any, new_data: bytes, *, at: int) -> None:
    """The worker opens the blob through the runtime's service: hand it the stand-in for this blob."""
    real = rt.service.get_blob_client

    def get_blob_client(container: str, blob: str) -> Any:
        client = real(container, blob)
        return ReplacedMidRead(client, new_data, at=at) if blob == bc.blob_name else client

    rt.service.get_blob_client = get_blob_client


def test_blob_replaced_while_read_gives_a_failed_report(blob_service, app_env, make_runtime, defender, jobs_host):
    rt = make_runtime()
    lines = "\n".join(public_ip(i) for i in range(100)) + "\n"
    data = (lines + ("# " + "y" * 1021 + "\n") * 3 * 1024).encode()  # > 3 ranges of 1 MB
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "moving.txt", data)
    old_etag = bc.get_blob_properties().etag
    replace_in_worker(rt, bc, b"new.example.com\n", at=6)
    run = import_now(bc, runtime=rt, host=jobs_host)
    rep = report(blob_service, app_env, "moving.txt")
    assert run.status == rep["status"] == "failed"
    assert "changed while it was read" in rep["errors"][0]["message"]
    assert rep["source"]["etag"] == old_etag.strip('"')
    # What was read before the change stays reported as it happened (those entries did reach Defender).
    assert [e["indicatorValue"] for e in rep["indicators"]] == [public_ip(i) for i in range(100)]


def test_blob_replaced_during_the_ranking_pass_sends_nothing(blob_service, app_env, make_runtime, defender, jobs_host):
    """A change seen before the processing pass started: a `failed` report with no entries, no import call."""
    rt = make_runtime()
    lines = "\n".join(public_ip(i) for i in range(100)) + "\n"
    data = (lines + ("# " + "y" * 1021 + "\n") * 3 * 1024).encode()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "moving.txt", data)
    calls0 = len(import_calls(defender))
    replace_in_worker(rt, bc, b"new.example.com\n", at=3)
    run = import_now(bc, runtime=rt, host=jobs_host)
    rep = report(blob_service, app_env, "moving.txt")
    assert run.status == rep["status"] == "failed"
    assert "changed while it was read" in rep["errors"][0]["message"]
    assert "imported by its own event" in rep["errors"][0]["message"]
    assert rep["indicators"] == [] and rep["summary"]["apiCalls"] == 0
    assert len(import_calls(defender)) == calls0


def test_deleted_blob_is_nothing_to_do(blob_service, app_env, make_runtime, defender, jobs_host):
    rt = make_runtime()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "gone.txt", b"evil.example.com\n")
    bc.delete_blob()
    run = import_now(bc, runtime=rt, host=jobs_host)
    assert run.status is None
    assert import_calls(defender) == []


def test_zero_byte_blob_gives_a_failed_report_saying_so(blob_service, app_env, make_runtime, defender, jobs_host):
    """An empty drop is a mistake worth seeing: a `failed` report ("the file is empty"), no Defender call."""
    make_runtime()
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "empty/feed.csv", b"")
    deliver(bc, app_env, jobs_host)
    rep = report(blob_service, app_env, "empty/feed.csv")
    assert rep["status"] == "failed"
    assert rep["errors"] == [{"message": "the file is empty"}]
    assert rep["summary"]["total"] == 0
    assert import_calls(defender) == []


def test_the_html_page_is_uploaded_with_its_content_type_before_the_json(blob_service, app_env, make_runtime) -> None:
    """[html] `indicator-reports/<path>.report.html` beside the JSON and CSV, `text/html; charset=utf-8`, uploaded
    after the CSV and before the JSON (the completion marker); a page, not a template: the input's values in it
    are text."""
    make_runtime()
    hostile = "\n".join(hashes(3, "page")) + '\n<script>alert(1)</script>\n"><img src=x onerror=alert(1)>\n'
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "pages/feed <b>.txt", hostile.encode())
    deliver(bc, app_env)
    reports = blob_service.get_container_client(app_env["REPORTS_CONTAINER"])
    names = {n: f"pages/feed <b>.txt.report.{n}" for n in ("csv", "html", "json")}
    props = {n: reports.get_blob_client(name).get_blob_properties() for n, name in names.items()}
    assert props["html"].content_settings.content_type == "text/html; charset=utf-8"
    assert props["csv"].last_modified <= props["html"].last_modified <= props["json"].last_modified
    page = reports.download_blob(names["html"]).readall().decode()
    rep = report(blob_service, app_env, "pages/feed <b>.txt")
    assert rep["summary"]["submitted"] == 3
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "feed &lt;b&gt;.txt" in page
    assert page.count('<span class="n">3</span><span class="k">submitted</span>') == 1
