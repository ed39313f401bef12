"""Sliding-window call limits per API group and caller, as Defender applies them per application and
tenant (defender-api.md §2; maintainer answer in MicrosoftDocs/microsoft-365-docs#10124). No I/O: the
caller passes the time, so tests and the emulator's adjustable clock drive it.

``time_scale`` shrinks every window: at 60 a documented "minute" lasts one real second. The wait it
returns is in real seconds, because that is what a client sleeps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

Limits = Mapping[str, Sequence[tuple[int, float]]]  # group -> [(calls, window seconds), ...]

DEFAULT_LIMITS: dict[str, list[tuple[int, float]]] = {
    "import": [(30, 60)],  # no hourly figure published for Import
    "list": [(100, 60), (1500, 3600)],
    "delete": [(100, 60), (1500, 3600)],
    "batch_delete": [(30, 60), (1500, 3600)],
}


class SlidingWindows:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits: dict[str, list[tuple[int, float]]] = {
            g: [(int(c), float(s)) for c, s in v] for g, v in (limits or DEFAULT_LIMITS).items()
        }
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def clear(self) -> None:
        self._calls.clear()

    def acquire(
        self, group: str, caller: str, now: float, *, time_scale: float = 1.0, count_rejected: bool = False
    ) -> float | None:
        """Record a call and return None, or return the real seconds until the caller may call again.

        A rejected call is not recorded unless ``count_rejected`` (then early retries push the window).
        """
        limits = self.limits.get(group, [])
        calls = self._calls.setdefault((group, caller), deque())
        longest = max((s for _, s in limits), default=0.0) / time_scale
        while calls and calls[0] <= now - longest:
            calls.popleft()
        wait = 0.0
        for allowed, seconds in limits:
            window = seconds / time_scale
            recent = [t for t in calls if t > now - window]
            if allowed <= 0:
                wait = max(wait, window)
            elif len(recent) >= allowed:
                # The slot frees when the call `allowed` places back leaves the window.
                wait = max(wait, recent[-allowed] + window - now)
        if wait > 0 and not count_rejected:
            return wait
        calls.append(now)
        return wait or None


def max_in_window(times: Sequence[float], window: float) -> int:
    """Most calls in any half-open window [t, t + window): how tests and benchmarks read a call log."""
    ordered = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(ordered):
        while ordered[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best
