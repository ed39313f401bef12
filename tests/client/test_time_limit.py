"""`DefenderClient.time_limit`: under an HTTP import's deadline the client stops instead of waiting past it
(the Functions host cuts HTTP answers at 230 s), on a scripted session and a fake clock."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from shared.core.errors import DeadlineReached, DefenderUnavailable
from shared.core.model import Status
from shared.defender.pacing import CallPacer, NoSlotInTime
from tests.client.scripted import FakeClock, ScriptedSession, error, make, ok_for, outcomes

LABEL = "the HTTP time limit (HTTP_DEADLINE_SECONDS = 10 s)"


class TimeoutRecordingSession(ScriptedSession):
    """A ScriptedSession that also records the timeouts each request was sent with."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.timeouts: list[Any] = []

    def request(self, method, url, params=None, data=None, headers=None, timeout=None):  # type: ignore[no-untyped-def]
        self.timeouts.append(timeout)
        return super().request(method, url, params=params, data=data, headers=headers, timeout=timeout)


@pytest.fixture
def session() -> TimeoutRecordingSession:
    return TimeoutRecordingSession(FakeClock())


def test_a_retry_after_past_the_deadline_raises_at_once_without_sleeping(session: TimeoutRecordingSession) -> None:
    session.script(error(429, "TooManyRequests", "slow down", {"Retry-After": "60"}), ok_for)
    client = make(session)
    with client.time_limit(10.0, LABEL) as limit, pytest.raises(DeadlineReached) as e:
        client.submit(outcomes(3))
    assert session.clock.sleeps == []
    assert len(session.calls) == 1 and (client.api_calls, client.retries) == (1, 0)
    assert isinstance(e.value, DefenderUnavailable)  # process_stream stops the run on it
    assert e.value.wait == 60.0
    assert limit.reached is e.value
    message = str(e.value)
    assert message.startswith(f"stopped before {LABEL}: Defender asked to wait 60 s (HTTP 429, Retry-After)")
    assert "with 10 s left" in message and message.endswith("not submitted: resend it")


def test_a_retry_after_that_fits_is_still_honoured(session: TimeoutRecordingSession) -> None:
    session.script(error(429, "TooManyRequests", "slow down", {"Retry-After": "4"}), ok_for)
    client = make(session)
    with client.time_limit(10.0, LABEL) as limit:
        out = client.submit(outcomes(2))
    assert [o.status for o in out] == [Status.submitted] * 2
    assert session.clock.sleeps == [4.0]
    assert limit.reached is None


def test_a_backoff_past_the_deadline_raises_without_sleeping(session: TimeoutRecordingSession) -> None:
    session.default = lambda call: error(503, "ServiceUnavailable", "down")
    client = make(session, backoff_factor=1.0, backoff_max=30.0)
    with client.time_limit(6.5, LABEL), pytest.raises(DeadlineReached) as e:
        client.submit(outcomes(1))
    assert session.clock.sleeps == [1.0, 2.0]  # the next backoff, 4 s, would end 0.5 s past the deadline
    assert len(session.calls) == 3
    assert "the retry after HTTP 503 would wait 4 s with 3.5 s left" in str(e.value)


def test_a_pacer_wait_past_the_deadline_raises_without_sleeping(session: TimeoutRecordingSession) -> None:
    session.default = ok_for
    client = make(session, max_calls=1, window=60.0)
    with client.time_limit(10.0, LABEL) as limit:
        client.submit(outcomes(1, "first"))
        with pytest.raises(DeadlineReached) as e:
            client.submit(outcomes(1, "second"))
    assert session.clock.sleeps == []
    assert len(session.calls) == 1
    assert e.value.wait == pytest.approx(60.0)
    assert "the next import call slot" in str(e.value) and "60 s away" in str(e.value)
    assert limit.reached is e.value
    assert client.pacer.granted == 1  # the refused slot was not booked


def test_the_read_timeout_is_cut_to_the_time_left(session: TimeoutRecordingSession) -> None:
    session.default = ok_for
    session.latency = 3.0
    client = make(session, timeout=(5.0, 60.0))
    with client.time_limit(10.0, LABEL):
        client.submit(outcomes(1, "a"))
        client.submit(outcomes(1, "b"))
    client.submit(outcomes(1, "c"))  # outside the block: the configured timeouts again
    assert session.timeouts == [(5.0, 10.0), (5.0, 7.0), (5.0, 60.0)]


def test_a_read_timeout_cut_by_the_limit_stops_without_a_retry(session: TimeoutRecordingSession) -> None:
    def slow(call: Any) -> Exception:
        session.clock.now += 8.0  # the request used all of the (cut) read timeout
        return requests.ReadTimeout("read timed out")

    session.script(slow, ok_for)
    client = make(session, timeout=(5.0, 60.0))
    with client.time_limit(8.0, LABEL), pytest.raises(DeadlineReached) as e:
        client.submit(outcomes(2))
    assert len(session.calls) == 1 and session.clock.sleeps == []
    assert session.timeouts == [(5.0, 8.0)]
    assert "no answer within the 8 s left" in str(e.value)
    assert str(e.value).endswith("Defender did not confirm it in time: resend it")


def test_no_time_left_at_all_makes_no_call(session: TimeoutRecordingSession) -> None:
    client = make(session)
    with client.time_limit(0.0, LABEL), pytest.raises(DeadlineReached) as e:
        client.submit(outcomes(1))
    assert session.calls == [] and e.value.wait is None
    assert "no time left for another call" in str(e.value)


def test_the_limit_is_per_thread_and_ends_with_its_block(session: TimeoutRecordingSession) -> None:
    """Invocations of one process share the client: a blob import on another thread has no deadline."""
    throttled = error(429, "TooManyRequests", "slow down", {"Retry-After": "60"})
    session.script(throttled, ok_for, throttled, ok_for)
    client = make(session)
    results: list[Any] = []
    with client.time_limit(10.0, LABEL):
        worker = threading.Thread(target=lambda: results.append(client.submit(outcomes(1, "blob"))))
        worker.start()
        worker.join()
    assert [o.status for o in results[0]] == [Status.submitted]
    assert session.clock.sleeps == [60.0]
    client.submit(outcomes(1, "after"))  # the block is over: the 429 is waited for again
    assert session.clock.sleeps == [60.0, 60.0]


def test_pacer_max_wait_raises_instead_of_sleeping() -> None:
    clock = FakeClock()
    pacer = CallPacer(1, 60.0, clock=clock, sleep=clock.sleep)
    pacer.acquire(max_wait=0.0)  # a free slot needs no wait
    with pytest.raises(NoSlotInTime) as e:
        pacer.acquire(max_wait=59.0)
    assert e.value.wait == pytest.approx(60.0) and clock.sleeps == [] and pacer.granted == 1
    pacer.acquire(max_wait=60.0)
    assert clock.sleeps == [pytest.approx(60.0)] and pacer.granted == 2
