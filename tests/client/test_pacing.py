"""CallPacer: never more than `max_calls` in any window (CONTRACT.md "Defender calls"), on a fake clock."""

from __future__ import annotations

import pytest

from shared.defender.pacing import CallPacer
from tests.client.pacing_helpers import max_in_window
from tests.client.scripted import FakeClock


def test_first_calls_go_at_once_then_the_window_holds_them_back() -> None:
    clock = FakeClock()
    pacer = CallPacer(30, 60.0, clock=clock, sleep=clock.sleep)
    stamps = [pacer.acquire().at for _ in range(30)]
    assert clock.sleeps == []
    assert set(stamps) == {1000.0}
    p = pacer.acquire()
    assert p.waited == pytest.approx(60.0)
    assert p.at == pytest.approx(1060.0)


def test_any_window_holds_at_most_max_calls_over_many_calls() -> None:
    clock = FakeClock()
    pacer = CallPacer(7, 10.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for i in range(200):
        clock.now += (i % 5) * 0.37  # uneven work between calls
        stamps.append(pacer.acquire().at)
    assert max_in_window(stamps, 10.0) == 7
    # ...and the pacer does not wait more than it must: 200 calls need about 200/7 windows.
    assert clock.now - 1000.0 < (200 / 7 + 1) * 10.0


def test_release_counts_the_window_from_the_end_of_the_call() -> None:
    clock = FakeClock()
    pacer = CallPacer(2, 10.0, clock=clock, sleep=clock.sleep)
    first = pacer.acquire()
    clock.now += 3.0  # a slow call
    first.release()
    pacer.acquire().release()
    third = pacer.acquire()
    # The first call's slot frees 10 s after it ended (t=3), not after it began.
    assert third.at == pytest.approx(1013.0)


def test_delay_reports_the_wait_without_booking() -> None:
    clock = FakeClock()
    pacer = CallPacer(1, 5.0, clock=clock, sleep=clock.sleep)
    assert pacer.delay() == 0.0
    pacer.acquire()
    assert pacer.delay() == pytest.approx(5.0)
    assert pacer.granted == 1


@pytest.mark.parametrize(("calls", "window"), [(0, 60.0), (30, 0.0)])
def test_nonsense_limits_are_refused(calls: int, window: float) -> None:
    with pytest.raises(ValueError):
        CallPacer(calls, window)
