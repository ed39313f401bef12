"""The host stand-in follows the Functions host's queue rules (localdev/host.py), on Azurite: base64 bodies,
the queue's own dequeue count, poison past maxDequeueCount without a call, the visibility delay after a
failure, and the in-flight hold renewed while the function runs."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from localdev.host import QueueHost, plain_queue


@pytest.fixture
def queue(azurite) -> Any:
    q = plain_queue(azurite.connection_string, f"host-{uuid.uuid4().hex[:12]}")
    try:
        q.create_queue()
    except ResourceExistsError:
        pass
    return q


def send(queue: Any, text: str) -> None:
    queue.send_message(base64.b64encode(text.encode()).decode())


def test_base64_body_and_dequeue_count_reach_the_function_and_success_deletes(queue):
    seen: list[tuple[bytes, int]] = []
    host = QueueHost(queue, lambda m: seen.append((m.get_body(), m.dequeue_count)), hold_seconds=5)
    send(queue, '{"id": "a"}')
    host.drain(20)
    assert seen == [(b'{"id": "a"}', 1)]
    assert queue.get_queue_properties().approximate_message_count == 0


def test_failures_are_redelivered_after_the_visibility_timeout_then_poisoned(queue):
    counts: list[int] = []

    def failing(msg: Any) -> None:
        counts.append(msg.dequeue_count)
        raise RuntimeError("boom")

    host = QueueHost(queue, failing, max_dequeue_count=3, visibility_timeout=1, hold_seconds=5)
    send(queue, "x")
    host.drain(30)
    assert counts == [1, 2, 3]  # the last delivery is the last call: then the poison queue
    assert host.poisoned == 1 and host.failures == 3
    (poisoned,) = list(host.poison.receive_messages())
    assert base64.b64decode(poisoned.content) == b"x"


def test_a_message_past_the_maximum_is_poisoned_without_a_call(queue):
    calls: list[int] = []
    host = QueueHost(queue, lambda m: calls.append(m.dequeue_count), max_dequeue_count=1, hold_seconds=5)
    send(queue, "late")
    assert len(list(queue.receive_messages(visibility_timeout=1))) == 1  # a delivery the host lost track of
    time.sleep(1.5)
    host.drain(20)
    assert calls == [] and host.poisoned == 1


def test_a_body_that_is_not_base64_goes_to_the_poison_queue(queue):
    calls: list[Any] = []
    host = QueueHost(queue, calls.append, hold_seconds=5)
    queue.send_message("not base64 {}")
    host.drain(20)
    assert calls == [] and host.poisoned == 1


def test_the_hold_is_renewed_while_the_function_runs(queue):
    """A function that runs longer than the hold: the message stays invisible (no second delivery)."""
    calls: list[int] = []

    def slow(msg: Any) -> None:
        calls.append(msg.dequeue_count)
        time.sleep(3.5)

    host = QueueHost(queue, slow, hold_seconds=2, batch_size=2)
    send(queue, "slow")
    host.drain(30)
    assert calls == [1]
