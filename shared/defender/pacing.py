"""`CallPacer`: at most `max_calls` calls in any sliding window of `window_seconds`.

Core module: no I/O; `clock` and `sleep` are injected so tests run on a fake clock and the
emulator can share a scaled window (e.g. 30 calls per second instead of per minute).

Every attempt, retries included, takes a permit first (CONTRACT.md "Defender calls": retries
count against `MAX_CALLS_PER_MINUTE`). A permit's time starts when it is granted; calling
`Permit.release()` when the response is in moves it to that moment. Defender counts calls by
their arrival, which lies between the two, so a window measured from the release can never
hold more than `max_calls` arrivals even when an earlier request travelled slower than a later one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# Import calls per minute allowed by Defender (defender-api.md §2).
IMPORT_CALLS_PER_MINUTE = 30
LIST_CALLS_PER_MINUTE = 100
BATCH_DELETE_CALLS_PER_MINUTE = 30
DELETE_CALLS_PER_MINUTE = 100


class Permit:
    """One granted call; `waited` is how long `acquire()` slept for it."""

    __slots__ = ("_pacer", "at", "waited")

    def __init__(self, pacer: CallPacer, at: float, waited: float) -> None:
        self._pacer = pacer
        self.at = at
        self.waited = waited

    def release(self) -> None:
        """The call is over: count its window from now (never earlier than when it was granted)."""
        self._pacer._release(self)


class CallPacer:
    """Sliding-window limiter: `acquire()` blocks until one more call fits in the window.

    Thread-safe: the lock is held only to book a slot, never while sleeping. Across instances the
    tenant-wide import lease makes one pacer the only caller (CONTRACT.md "Defender calls").
    """

    def __init__(
        self,
        max_calls: int,
        window_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be greater than 0")
        self.max_calls = max_calls
        self.window_seconds = float(window_seconds)
        self._clock = clock
        self._sleep = sleep
        self._permits: deque[Permit] = deque()
        self._lock = threading.Lock()
        self.granted = 0
        self.waited_seconds = 0.0

    def delay(self) -> float:
        """Seconds until the next call would be allowed (0 when it may go now)."""
        with self._lock:
            return self._delay(self._clock())

    def _delay(self, now: float) -> float:
        cutoff = now - self.window_seconds
        if any(p.at <= cutoff for p in self._permits):
            self._permits = deque(p for p in self._permits if p.at > cutoff)
        excess = len(self._permits) - self.max_calls
        if excess < 0:
            return 0.0
        # Enough of the oldest calls must leave the window for one more to fit.
        times = sorted(p.at for p in self._permits)
        return max(times[excess] + self.window_seconds - now, 0.0)

    def acquire(self) -> Permit:
        """Wait until a call fits in the window, book it, and return its permit."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._delay(now)
                if wait <= 0:
                    permit = Permit(self, now, waited)
                    self._permits.append(permit)
                    self.granted += 1
                    self.waited_seconds += waited
                    return permit
            self._sleep(wait)
            waited += wait

    def _release(self, permit: Permit) -> None:
        with self._lock:
            permit.at = max(permit.at, self._clock())
