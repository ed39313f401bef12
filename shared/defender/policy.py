"""How the Defender client waits and when it gives up: its policy, clocks, time limit and call limits.

Pure values, no I/O (STYLE.md "Configuration": one small value, as azure-core's `Configuration` groups its
policies). urllib3's `Retry` is the policy object of the client's one attempt loop, never mounted on a session.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from urllib3.util.retry import Retry

from shared.core.errors import DeadlineReached
from shared.defender.pacing import (
    BATCH_DELETE_CALLS_PER_HOUR,
    BATCH_DELETE_CALLS_PER_MINUTE,
    DELETE_CALLS_PER_HOUR,
    DELETE_CALLS_PER_MINUTE,
    LIST_CALLS_PER_HOUR,
    LIST_CALLS_PER_MINUTE,
)

# (calls per minute, calls per hour) of the calls other than import (defender-api.md §2).
DEFAULT_CALL_LIMITS: dict[str, tuple[int, int | None]] = {
    "list": (LIST_CALLS_PER_MINUTE, LIST_CALLS_PER_HOUR),
    "batchdelete": (BATCH_DELETE_CALLS_PER_MINUTE, BATCH_DELETE_CALLS_PER_HOUR),
    "delete": (DELETE_CALLS_PER_MINUTE, DELETE_CALLS_PER_HOUR),
}


class ImportRetry(Retry):
    """urllib3's `Retry`, with the backoff counted from the first failure.

    urllib3 retries the first failure at once (`get_backoff_time` is 0 for one error); a Defender
    answering 503 deserves a pause before the first retry too. Otherwise the same capped
    exponential formula: `backoff_factor * 2**(n-1)` plus up to `backoff_jitter`, at most `backoff_max`.
    """

    def get_backoff_time(self) -> float:
        n = len(self.history)
        if n == 0:
            return 0.0
        value = self.backoff_factor * (2 ** (n - 1))
        if self.backoff_jitter:
            value += random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, value)))


@dataclass
class TimeLimit:
    """A deadline on the client's clock; `reached` is the DeadlineReached raised under it, if one was."""

    deadline: float
    label: str
    reached: DeadlineReached | None = None


@dataclass(frozen=True)
class ClientPolicy:
    """How the client waits and when it gives up (STYLE.md "Configuration": one small value, as azure-core's
    `Configuration` groups its policies).

    - `timeout`: (connect, read) seconds of one call (DEFENDER_REQUEST_TIMEOUT_SECONDS is the read part);
    - `max_attempts`: attempts per call for 429, 5xx and network errors (DEFENDER_MAX_ATTEMPTS; at least 1);
    - `retry_after_max`: the longest `Retry-After` honoured (DEFENDER_RETRY_AFTER_MAX_SECONDS);
    - `backoff_factor`, `backoff_max`, `backoff_jitter`: capped exponential backoff with jitter, in seconds.
    """

    # 180 s read: a slow 500-item import answered after 60 s was sent again (fidelity-review.md 9, after [OC]).
    timeout: tuple[float, float] = (5.0, 180.0)
    max_attempts: int = 6
    retry_after_max: float = 120.0
    backoff_factor: float = 1.0
    backoff_max: float = 30.0
    backoff_jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def retry(self) -> ImportRetry:
        """The urllib3 `Retry` used as the attempt loop's policy object (never mounted on the session)."""
        return ImportRetry(
            total=self.max_attempts - 1,
            connect=None,
            read=None,
            status=None,
            other=None,
            redirect=0,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_jitter,
            status_forcelist=frozenset({429, 500, 502, 503, 504}),
            # POST is safe: import is an upsert (defender-api.md §3.2); BatchDelete of an id twice is a 404, handled.
            allowed_methods=frozenset({"GET", "POST", "DELETE"}),
            respect_retry_after_header=True,
            retry_after_max=self.retry_after_max,  # type: ignore[arg-type]  # seconds, a float is fine
            raise_on_status=False,
        )


@dataclass(frozen=True)
class ClientClock:
    """The client's clocks, injectable in tests: `monotonic` for waits and limits, `sleep`, `wall` (epoch
    seconds) for token expiry."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], float] = time.time
