"""Window arithmetic shared by the client tests, the end-to-end tests and the benchmark."""

from __future__ import annotations


def max_in_window(times: list[float], window: float) -> int:
    """Largest number of times in any half-open window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best
