"""`make demo`: the whole app on the local stack, start to finish, in well under a minute.

1. starts Azurite and the Defender and managed identity emulators on free loopback ports;
2. creates the containers and uploads every file of `samples/` (with blob metadata where a file
   needs it, e.g. the certificate's action);
3. delivers each file's Event Grid `BlobCreated` event to the blob function as the host would; each becomes a
   queued job that the queue worker (`run_import_jobs`, driven by `localdev.host` by the host's rules) runs —
   one file meets a short injected Defender outage and is imported on its scheduled retry;
4. calls the HTTP import with a small request shaped like a Logic Apps HTTP action's (answered 200), and with a
   large one against a slow Defender (answered 202 + Location, then polled to its 200);
5. prints a table per input, a few rejected rows with their reasons, and where the reports are;
6. copies every report (JSON, CSV and the HTML page) from Azurite to `out/demo-reports/`, to open after the demo;
7. stops everything it started — also on Ctrl-C or an error.

The Defender emulator runs time-scaled (a rate-limit minute lasts one second) and the app paces
itself to the same clock, so pacing is real but quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import mimetypes
import os
import shutil
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localdev.stack import (
    REPO,
    LocalStack,
    blob_created_event,
    deliver_blob_created,
    scaled_defender_factory,
    start_stack,
)

SAMPLES = REPO / "samples"
REPORTS_DIR = REPO / "out" / "demo-reports"  # git-ignored (/out/)
TIME_SCALE = 60.0
# Per-file overrides, as a user would set them as blob metadata (CONTRACT.md "Per-file overrides").
METADATA: Mapping[str, Mapping[str, str]] = {
    "signer.pem": {"action": "BlockAndRemediate", "title": "Signer of the dropper"},
    "c2-list.txt": {"action": "Block", "severity": "High", "expiration_days": "30"},
}
STATUSES = ("submitted", "unchanged", "duplicate", "failed", "invalid", "skipped")
OUTAGE_FILE = "c2-list.txt"  # meets a short injected Defender outage: imported on its scheduled retry

LOGIC_APP_REQUEST = {
    # What a Logic Apps HTTP action sends: method POST, the function key as `code`, a JSON body.
    "method": "POST",
    "uri": "https://<app>.azurewebsites.net/api/indicators/import?code=<function key>&severity=High",
    "headers": {"Content-Type": "application/json"},
    "body": {
        "Indicators": [
            {
                "indicatorValue": "phish-kit.example.com",
                "indicatorType": "DomainName",
                "action": "Block",
                "title": "Phishing kit host",
                "description": "Reported by the mail gateway",
            },
            {"indicatorValue": "hxxps://phish-kit.example[.]com/o365/login.php", "action": "Warn"},
            {"indicatorValue": "0f343b0931126a20f133d67c2b018a3b5e2f6a2b1d0e4b2c9d1e5f6a7b8c9d0e"},
            {"indicatorValue": "phish-kit.example.com", "indicatorType": "DomainName", "title": "Same again"},
            {"indicatorValue": "10.1.2.3", "indicatorType": "IpAddress", "title": "Internal address"},
        ]
    },
}


def main() -> int:
    logging.basicConfig(level=logging.ERROR)  # the demo prints what happens; the app's warnings would repeat it
    t0 = time.monotonic()
    print("Starting Azurite and the Defender / managed identity emulators on loopback ...", flush=True)
    stack = start_stack(time_scale=TIME_SCALE)
    saved_env = dict(os.environ)
    try:
        saved = run(stack)
        print(f"\nDone in {time.monotonic() - t0:.1f} s. Stopping the stack.")
        print_saved(saved)
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted: stopping the stack.", file=sys.stderr)
        return 130
    finally:
        from shared.app import runtime

        runtime.set_runtime(None)
        os.environ.clear()
        os.environ.update(saved_env)
        stack.stop()


def run(stack: LocalStack) -> list[Path]:
    from azure.storage.blob import BlobServiceClient

    import function_app
    from shared.app import runtime
    from shared.storage.blobs import ensure_containers

    env = stack.env(MAX_CALLS_PER_MINUTE="30", BATCH_SIZE="500", HTTP_SYNC_SECONDS="6",
                    JOB_RETRY_SCHEDULE_MINUTES="0.05")  # a retry 3 s after an outage  # fmt: skip
    os.environ.update(env)  # azure-identity reads IDENTITY_ENDPOINT / IDENTITY_HEADER from the environment
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
        os.environ.pop(name, None)
    rt = runtime.Runtime.from_env(os.environ, defender_factory=scaled_defender_factory(TIME_SCALE))
    runtime.set_runtime(rt)
    settings = rt.settings
    service = BlobServiceClient.from_connection_string(env["IndicatorStorage"])
    ensure_containers(service, [settings.indicators_container, settings.reports_container, rt.options.lock_container])
    host = start_worker(rt, env)
    print(f"  Azurite blob endpoint   {stack.azurite.blob_endpoint}")
    print(f"  Defender emulator       {stack.defender.base_url}  (rate-limit minute = {60 / TIME_SCALE:.0f} s)")
    print(f"  identity emulator       {stack.identity.endpoint}")

    files = sorted(p for p in SAMPLES.iterdir() if p.is_file())
    print(f"\nUploading {len(files)} sample files to '{settings.indicators_container}' and delivering their events:")
    for path in files:
        _drop_sample(stack, rt, env, service, host, path)
    rows, rejected = _read_reports(service, settings.reports_container, files)

    print("\nHTTP import, as a Logic Apps HTTP action would send it:")
    print("  " + json.dumps({k: LOGIC_APP_REQUEST[k] for k in ("method", "uri", "headers")}))
    http_report = call_http(function_app, LOGIC_APP_REQUEST)
    print("\nA large HTTP import (1,500 indicators) against a Defender whose import calls take 3 s:")
    stack.defender.admin.configure(import_seconds=3.0)
    call_large_http(function_app)
    stack.defender.admin.configure(import_seconds=0.0)
    host.stop()

    print_table(rows, http_report)
    print_rejected(rejected)
    print_where(stack, settings.reports_container, [n for n, _ in rows], http_report)
    return save_reports(service.get_container_client(settings.reports_container), REPORTS_DIR)


class _Context:
    """The part of func.Context the HTTP function uses."""

    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


def _drop_sample(stack: LocalStack, rt: Any, env: dict[str, str], service: Any, host: Any, path: Path) -> None:
    """Upload one sample file, deliver its BlobCreated event and wait for its import (the outage file meets an
    injected Defender outage and is imported on its scheduled retry)."""
    from azure.storage.blob import ContentSettings

    settings = rt.settings
    container = service.get_container_client(settings.indicators_container)
    meta = dict(METADATA.get(path.name, {}))
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    with path.open("rb") as f:
        bc = container.upload_blob(
            path.name, f, overwrite=True, metadata=meta or None, content_settings=ContentSettings(content_type=ctype)
        )
    props = bc.get_blob_properties()
    event = blob_created_event(
        settings.indicators_container, path.name, etag=props.etag, size=props.size, url=bc.url, content_type=ctype
    )
    started = time.monotonic()
    outage = path.name == OUTAGE_FILE
    if outage:
        stack.defender.admin.add_fault(kind="status", status=503, count=10_000, path="/api/indicators/import")
    deliver_blob_created(event, env["IndicatorStorage"], watched_container=settings.indicators_container)
    if outage:
        wait_for_retry(rt, settings.indicators_container, path.name, props.etag)
        stack.defender.admin.clear_faults()
    host.drain(120)
    extra = f"  metadata {meta}" if meta else ""
    print(f"  {path.name:<24} imported in {time.monotonic() - started:4.2f} s{extra}")


def _read_reports(
    service: Any, reports_container: str, files: list[Path]
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """Each sample's JSON report, and its rejected entries and file-level errors for the listing."""
    reports = service.get_container_client(reports_container)
    rows = []
    rejected: list[tuple[str, dict[str, Any]]] = []
    for path in files:
        report = json.loads(reports.download_blob(f"{path.name}.report.json").readall())
        rows.append((path.name, report))
        rejected += [(path.name, e) for e in report["indicators"] if e["status"] in ("invalid", "failed")]
        rejected += [(path.name, {"line": err.get("line"), "reason": err["message"], "status": "file error",
                                  "indicatorValue": ""}) for err in report["errors"]]  # fmt: skip
    return rows, rejected


