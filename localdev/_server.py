"""The HTTP plumbing both emulators share: a loopback ``ThreadingHTTPServer`` on its own thread, a small
request/reply model, and transport-level misbehaviour (delay, connection reset, close without answer).

Emulators subclass :class:`HttpEmulator` and implement ``dispatch(request) -> Reply``; they never touch
sockets themselves.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import sys
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
JSON = "application/json; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Reply:
    """What to send back. ``then`` picks how the exchange ends: a normal answer, a TCP reset
    (SO_LINGER 0, the client sees "connection reset"), or a close with no answer at all.
    ``delay`` seconds pass first (cut short when the emulator stops)."""

    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes -> sent as is; None -> empty body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON
    delay: float = 0.0
    then: Literal["respond", "reset", "close"] = "respond"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: HttpEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API behind a load balancer
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server_version = "localdev"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.request)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.request)
        try:
            super().finish()
        except OSError:
            pass  # the socket was reset or closed on purpose

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the emulators keep their own call logs

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        emulator = self.server.emulator
        try:
            reply = emulator.dispatch(request)
        except Exception as exc:  # an emulator bug must show up as a 500, not a hung client
            reply = Reply(500, {"error": {"code": "InternalServerError", "message": repr(exc), "target": ""}})
        if reply.delay > 0 and emulator.stopping.wait(reply.delay):
            reply.then = "close"
        if reply.then == "reset":
            self.close_connection = True
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()
            return
        if reply.then == "close":
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = reply.payload()
        self.send_response(reply.status)
        if payload or reply.body is not None:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)


class HttpEmulator:
    """Base of both emulators: ``start() -> base_url``, ``stop()``, context manager. The constructor does
    no I/O; ``start`` binds (port 0 = a free port) and serves on a daemon thread."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"emulators listen on loopback only, not {host!r}")
        self.host = host
        self.port = port
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def dispatch(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        address = self._server.server_address
        host, port = str(address[0]), int(address[1])
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> str:
        if self._server is not None:
            return self.base_url
        self.stopping.clear()
        host = "127.0.0.1" if self.host == "localhost" else self.host
        self._server = _Server((host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stopping.set()  # wakes delayed replies
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:  # idle keep-alive connections would otherwise keep their threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> HttpEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def base_arg_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--signing-key", default=None, help="HMAC key shared by both emulators (default: built in)")
    return parser


def serve_until_signalled(emulator: HttpEmulator) -> None:
    """CLI mode: print where we listen (first stdout line, flushed) and serve until SIGTERM/SIGINT."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    url = emulator.start()
    print(f"listening on {url}", flush=True)
    try:
        done.wait()
    finally:
        emulator.stop()
    sys.exit(0)
