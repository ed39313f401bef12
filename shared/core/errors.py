"""Failures of calls to Defender, shaped by what the caller does next (STYLE.md "Errors").

- `DefenderUnavailable`: no usable answer after retries; the batch and the rest of the run fail cleanly.
- `DeadlineReached`: a `DefenderUnavailable` raised instead of waiting past the caller's time limit (HTTP).
- `AccessDenied`: 403, or 401 after one token refresh; stop and explain the missing role or wrong audience.
- `IdentityUnavailable`: the token could not be obtained from azure-identity.
- `BatchRejected`: a whole-batch 400, whatever its code: the batch is bisected to isolate the rows.
- `NotFoundError`: 404 from a delete; the caller re-lists and retries without the missing ids.

Messages never carry headers or tokens. Core module: standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# 400 codes that name a value rather than our request shape: the batch holds an offending
# indicator that bisection can isolate (defender-api.md §3.3, CONTRACT.md "Defender calls").
VALUE_ERROR_CODES = frozenset(
    {"InvalidHashValue", "InvalidDomainName", "InvalidIpAddress", "InvalidUrl", "InvalidInput"}
)


class DefenderError(Exception):
    """A call to Defender failed: HTTP status (None when no answer), Defender's error code and a message.

    `outcome_code` is the report's code (README "Reports") of the entries this failure leaves `failed`.
    """

    outcome_code = "batch-failed"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        # Outcomes already final when the failure struck in the middle of a bisection: these
        # indicators did reach Defender (or were rejected by it) before the call that failed.
        self.partial: Sequence[Any] = ()

    def __str__(self) -> str:
        return self.message


class DefenderUnavailable(DefenderError):
    """No usable answer after the bounded retries (network errors, timeouts, 5xx, 429 that never clears)."""

    outcome_code = "defender-unavailable"


class DeadlineReached(DefenderUnavailable):
    """The next wait (call slot, Retry-After, backoff) would end past the caller's time limit: stopped instead.

    A `DefenderUnavailable`, so the run stops as for any unreachable Defender; `wait` is the wait that did not
    fit (seconds; None when no time was left at all), for the caller's own `Retry-After`; `why` the reason
    alone (what the message says after the limit's name, without advice to the caller of each entry).
    """

    outcome_code = "time-limit"

    def __init__(self, message: str, *, wait: float | None = None, why: str = "") -> None:
        super().__init__(message)
        self.wait = wait
        self.why = why


class HourlyLimit(DefenderUnavailable):
    """An hourly call window (List, BatchDelete: 1,500 an hour, defender-api.md §2) is full for longer than the
    caller may wait: the job goes down the retry path instead of holding the tenant lock meanwhile.

    `wait`: seconds until the window has room again (for the retry's schedule); `kind`: the call kind.
    """

    outcome_code = "defender-unavailable"

    def __init__(self, message: str, *, wait: float, kind: str) -> None:
        super().__init__(message, status=None)
        self.wait = wait
        self.kind = kind


class AccessDenied(DefenderError):
    """Defender refused our token: 403, or 401 again after a fresh token. Retrying will not help."""

    outcome_code = "access-denied"


class IdentityUnavailable(DefenderError):
    """The managed identity (or developer credential) could not provide a token."""

    outcome_code = "identity-unavailable"


class BatchRejected(DefenderError):
    """Defender rejected the whole batch with 400: the batch is split to isolate the offending rows, whatever
    the code (an unlisted code for one odd row must not fail 499 good ones; CONTRACT.md "Defender calls").

    `names_value` when the code names a value (`InvalidHashValue`, ...): such a rejection is always a row's,
    never taken for a body-level problem (client `_Isolation`).
    """

    outcome_code = "batch-rejected"

    @property
    def names_value(self) -> bool:
        return self.code in VALUE_ERROR_CODES


class NotFoundError(DefenderError):
    """404: an indicator id is gone (BatchDelete fails whole when any id is missing, defender-api.md §5)."""


class InputChanged(RuntimeError):
    """The input changed (a new blob version, deleted, cut short) while it was read: the run is `failed`.

    Raised by the stream that reads the input; the readers let it through, so `process_stream` ends the run
    with a file-level problem and the report does not pass for a description of one version.
    """
