"""Pacing handover between lock holders (CONTRACT.md "Defender calls": pacing is tenant-wide): a pacer
booked with the previous holder's calls waits as if it had made them itself. Fake clocks; two pacers
with different monotonic clocks stand for two instances sharing one wall clock."""

from __future__ import annotations

import pytest

from shared.defender.pacing import (
    CallPacer,
    decode_calls,
    encode_calls,
    handover_metadata,
    seed_from_metadata,
)
from tests.client.pacing_helpers import max_in_window
from tests.client.scripted import FakeClock

WALL0 = 1_700_000_000.0  # wall clock when both fake monotonic clocks read their start


class Instance:
    """One process: a monotonic clock with its own origin, a pacer on it, and the shared wall clock."""

    def __init__(self, start: float, max_calls: int = 3, window: float = 60.0) -> None:
        self.clock = FakeClock(start)
        self.start = start
        self.pacer = CallPacer(max_calls, window, clock=self.clock, sleep=self.clock.sleep)

    def wall(self) -> float:
        return WALL0 + (self.clock.now - self.start)

    def wall_of(self, at: float) -> float:
        return WALL0 + (at - self.start)


def test_a_new_holder_waits_for_the_calls_the_last_one_made() -> None:
    a, b = Instance(1000.0), Instance(50.0)
    a_calls = [a.wall_of(a.pacer.acquire().at) for _ in range(3)]
    a.clock.now += 10.0  # A finishes 10 s after its calls and hands over
    meta = handover_metadata({"import": a.pacer}, a.wall())
    b.clock.now += 10.0  # same moment on B's own clock
    assert seed_from_metadata({"import": b.pacer}, meta, b.wall()) == 3
    p = b.pacer.acquire()
    # A's three calls leave the window 60 s after they were made: B waits the remaining 50 s.
    assert p.waited == pytest.approx(50.0)
    b_calls = [b.wall_of(p.at)] + [b.wall_of(b.pacer.acquire().at) for _ in range(5)]
    assert max_in_window(a_calls + b_calls, 60.0) == 3


def test_calls_older_than_the_window_are_neither_handed_over_nor_booked() -> None:
    a, b = Instance(0.0), Instance(500.0)
    a.pacer.acquire()
    a.clock.now += 30.0
    a.pacer.acquire()
    a.clock.now += 40.0  # the first call is 70 s old now
    calls = a.pacer.recent(a.wall())
    assert [len(v) for v in calls.values()] == [1]
    # A stale handover read late: its calls have left B's window by the time B seeds.
    b.clock.now += 70.0
    assert b.pacer.seed(calls, b.wall() + 60.0) == 0
    assert b.pacer.delay() == 0.0


def test_own_calls_and_calls_already_booked_are_not_booked_twice() -> None:
    a, b = Instance(0.0), Instance(100.0)
    for _ in range(2):
        a.pacer.acquire()
    meta = handover_metadata({"import": a.pacer}, a.wall())
    assert seed_from_metadata({"import": b.pacer}, meta, b.wall()) == 2
    b.pacer.acquire()
    back = handover_metadata({"import": b.pacer}, b.wall())
    # A gets its own two calls back (skipped) and B's one call.
    assert seed_from_metadata({"import": a.pacer}, back, a.wall()) == 1
    # B reads the same handover again (the blob still carries it): nothing new.
    assert seed_from_metadata({"import": b.pacer}, meta, b.wall()) == 0
    assert max_in_window([p.at for p in a.pacer._permits], 60.0) == 3


def test_calls_from_the_future_count_as_now() -> None:
    b = Instance(0.0, max_calls=1)
    assert b.pacer.seed({"other": [b.wall() + 5.0]}, b.wall()) == 1  # the other instance's clock runs ahead
    assert b.pacer.acquire().waited == pytest.approx(60.0)


def test_each_pacer_gets_its_own_calls_and_names_are_case_insensitive() -> None:
    a, b = Instance(0.0), Instance(0.0)
    imp_a, lst_a = a.pacer, CallPacer(100, 60.0, clock=a.clock, sleep=a.clock.sleep)
    imp_b, lst_b = b.pacer, CallPacer(100, 60.0, clock=b.clock, sleep=b.clock.sleep)
    imp_a.acquire()
    for _ in range(4):
        lst_a.acquire()
    meta = {k.upper(): v for k, v in handover_metadata({"import": imp_a, "list": lst_a}, a.wall()).items()}
    assert seed_from_metadata({"import": imp_b, "list": lst_b}, meta, b.wall()) == 5
    assert len(imp_b._permits) == 1 and len(lst_b._permits) == 4


def test_encoding_round_trips_to_the_millisecond_and_ignores_garbage() -> None:
    calls = {"ab12cd34": [WALL0 + 0.1234, WALL0 + 2.5], "ef": [WALL0]}
    text = encode_calls(calls)
    assert text.isascii() and " " not in text
    back = decode_calls(text)
    assert back.keys() == calls.keys()
    for k, ts in calls.items():
        assert back[k] == pytest.approx(ts, abs=0.001)
    assert decode_calls("") == {}
    assert decode_calls("junk;:1,2;x:1700000000000,nope") == {"x": [1_700_000_000.0]}


def test_a_full_handover_fits_in_blob_metadata() -> None:
    """Azure allows 8 KB of metadata per blob: the busiest minute of every pacer must fit."""
    inst = Instance(0.0)
    pacers = {
        name: CallPacer(n, 60.0, clock=inst.clock, sleep=inst.clock.sleep)
        for name, n in (("import", 30), ("list", 100), ("batchdelete", 30), ("delete", 100))
    }
    for p in pacers.values():
        for _ in range(p.max_calls):
            inst.clock.now += 0.123
            p.acquire()
    meta = handover_metadata(pacers, inst.wall())
    assert sum(len(k) + len(v) for k, v in meta.items()) < 8 * 1024
