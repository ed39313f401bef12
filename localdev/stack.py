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
from dataclasses import dataclass, field
from pathlib import Path

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
