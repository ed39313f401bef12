"""A small stand-in for the Functions host's queue trigger (the .NET host cannot run here), following its
rules so the worker is exercised as it will be in Azure (azure-webjobs-sdk `QueueListener`/`QueueProcessor`):

- messages are base64 text (host.json `messageEncoding`); one that does not decode goes to the poison queue;
- `dequeue_count` is the queue's own count, handed to the function in `azure.functions.QueueMessage`;
- a message whose count already passed `maxDequeueCount` goes to `<queue>-poison` without calling the function;
  after a failed invocation it goes there when its count reached the maximum, else it becomes visible again
  after host.json's `visibilityTimeout` (the delay after a *failed* invocation);
- while the function runs, the host keeps the message invisible, renewing its hold (`hold_seconds`, half of it
  between renewals); a host that dies stops renewing, and the message reappears when the hold runs out
  (azure-webjobs-sdk #1040) — compressed here by a short `hold_seconds`;
- a successful invocation deletes the message.

`drain()` runs until the queue is empty (delayed doorbells included) and nothing is in flight; `start()` runs
the same loop in the background. `python -m localdev.host` runs a worker process (for kill -9 tests).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

Function = Callable[[Any], None]


class QueueHost:
    """Drives one queue-triggered function from a real (Azurite) queue."""

    def __init__(
        self,
        queue: Any,
        function: Function,
        *,
        max_dequeue_count: int = 5,
        visibility_timeout: float = 1.0,
        hold_seconds: float = 30.0,
        batch_size: int = 4,
        poll_interval: float = 0.05,
    ) -> None:
        # `queue` reads plain text (no decode policy): this class decodes base64 itself, as the host does.
        self.queue = queue
        self.poison = _sibling(queue, queue.queue_name + "-poison")
        self.function = function
        self.max_dequeue_count = max_dequeue_count
        self.visibility_timeout = visibility_timeout
        self.hold_seconds = hold_seconds
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.invocations = 0
        self.failures = 0
        self.poisoned = 0
        self._pool = ThreadPoolExecutor(max_workers=batch_size, thread_name_prefix="queue-host")
        self._in_flight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ one message

    def _handle(self, msg: Any) -> None:
        from azure.functions.queue import QueueMessage

        if msg.dequeue_count > self.max_dequeue_count:
            self._to_poison(msg)
            return
        try:
            body = base64.b64decode(msg.content, validate=True)
        except (binascii.Error, ValueError, TypeError):
            log.warning("message %s is not base64: moved to the poison queue", msg.id)
            self._to_poison(msg)
            return
        holding = threading.Event()
        renewer = threading.Thread(target=self._keep_hold, args=(msg, holding), daemon=True)
        renewer.start()
        try:
            self.function(QueueMessage(id=msg.id, body=body, dequeue_count=msg.dequeue_count,
                                       pop_receipt=msg.pop_receipt))  # fmt: skip
        except Exception:
            holding.set()
            renewer.join()
            self.failures += 1
            log.warning("invocation for message %s failed (dequeue count %d)", msg.id, msg.dequeue_count,
                        exc_info=True)  # fmt: skip
            if msg.dequeue_count >= self.max_dequeue_count:
                self._to_poison(msg)
            else:
                self.queue.update_message(msg, pop_receipt=msg.pop_receipt, visibility_timeout=self._seconds(
                    self.visibility_timeout))  # fmt: skip
            return
        finally:
            holding.set()
            self.invocations += 1
        renewer.join()
        self.queue.delete_message(msg, pop_receipt=msg.pop_receipt)

    def _keep_hold(self, msg: Any, done: threading.Event) -> None:
        """Renew the message's invisibility while the function runs (the host's in-flight hold)."""
        while not done.wait(self.hold_seconds / 2):
            try:
                receipt = self.queue.update_message(msg, pop_receipt=msg.pop_receipt,
                                                    visibility_timeout=self._seconds(self.hold_seconds))  # fmt: skip
                msg.pop_receipt = receipt.pop_receipt
            except Exception:  # the message may have been deleted meanwhile: nothing to hold
                return

    def _to_poison(self, msg: Any) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self.poison.create_queue()
        except ResourceExistsError:
            pass
        self.poison.send_message(msg.content)
        self.queue.delete_message(msg, pop_receipt=msg.pop_receipt)
        self.poisoned += 1

    @staticmethod
    def _seconds(value: float) -> int:
        return max(0, round(value))

    # ------------------------------------------------------------------------------ the loop

    def step(self) -> int:
        """Receive what is visible now (up to the free slots) and start it; the number started."""
        with self._lock:
            self._in_flight = {f for f in self._in_flight if not f.done()}
            free = self.batch_size - len(self._in_flight)
        if free <= 0:
            return 0
        started = 0
        for msg in self.queue.receive_messages(messages_per_page=free, max_messages=free,
                                               visibility_timeout=self._seconds(self.hold_seconds)):  # fmt: skip
            future = self._pool.submit(self._handle, msg)
            with self._lock:
                self._in_flight.add(future)
            started += 1
        return started

    def busy(self) -> bool:
        with self._lock:
            self._in_flight = {f for f in self._in_flight if not f.done()}
            return bool(self._in_flight)

    def idle(self) -> bool:
        """Nothing in flight and no message left, visible or delayed."""
        return not self.busy() and self.queue.get_queue_properties().approximate_message_count == 0

    def drain(self, timeout: float = 60.0) -> None:
        """Run until the queue is empty and nothing is in flight; raise TimeoutError after `timeout` s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._thread is None:
                self.step()
            if self.idle():
                return
            time.sleep(self.poll_interval)
        raise TimeoutError(f"the queue {self.queue.queue_name} was not drained within {timeout:g} s")

    def start(self) -> QueueHost:
        """Poll in the background (until `stop()`)."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    started = self.step()
                except Exception:  # the queue may be gone at the end of a test: keep polling until stopped
                    log.debug("queue host poll failed", exc_info=True)
                    started = 0
                if not started:
                    self._stop.wait(self.poll_interval)

        self._thread = threading.Thread(target=loop, name="queue-host-poll", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._pool.shutdown(wait=True)


def _sibling(queue: Any, name: str) -> Any:
    """Another queue of the same account, with the same credential."""
    from azure.storage.queue import QueueClient

    return QueueClient(queue.url.rsplit("/", 1)[0], name, credential=queue.credential)


def plain_queue(connection_string: str, name: str) -> Any:
    """A QueueClient that reads messages as the raw text the host sees (no decode policy)."""
    from azure.storage.queue import QueueClient

    return QueueClient.from_connection_string(connection_string, name)


@contextlib.contextmanager
def app_on_stack(
    *, time_scale: float = 1.0, paced_on_stack_clock: bool = False, **settings: str
) -> Iterator[tuple[Any, Any, Any, QueueHost]]:
    """The function app on the local stack, its queue worker driven by a QueueHost in the background:
    (function_app module, Runtime, LocalStack, host). `paced_on_stack_clock`: the app's Defender client paces
    itself on the emulator's `time_scale` clock. Everything started is stopped, os.environ restored."""
    from localdev.stack import start_stack

    stack = start_stack(time_scale=time_scale)
    saved = dict(os.environ)
    host: QueueHost | None = None
    try:
        env = stack.env(**settings)
        os.environ.update(env)
        import function_app
        from shared.app import runtime
        from shared.storage.blobs import ensure_containers

        factory = None
        if paced_on_stack_clock:
            from localdev.stack import scaled_defender_factory

            factory = scaled_defender_factory(time_scale)
        rt = runtime.Runtime.from_env(os.environ, defender_factory=factory)
        runtime.set_runtime(rt)
        ensure_containers(rt.service, [rt.settings.indicators_container, rt.settings.reports_container])
        queue = plain_queue(env["IndicatorStorage"], rt.options.jobs_queue)
        with contextlib.suppress(Exception):
            queue.create_queue()  # exists already
        host = QueueHost(queue, function_app.run_import_jobs, hold_seconds=60).start()
        yield function_app, rt, stack, host
    finally:
        if host is not None:
            host.stop()
        from shared.app import runtime

        runtime.set_runtime(None)
        os.environ.clear()
        os.environ.update(saved)
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    """A worker process: the app's `run_import_jobs` driven by this host until killed (kill -9 tests)."""
    parser = argparse.ArgumentParser(prog="python -m localdev.host")
    parser.add_argument("--hold-seconds", type=float, default=5.0)
    parser.add_argument("--visibility-timeout", type=float, default=1.0)
    parser.add_argument("--time-scale", type=float, default=0.0, help="scale the Defender client's clock")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    import function_app
    from shared.app import runtime
    from shared.app.worker import handle_doorbell

    factory = None
    if args.time_scale:
        from localdev.stack import scaled_defender_factory

        factory = scaled_defender_factory(args.time_scale)
    rt = runtime.Runtime.from_env(os.environ, defender_factory=factory)
    runtime.set_runtime(rt)
    assert function_app.app is not None
    queue = plain_queue(os.environ["IndicatorStorage"], rt.options.jobs_queue)
    host = QueueHost(queue, handle_doorbell, max_dequeue_count=rt.options.max_dequeue_count,
                     visibility_timeout=args.visibility_timeout, hold_seconds=args.hold_seconds).start()  # fmt: skip
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
