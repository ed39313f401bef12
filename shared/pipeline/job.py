"""What every input's run relies on, whatever its source: no Defender call without the tenant's turn.

No I/O of its own: the submitter and the lock handle are handed in.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class GuardedSubmitter:
    """The Defender submitter, called only while the tenant lock is still held (`LockHandle.check`).

    A lease lost mid-import (renewals refused, or none succeeded for a lease period) raises LockLost before
    the next batch instead of calling on while another instance may hold the tenant's turn.
    """

    def __init__(self, inner: Any, turn: Any) -> None:
        self._inner = inner
        self._turn = turn

    @property
    def api_calls(self) -> int:
        return int(getattr(self._inner, "api_calls", 0))

    @property
    def retries(self) -> int:
        return int(getattr(self._inner, "retries", 0))

    def submit(self, batch: Any) -> Any:
        self._turn.check()
        return self._inner.submit(batch)


def guarded(submitter: Any, turn: Any, steward: Any = None) -> Any:
    """`submitter` wrapped in a GuardedSubmitter when there is one and the turn can be checked.

    The steward's deletes (action replacement, feed sync) are guarded by the same check.
    """
    check = getattr(turn, "check", None)
    if not callable(check):
        return submitter
    if steward is not None:
        steward.guard = check
    return submitter if submitter is None else GuardedSubmitter(submitter, turn)
