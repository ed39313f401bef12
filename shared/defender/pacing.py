"""`CallPacer`: at most `max_calls` calls in any sliding window of `window_seconds`.

Core module: no I/O; `clock` and `sleep` are injected so tests run on a fake clock and the
emulator can share a scaled window (e.g. 30 calls per second instead of per minute).

Every attempt, retries included, takes a permit first (CONTRACT.md "Defender calls": retries
count against `MAX_CALLS_PER_MINUTE`). A permit's time starts when it is granted; calling
`Permit.release()` when the response is in moves it to that moment. Defender counts calls by
their arrival, which lies between the two, so a window measured from the release can never
hold more than `max_calls` arrivals even when an earlier request travelled slower than a later one.

Across instances (CONTRACT.md "Defender calls": pacing is tenant-wide): the tenant lock serialises
imports, but each process's pacer only knows its own calls. The lock holder therefore hands its recent
calls over in the lock blob's metadata (`handover_metadata`, wall-clock milliseconds), and the next
holder books them into its own pacers (`seed_from_metadata`) before it calls anything.

Two windows (defender-api.md §2, fidelity-review 1.7): List and BatchDelete also have an hourly limit
(1,500 calls). A pacer built with `hour_calls` keeps every call of the last hour (`hour_seconds`, 60 of its
minute windows by default) and waits until both windows have room. The metadata holds 8 KB, too little for an
hour of timestamps, so the hour travels as per-minute counts (`pace_<name>_h`: the wall-clock minute index of
the oldest bucket, then one count per minute, `start:c1,c2,…`). Buckets are aligned to the wall clock, and a
holder's counts already include what it was handed (its own calls plus its predecessors'), so the next holder
merges them bucket by bucket with the maximum of its own count and the handed one: nothing is counted twice
and a renewal that publishes the same counts again changes nothing. A handed-over count is booked at its
minute's end, so it leaves the hour at most one minute later than the real calls did (conservative).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

# Import calls per minute allowed by Defender (defender-api.md §2).
IMPORT_CALLS_PER_MINUTE = 30
LIST_CALLS_PER_MINUTE = 100
BATCH_DELETE_CALLS_PER_MINUTE = 30
DELETE_CALLS_PER_MINUTE = 100
LIST_CALLS_PER_HOUR = 1500
BATCH_DELETE_CALLS_PER_HOUR = 1500
DELETE_CALLS_PER_HOUR = 1500


class NoSlotInTime(Exception):
    """`CallPacer.acquire(max_wait)`: the next call slot is `wait` seconds away, further than allowed.

    `hourly`: the hourly window is what keeps the slot away (the minute window alone would allow it sooner).
    """

    def __init__(self, wait: float, *, hourly: bool = False) -> None:
        super().__init__(f"the next call slot is {wait:.1f} s away")
        self.wait = wait
        self.hourly = hourly


class Permit:
    """One granted call; `waited` is how long `acquire()` slept for it."""

    __slots__ = ("_pacer", "at", "origin", "waited")

    def __init__(self, pacer: CallPacer, at: float, waited: float, origin: str | None = None) -> None:
        self._pacer = pacer
        self.at = at
        self.waited = waited
        self.origin = origin  # the pacer that made the call, when another one did (seeded)

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
        hour_calls: int | None = None,
        hour_seconds: float | None = None,
    ) -> None:
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be greater than 0")
        if hour_calls is not None and hour_calls < 1:
            raise ValueError("hour_calls must be at least 1")
        self.max_calls = max_calls
        self.window_seconds = float(window_seconds)
        # The hourly window: 60 minute windows unless given (a scaled test clock scales both).
        self.hour_calls = hour_calls
        self.hour_seconds = float(hour_seconds) if hour_seconds else 60.0 * self.window_seconds
        self._hour: deque[Permit] = deque()  # every call of the last hour (hour_calls set), seeded counts too
        self._clock = clock
        self._sleep = sleep
        self._permits: deque[Permit] = deque()
        self._lock = threading.Lock()
        self.granted = 0
        self.waited_seconds = 0.0
        # Tags this pacer's own calls in a handover, so a pacer never books its own calls twice.
        self.uid = uuid.uuid4().hex[:8]

    def delay(self) -> float:
        """Seconds until the next call would be allowed (0 when it may go now)."""
        with self._lock:
            return self._delay(self._clock())

    def _delay(self, now: float) -> float:
        return max(self._delays(now))

    def _delays(self, now: float) -> tuple[float, float]:
        """(minute window's wait, hour window's wait) for one more call now."""
        cutoff = now - self.window_seconds
        if any(p.at <= cutoff for p in self._permits):
            self._permits = deque(p for p in self._permits if p.at > cutoff)
        minute = _wait(self._permits, self.max_calls, self.window_seconds, now)
        if self.hour_calls is None:
            return minute, 0.0
        hour_cutoff = now - self.hour_seconds
        if any(p.at <= hour_cutoff for p in self._hour):
            self._hour = deque(p for p in self._hour if p.at > hour_cutoff)
        return minute, _wait(self._hour, self.hour_calls, self.hour_seconds, now)

    def hour_count(self) -> int:
        """Calls in the hourly window now (0 without one)."""
        with self._lock:
            self._delays(self._clock())
            return len(self._hour)

    def acquire(self, max_wait: float | None = None) -> Permit:
        """Wait until a call fits in the window, book it, and return its permit.

        `max_wait`: raise NoSlotInTime instead of sleeping when the slot lies further away than that
        (counted from this call; a caller with a deadline must not sleep past it).
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                minute, hour = self._delays(now)
                wait = max(minute, hour)
                if wait <= 0:
                    permit = Permit(self, now, waited)
                    self._permits.append(permit)
                    if self.hour_calls is not None:
                        self._hour.append(permit)
                    self.granted += 1
                    self.waited_seconds += waited
                    return permit
            if max_wait is not None and waited + wait > max_wait:
                raise NoSlotInTime(wait, hourly=hour > minute)
            self._sleep(wait)
            waited += wait

    def _release(self, permit: Permit) -> None:
        with self._lock:
            permit.at = max(permit.at, self._clock())

    # ------------------------------------------------------------------------------ handover

    def recent(self, wall_now: float) -> dict[str, list[float]]:
        """Wall-clock times of the calls still in the window, by the pacer that made them.

        `wall_now` is the wall clock (`time.time()`) read together with this pacer's clock: the
        monotonic times are converted through that pair of readings.
        """
        with self._lock:
            now = self._clock()
            cutoff = now - self.window_seconds
            out: dict[str, list[float]] = {}
            for p in self._permits:
                if p.at > cutoff:
                    out.setdefault(p.origin or self.uid, []).append(wall_now - (now - p.at))
            return out

    def seed(self, calls: Mapping[str, Iterable[float]], wall_now: float) -> int:
        """Book calls another pacer made (wall-clock times by origin, as `recent` gives them).

        Calls tagged with this pacer's own `uid` are skipped (it knows them already), and so is a call it
        booked in an earlier handover (same origin, same time to the millisecond of the encoding). A time
        in the future (clock skew between instances) counts as now. Returns how many calls were booked.
        """
        booked = 0
        with self._lock:
            now = self._clock()
            cutoff = now - self.window_seconds
            seen: dict[str, list[float]] = {}
            for p in self._permits:
                if p.origin:
                    seen.setdefault(p.origin, []).append(p.at)
            for origin, times in calls.items():
                if origin == self.uid:
                    continue
                had = seen.get(origin, [])
                for t in times:
                    at = min(now - (wall_now - t), now)
                    if at <= cutoff or any(abs(at - h) < SAME_CALL_SECONDS for h in had):
                        continue
                    permit = Permit(self, at, 0.0, origin)
                    self._permits.append(permit)
                    if self.hour_calls is not None:
                        self._hour.append(permit)
                    booked += 1
        return booked

    def hour_buckets(self, wall_now: float) -> tuple[int, list[int]]:
        """The hour's calls as per-minute counts: (wall-clock index of the oldest minute, counts up to now).

        A minute is `window_seconds` long, aligned to the wall clock (index = wall seconds // window); (0, [])
        without an hourly window or calls in it.
        """
        if self.hour_calls is None:
            return 0, []
        with self._lock:
            now = self._clock()
            self._delays(now)
            counts: dict[int, int] = {}
            for p in self._hour:
                index = int((wall_now - (now - p.at)) // self.window_seconds)
                counts[index] = counts.get(index, 0) + 1
        if not counts:
            return 0, []
        first, last = min(counts), int(wall_now // self.window_seconds)
        return first, [counts.get(i, 0) for i in range(first, max(last, max(counts)) + 1)]

    def seed_hour(self, first: int, counts: Sequence[int], wall_now: float) -> int:
        """Merge another holder's per-minute counts (`hour_buckets`): per minute, calls are added until this
        pacer counts as many as the other did there (the maximum of both views); each booked at its minute's
        end, at most now. Returns how many calls were booked."""
        if self.hour_calls is None:
            return 0
        booked = 0
        with self._lock:
            now = self._clock()
            self._delays(now)
            own: dict[int, int] = {}
            for p in self._hour:
                index = int((wall_now - (now - p.at)) // self.window_seconds)
                own[index] = own.get(index, 0) + 1
            for offset, count in enumerate(counts):
                index = first + offset
                missing = min(count, MAX_HOUR_SEED) - own.get(index, 0)
                if missing <= 0:
                    continue
                end_wall = (index + 1) * self.window_seconds - SAME_CALL_SECONDS
                at = min(now - (wall_now - end_wall), now)
                if at <= now - self.hour_seconds:
                    continue
                for _ in range(missing):
                    self._hour.append(Permit(self, at, 0.0, HOUR_ORIGIN))
                booked += missing
        return booked


def _wait(permits: Iterable[Permit], allowed: int, window: float, now: float) -> float:
    """How long until one more call fits among `permits` (all inside `window`): 0 when it fits now."""
    times = sorted(p.at for p in permits)
    excess = len(times) - allowed
    if excess < 0:
        return 0.0
    # Enough of the oldest calls must leave the window for one more to fit.
    return max(times[excess] + window - now, 0.0)


# The origin of calls booked from another holder's per-minute counts.
HOUR_ORIGIN = "hour"
# A count handed over for one minute is believed up to this (a minute holds at most 100 calls of one kind).
MAX_HOUR_SEED = 1000
# Two handed-over times of one origin this close are the same call (times travel in whole milliseconds).
SAME_CALL_SECONDS = 0.002
# Metadata names (C# identifiers, as Azure requires) of the pacers a Defender client hands over.
METADATA_PREFIX = "pace_"


def encode_calls(calls: Mapping[str, Iterable[float]]) -> str:
    """`{"ab12cd34": [t1, t2]}` → `ab12cd34:t1ms,t2ms` (origins joined by `;`): ASCII for blob metadata."""
    return ";".join(f"{o}:{','.join(str(round(t * 1000)) for t in ts)}" for o, ts in calls.items() if ts)


def decode_calls(text: str) -> dict[str, list[float]]:
    """The inverse of `encode_calls`; malformed parts are dropped (a handover is advice, never an error)."""
    out: dict[str, list[float]] = {}
    for part in text.split(";"):
        origin, sep, times = part.partition(":")
        if not sep or not origin.strip():
            continue
        vals: list[float] = []
        for t in times.split(","):
            try:
                vals.append(int(t) / 1000.0)
            except ValueError:
                continue
        if vals:
            out.setdefault(origin.strip(), []).extend(vals)
    return out


HOUR_SUFFIX = "_h"


def encode_hour(first: int, counts: Sequence[int]) -> str:
    """`hour_buckets` → `first:c1,c2,…` (empty when there were no calls)."""
    return f"{first}:{','.join(str(c) for c in counts)}" if any(counts) else ""


def decode_hour(text: str) -> tuple[int, list[int]]:
    """The inverse of `encode_hour`; (0, []) when malformed (a handover is advice, never an error)."""
    first, sep, rest = text.partition(":")
    try:
        return int(first), [max(int(c), 0) for c in rest.split(",")] if sep and rest else []
    except ValueError:
        return 0, []


def handover_metadata(pacers: Mapping[str, CallPacer], wall_now: float) -> dict[str, str]:
    """Blob metadata describing every pacer's calls: `pace_<name>` → the minute window's calls, and for a pacer
    with an hourly window `pace_<name>_h` → the hour's per-minute counts.

    At most a few hundred calls fit in a minute's windows (30 import + 100 List + 30 BatchDelete + 100
    Delete, defender-api.md §2), about 4 KB; an hour of counts is 60 small numbers (under 300 bytes a pacer):
    well inside the 8 KB Azure allows for a blob's metadata. An hour of timestamps (1,500 List + 1,500
    BatchDelete calls, 14 digits each) would not fit.
    """
    out: dict[str, str] = {}
    for name, p in pacers.items():
        out[f"{METADATA_PREFIX}{name}"] = encode_calls(p.recent(wall_now))
        if p.hour_calls is not None:
            out[f"{METADATA_PREFIX}{name}{HOUR_SUFFIX}"] = encode_hour(*p.hour_buckets(wall_now))
    return out


def seed_from_metadata(pacers: Mapping[str, CallPacer], metadata: Mapping[str, str], wall_now: float) -> int:
    """Book the previous holder's calls (`handover_metadata` of another process) into `pacers`."""
    norm = {k.lower(): v for k, v in metadata.items()}
    booked = 0
    for name, pacer in pacers.items():
        text = norm.get(f"{METADATA_PREFIX}{name}".lower())
        if text:
            booked += pacer.seed(decode_calls(text), wall_now)
        hour = norm.get(f"{METADATA_PREFIX}{name}{HOUR_SUFFIX}".lower())
        if hour:
            booked += pacer.seed_hour(*decode_hour(hour), wall_now)
    return booked