def call_http(function_app: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    import azure.functions as func

    req = func.HttpRequest(
        method=request["method"],
        url="http://127.0.0.1/api/indicators/import",
        headers=dict(request["headers"]),
        params={"severity": "High"},
        body=json.dumps(request["body"]).encode(),
    )
    resp = asyncio.run(function_app.import_indicators(req, _Context()))
    answer = json.loads(resp.get_body())
    print(f"  -> HTTP {resp.status_code}; report {answer.get('report')}")
    for entry in answer.get("value", []):
        state = "failed " if entry["isFailed"] else "ok     "
        print(f"     {state} id={entry['id']!s:<6} {entry['indicator'][:60]:<60} {entry['failureReason'] or ''}")
    return answer


def start_worker(rt: Any, env: Mapping[str, str]) -> Any:
    """The queue worker, driven in the background by the host stand-in (the .NET host cannot run here)."""
    import function_app
    from localdev.host import QueueHost, plain_queue

    queue = plain_queue(env["IndicatorStorage"], rt.options.jobs_queue)
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    return QueueHost(queue, function_app.run_import_jobs, max_dequeue_count=rt.options.max_dequeue_count,
                     visibility_timeout=1.0, hold_seconds=30).start()  # fmt: skip


def wait_for_retry(rt: Any, container: str, name: str, etag: str) -> None:
    """Show the job of a file that met the outage: `retrying`, with its next attempt."""
    from shared.core.jobs import blob_job_id

    job_id = blob_job_id(container, name, etag)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        found = rt.jobs.get(job_id)
        if found is not None and found[0].state.value == "retrying":
            record = found[0]
            print(f"  {name:<24} met a Defender outage (injected): job {record.state.value}, attempt "
                  f"{record.attempt}, next attempt at {record.next_attempt_at}; the outage ends now")  # fmt: skip
            return
        time.sleep(0.1)


def call_large_http(function_app: Any) -> None:
    import azure.functions as func

    values = [hashlib.sha256(f"demo-large-{i}".encode()).hexdigest() for i in range(1500)]
    body = json.dumps({"Indicators": [{"indicatorValue": v, "action": "Audit"} for v in values]}).encode()
    req = func.HttpRequest(method="POST", url="http://127.0.0.1:7071/api/indicators/import?code=demo-key",
                           headers={"Content-Type": "application/json"}, params={"code": "demo-key"},
                           body=body)  # fmt: skip
    started = time.monotonic()
    resp = asyncio.run(function_app.import_indicators(req, _Context()))
    pending = json.loads(resp.get_body())
    location = resp.headers.get("Location", "")
    print(f"  -> HTTP {resp.status_code} after {time.monotonic() - started:.1f} s: state {pending.get('state')}, "
          f"{pending.get('entries')}; Retry-After {resp.headers.get('Retry-After')} s")  # fmt: skip
    print(f"     Location: {location}")
    job_id = location.split("?", 1)[0].rsplit("/", 1)[-1]
    polls = 0
    while resp.status_code == 202:
        time.sleep(1.0)
        polls += 1
        req = func.HttpRequest(method="GET", url=location, headers={}, params={"code": "demo-key"}, body=b"",
                               route_params={"id": job_id})  # fmt: skip
        resp = asyncio.run(function_app.import_job_status(req))
    answer = json.loads(resp.get_body())
    print(f"  -> after {polls} polls: HTTP {resp.status_code}, {len(answer['value'])} entries in input order, "
          f"summary {answer['summary']['submitted']} submitted, {answer['summary']['apiCalls']} import calls, "
          f"{time.monotonic() - started:.1f} s in all")  # fmt: skip


def print_table(rows: list[tuple[str, dict[str, Any]]], http_answer: dict[str, Any]) -> None:
    head = f"{'input':<26}{'format':<15}{'status':<23}" + "".join(f"{s:>10}" for s in STATUSES) + f"{'ignored':>9}"
    print("\nResults per input (counts by status):")
    print(head)
    print("-" * len(head))
    for name, report in rows:
        s = report["summary"]
        fmt = report["source"].get("format") or "-"
        print(
            f"{name:<26}{fmt:<15}{report['status']:<23}"
            + "".join(f"{s[k]:>10}" for k in STATUSES)
            + f"{s['ignoredLines']:>9}"
        )
    s = http_answer.get("summary") or {}
    if s:
        print(
            f"{'HTTP import':<26}{'json':<15}{http_answer.get('status', '-'):<23}"
            + "".join(f"{s.get(k, 0):>10}" for k in STATUSES)
            + f"{s.get('ignoredLines', 0):>9}"
        )


def print_rejected(rejected: list[tuple[str, dict[str, Any]]], limit: int = 8) -> None:
    print(f"\nA few rejected rows (of {len(rejected)}), with their reasons:")
    seen_files: dict[str, int] = {}
    shown = 0
    for name, e in rejected:
        if seen_files.get(name, 0) >= 2 or shown >= limit:
            continue
        seen_files[name] = seen_files.get(name, 0) + 1
        shown += 1
        where = f"{name}:{e.get('line')}" if e.get("line") else name
        value = (e.get("indicatorValue") or "")[:40]
        print(f"  {where:<28} {e['status']:<10} {value:<40} {e.get('reason')}")


def save_reports(container: Any, folder: Path) -> list[Path]:
    """Every report blob of the demo, copied to `folder` (emptied first) under its blob name."""
    if folder.exists():
        shutil.rmtree(folder)
    saved = []
    for blob in container.list_blobs():
        target = folder / blob.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(container.download_blob(blob.name).readall())
        saved.append(target)
    return saved


def print_where(stack: LocalStack, container: str, names: list[str], http_answer: dict[str, Any]) -> None:
    print(f"\nReports are in the '{container}' container (Azurite, {stack.azurite.blob_endpoint}):")
    for n in names[:3]:
        print(f"  {container}/{n}.report.json   .report.csv   .report.html")
    print(f"  ... three per input; the HTTP import's: {container}/{http_answer.get('report')}")
    print(
        "  The demo's Azurite runs in memory and is gone when the demo ends; the same reports land in\n"
        "  your storage account in Azure. The CLI writes them to disk: python -m shared validate samples/*"
    )


def print_saved(saved: list[Path]) -> None:
    """Where the copies of the reports are, and one page to open first."""
    pages = sorted(p for p in saved if p.name.endswith(".report.html"))
    if not pages:
        return
    where = REPORTS_DIR.relative_to(REPO) if REPORTS_DIR.is_relative_to(REPO) else REPORTS_DIR
    first = next((p for p in pages if p.name.startswith("c2-list")), pages[0])
    print(f"The {len(saved)} report files of the demo are in {where}/ (JSON, CSV and an HTML page per input).")
    print(f"Open a page in a browser, e.g. {where / first.relative_to(REPORTS_DIR)}")


if __name__ == "__main__":
    sys.exit(main())
