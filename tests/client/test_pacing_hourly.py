"""Both of Defender's windows paced (defender-api.md §2, fidelity-review 1.7): List and BatchDelete allow 100/30
calls a minute and 1,500 an hour. The hour travels between tenant-lock holders as per-minute counts (the lock
blob's 8 KB of metadata cannot hold an hour of timestamps); `HourlyLimit` when the hour is full for longer
than a job may wait."""

from __future__ import annotations

import pytest
import requests

from shared.core.errors import DefenderUnavailable, HourlyLimit
from shared.defender.pacing import CallPacer, decode_hour, encode_hour, handover_metadata, seed_from_metadata
from tests.client.scripted import FakeClock, ScriptedSession, make, response

WALL0 = 1_700_000_000.0


class Instance:
    def __init__(self, start: float, *, minute: int = 100, hour: int = 1500) -> None:
        self.clock = FakeClock(start)
        self.start = start
        self.pacer = CallPacer(minute, 60.0, clock=self.clock, sleep=self.clock.sleep, hour_calls=hour)

    def wall(self) -> float:
        return WALL0 + (self.clock.now - self.start)


@pytest.fixture
def session() -> ScriptedSession:
    return ScriptedSession(FakeClock())


def fill_hour(inst: Instance, calls: int = 1500) -> None:
    """`calls` List calls spread over the last hour at the minute window's pace (100 a minute)."""
    for _ in range(calls):
        inst.pacer.acquire().release()


def test_the_hour_window_waits_once_1500_calls_are_in_it() -> None:
    a = Instance(1000.0)
    fill_hour(a)  # 15 minutes at 100 a minute
    assert a.pacer.hour_count() == 1500
    assert a.pacer.delay() == pytest.approx(3600.0 - 14 * 60.0, abs=1.0)  # the first minute's calls must leave


def test_a_full_hour_is_handed_over_in_counts_and_fits_the_metadata() -> None:
    a, b = Instance(1000.0), Instance(50.0)
    fill_hour(a)
    meta = handover_metadata({"list": a.pacer}, a.wall())
    assert len("".join(k + v for k, v in meta.items()).encode()) < 8 * 1024
    first, counts = decode_hour(meta["pace_list_h"])
    assert sum(counts) == 1500 and encode_hour(first, counts) == meta["pace_list_h"]
    seed_from_metadata({"list": b.pacer}, meta, a.wall())
    assert b.pacer.hour_count() == 1500
    assert b.pacer.delay() > 60.0  # B waits for the hour A used, not only for A's last minute


def test_renewing_the_lease_hands_the_same_hour_over_without_counting_it_twice() -> None:
    """A holder renews its lease and publishes again; the next holder seeds twice (or from two renewals)."""
    a, b = Instance(1000.0), Instance(50.0)
    fill_hour(a, 900)
    first = handover_metadata({"list": a.pacer}, a.wall())
    fill_hour(a, 100)  # more calls before the renewal
    renewed = handover_metadata({"list": a.pacer}, a.wall())
    b.clock.now = b.start + (a.clock.now - a.start)  # one wall clock: B's turn starts where A's ended
    seed_from_metadata({"list": b.pacer}, first, b.wall())
    seed_from_metadata({"list": b.pacer}, renewed, b.wall())
    seed_from_metadata({"list": b.pacer}, renewed, b.wall())
    assert b.pacer.hour_count() == 1000
    # B's own calls go back to A with B's counts, which include A's: A does not count its own twice.
    for _ in range(50):
        b.pacer.acquire().release()
    a.clock.now = a.start + (b.clock.now - b.start)
    seed_from_metadata({"list": a.pacer}, handover_metadata({"list": b.pacer}, b.wall()), a.wall())
    assert a.pacer.hour_count() == 1050


def test_a_full_hour_raises_hourly_limit_instead_of_holding_the_lock(session: ScriptedSession) -> None:
    session.default = lambda call: response(200, {"value": []})
    client = make(session)
    client.list_pacer = CallPacer(100, 60.0, clock=session.clock, sleep=session.clock.sleep, hour_calls=3)
    for _ in range(3):
        assert list(client.list_indicators()) == []
    with pytest.raises(HourlyLimit) as e:
        list(client.list_indicators())
    assert isinstance(e.value, DefenderUnavailable) and e.value.wait > 120.0
    assert "hourly limit of 3 list calls" in str(e.value) and len(session.calls) == 3


def test_a_short_hourly_wait_is_slept_like_a_minute_one(session: ScriptedSession) -> None:
    session.default = lambda call: response(200, {"value": []})
    client = make(session)
    client.list_pacer = CallPacer(
        100, 60.0, clock=session.clock, sleep=session.clock.sleep, hour_calls=2, hour_seconds=90.0
    )
    for _ in range(3):
        assert list(client.list_indicators()) == []
    assert session.calls[2].at - session.calls[0].at == pytest.approx(90.0)


def test_429_retry_after_still_honoured_on_a_paced_list(session: ScriptedSession) -> None:
    throttled = response(429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "7"})
    session.script(throttled, response(200, {"value": []}))
    client = make(session)
    assert list(client.list_indicators()) == []
    assert session.calls[1].at - session.calls[0].at == pytest.approx(7.0, abs=0.01)
    assert isinstance(throttled, requests.Response)
