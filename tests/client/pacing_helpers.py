"""Reference arithmetic shared by the client tests and the end-to-end tests.

`max_in_window` lives in `localdev.ratelimit` beside the emulator's windows (the benchmark uses it too).
"""

from __future__ import annotations

from collections.abc import Sequence

from localdev.ratelimit import max_in_window
from shared.core.batching import bisect
from shared.core.model import Outcome

__all__ = ["bisection_calls", "max_in_window"]


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
