"""The local stack: Azurite (blob, queue, table) on free loopback ports, started and stopped by PID.

Used by `localdev.demo` and by the test fixtures in `tests/support/azurite.py`. Azurite is the pinned
npm package in package.json (`npm ci` installs it); it has no Event Grid, so callers deliver
`BlobCreated` events to the blob function themselves (local-tooling.md §2, §4).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / "node_modules" / ".bin" / "azurite"

# Azurite's well-known development account: public, documented, and only ever used on loopback.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (bind to port 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts on 127.0.0.1:port; fail early if `proc` died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen, *, grace: float = 5.0) -> None:
    """Terminate one process we started, by its PID; kill it if it does not go in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


@dataclass
class Azurite:
    """A running Azurite process and how to reach it."""

    proc: subprocess.Popen
    blob_port: int
    queue_port: int
    table_port: int
    location: Path | None = None
    _own_location: bool = field(default=False, repr=False)

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """A full connection string (the `UseDevelopmentStorage=true` shortcut assumes fixed ports)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{DEV_ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{DEV_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{DEV_ACCOUNT};"
        )

    def stop(self) -> None:
        stop_process(self.proc)
        if self._own_location and self.location is not None:
            shutil.rmtree(self.location, ignore_errors=True)


def start_azurite(*, location: Path | None = None, in_memory: bool = False, timeout: float = 30.0) -> Azurite:
    """Start Azurite with all three services on free loopback ports and wait until they accept.

    `--skipApiVersionCheck` because the current SDKs send a newer `x-ms-version` than Azurite
    3.35 knows (local-tooling.md §2); `--disableTelemetry` so it makes no outside calls.
    """
    if not AZURITE_BIN.exists():
        raise FileNotFoundError(f"{AZURITE_BIN} is missing: run `npm ci` (or `make node`) first")
    ports = [free_port() for _ in range(3)]
    own = False
    args = [
        str(AZURITE_BIN),
        "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
        "--skipApiVersionCheck", "--disableTelemetry", "--silent",
    ]  # fmt: skip
    if in_memory:
        args.append("--inMemoryPersistence")
    else:
        if location is None:
            location = Path(tempfile.mkdtemp(prefix="azurite-"))
            own = True
        args += ["--location", str(location)]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    az = Azurite(proc, *ports, location=location, _own_location=own)
    try:
        for p in ports:
            wait_for_port(p, timeout=timeout, proc=proc)
    except BaseException:
        az.stop()
        raise
    return az


# --------------------------------------------------------------------------------------------------
# The whole local stack: Azurite + the Defender and managed identity emulators, and the app's settings.


@dataclass
class LocalStack:
    """Azurite and both emulators, running; `env()` gives the app settings that point the app at them."""

    azurite: Azurite
    defender: Any
    identity: Any
    time_scale: float = 1.0

    def env(self, **overrides: str) -> dict[str, str]:
        """App settings for the stack (a copy of local.settings.sample.json's shape, with live ports)."""
        env = {
            "IndicatorStorage": self.azurite.connection_string,
            "INDICATORS_CONTAINER": "indicators",
            "REPORTS_CONTAINER": "indicator-reports",
            "LOCK_CONTAINER": "indicator-locks",
            "STATE_CONTAINER": "indicator-state",
            # settings.py allows plain http on loopback only.
            "DEFENDER_API_URL": self.defender.base_url,
            "IDENTITY_ENDPOINT": self.identity.endpoint,
            "IDENTITY_HEADER": self.identity.identity_header,
        }
        env.update(overrides)
        return env

    def stop(self) -> None:
        errors: list[BaseException] = []
        for part in (self.defender, self.identity, self.azurite):
            try:
                part.stop()
            except BaseException as e:  # stop the others anyway
                errors.append(e)
        if errors:
            raise errors[0]


def start_stack(*, time_scale: float = 60.0) -> LocalStack:
    """Start Azurite (in memory) and both emulators on free loopback ports; stop what started on failure.

    `time_scale=60` makes the Defender emulator's rate-limit minute last one second; pair it with
    `scaled_defender_factory(time_scale)` so the app paces itself to the same clock.
    """
    from localdev.defender_emulator import DefenderEmulator
    from localdev.identity_emulator import IdentityEmulator

    started: list[Any] = []
    try:
        azurite = start_azurite(in_memory=True)
        started.append(azurite)
        defender = DefenderEmulator(time_scale=time_scale)
        defender.start()
        started.append(defender)
        identity = IdentityEmulator()
        identity.start()
        started.append(identity)
    except BaseException:
        for part in reversed(started):
            part.stop()
        raise
    return LocalStack(azurite, defender, identity, time_scale)


def scaled_defender_factory(time_scale: float) -> Any:
    """A Defender client factory whose pacing window is 60 s / time_scale (to match the emulator's clock)."""

    def factory(settings: Any) -> Any:
        from shared.defender import CallPacer, client_policy, make_client

        return make_client(
            settings,
            pacer=CallPacer(settings.max_calls_per_minute, 60.0 / time_scale),
            policy=client_policy(settings, backoff_factor=0.05, backoff_max=0.5, backoff_jitter=0.0),
        )

    return factory


# --------------------------------------------------------------------------------------------------
# Delivering Event Grid BlobCreated events the way the Functions host does.


def blob_created_event(container: str, name: str, *, etag: str, size: int, url: str, content_type: str) -> dict:
    """An Event Grid `Microsoft.Storage.BlobCreated` event (EventGridSchema), as the subscription sends it."""
    return {
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
        "Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": str(uuid.uuid4()),
        "data": {
            "api": "PutBlob",
            "eTag": etag,
            "contentType": content_type,
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": url,
            "sequencer": f"{time.time_ns():064d}",
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def subject_to_blob(subject: str) -> tuple[str, str]:
    """`/blobServices/default/containers/<c>/blobs/<path>` → (c, path)."""
    prefix = "/blobServices/default/containers/"
    if not subject.startswith(prefix) or "/blobs/" not in subject:
        raise ValueError(f"not a blob subject: {subject!r}")
    container, _, name = subject[len(prefix) :].partition("/blobs/")
    return container, name


def deliver_blob_created(event: dict, connection_string: str, *, watched_container: str) -> Any:
    """Do what the host does with a BlobCreated event: match the trigger path, build the BlobClient, call the function.

    The host's SDK-type binding hands the function an `azure.storage.blob.BlobClient` built from the
    trigger's connection (azurefunctions-extensions-bindings-blob `utils.service_client_factory`);
    events for other containers do not match `%INDICATORS_CONTAINER%/{name}` and are dropped.
    """
    from azure.storage.blob import BlobServiceClient

    import function_app

    if event.get("eventType") != "Microsoft.Storage.BlobCreated":
        return None
    container, name = subject_to_blob(event["subject"])
    if container != watched_container:
        return None
    client = BlobServiceClient.from_connection_string(connection_string).get_blob_client(container, name)
    return function_app.import_dropped_file(client)
