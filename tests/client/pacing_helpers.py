"""Reference arithmetic shared by the client tests, the end-to-end tests and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence

from shared.batching import bisect
from shared.model import Outcome


def max_in_window(times: list[float], window: float) -> int:
    """Largest number of times in any half-open window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def bisection_calls(batch: Sequence[Outcome], bad: set[str]) -> tuple[int, int]:
    """Reference counts for a batch bisected around `bad` values: (calls, calls answered 400).

    One call per batch; a batch holding a bad value is rejected and split until the value is alone.
    """
    if not any(o.value in bad for o in batch):
        return 1, 0
    if len(batch) == 1:
        return 1, 1
    left, right = bisect(batch)
    (lc, lr), (rc, rr) = bisection_calls(left, bad), bisection_calls(right, bad)
    return 1 + lc + rc, 1 + lr + rr
