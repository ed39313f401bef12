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
    """Reference counts for a batch bisected around `bad` values: (calls, calls answered 400), the first call of
    the whole batch included. Mirrors the client's strategy (`isolation.Isolation`): a rejected part is halved;
    when its first half is accepted the second is split without being sent whole; near the top (depth ≤ 2)
    both halves are sent before going deeper. Assumes a code that names a value (no body-level stop)."""
    if not any(o.value in bad for o in batch):
        return 1, 0
    calls, rejected = _split(list(batch), bad, 1)
    return 1 + calls, 1 + rejected


def _split(part: list[Outcome], bad: set[str], depth: int) -> tuple[int, int]:
    if len(part) == 1:
        return 0, 0
    left, right = bisect(part)
    left_bad = any(o.value in bad for o in left)
    right_bad = any(o.value in bad for o in right)
    calls, rejected = 1, int(left_bad)  # the left half is always sent
    if not left_bad:
        c, r = _split(right, bad, depth + 1)  # inferred: not sent whole
        return calls + c, rejected + r
    calls, rejected = calls + 1, rejected + int(right_bad)  # the right half is sent (before or after the left's)
    c, r = _split(left, bad, depth + 1)
    calls, rejected = calls + c, rejected + r
    if right_bad:
        c, r = _split(right, bad, depth + 1)
        calls, rejected = calls + c, rejected + r
    return calls, rejected
