"""Isolating the rows of a batch Defender rejected as a whole (CONTRACT.md "Defender calls" [recall]).

`Isolation` halves a rejected batch through the client's own import call (paced, retried, counted); the rest of
the client does not depend on it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from shared.core.batching import bisect
from shared.core.errors import BatchRejected, DefenderError
from shared.core.model import Outcome, Status
from shared.defender import wire

log = logging.getLogger(__name__)


class Importer(Protocol):
    """What the isolation needs of `DefenderClient`: one import call, the matching of its answer, a counter."""

    split_calls: int

    def _import(self, batch: list[Outcome]) -> list[wire.ImportResult]: ...

    def _matched(self, batch: list[Outcome], results: list[wire.ImportResult]) -> list[Outcome]: ...


class _BodyRejected(Exception):
    """Both halves of a split failed with the same code near the top: the body, not a row, is the problem."""

    def __init__(self, error: BatchRejected) -> None:
        super().__init__(error.message)
        self.error = error


# How near the top a split whose halves both fail with the same code means a body-level problem (issue
# "Nothing silently dropped": "both halves of a split fail at depth ≤ 2"). Counted with the batch as depth 1,
# its halves as depth 2: the first split. Checking the quarters as well costs a call more for one bad row than
# the bound (log2(n) + 2k) allows.
BODY_DEPTH = 1


class Isolation:
    """Finds the rows of a batch Defender rejected as a whole (`400`, whatever its code), by halving it.

    - A half Defender accepted is never sent again, and no batch is sent twice.
    - A rejected part is halved and its first half sent: accepted, the second half must hold what was rejected
      and is halved in turn without being sent whole; rejected, the search goes on in it and the second half
      waits in a pool of untried rows. Once a row is alone it is `failed` with Defender's message, and the pool
      is sent as one batch: accepted, done; rejected, it is searched the same way. One bad row among n costs
      about log2(n) + 2 calls; each further bad row a search of the pool.
    - At the first split (halves at depth 2, the batch being depth 1) a rejected first half has its second half
      sent at once: when both fail with the same code that names no value (`errors.VALUE_ERROR_CODES`), the
      body is the problem (a field's type, an unknown device group on every row), and the batch is `failed`
      with Defender's message instead.
    Calls made here count in `DefenderClient.split_calls` (and in `api_calls`).
    """

    def __init__(self, client: Importer, batch: list[Outcome]) -> None:
        self.client = client
        self.batch = batch
        self.settled: dict[int, Outcome] = {}

    def run(self, first: BatchRejected) -> list[Outcome]:
        n = len(self.batch)
        try:
            todo: list[tuple[list[int], BatchRejected, int]] = [(list(range(n)), first, 1)]
            while todo:
                todo.extend(self._search(*todo.pop()))
        except _BodyRejected as body:
            why = _why(body.error)
            log.error("Defender rejected a batch of %d as a whole, both halves alike: %s", n, why)
            for i, o in enumerate(self.batch):
                if i not in self.settled:
                    self.settled[i] = o.final(
                        Status.failed, f"Defender rejected the batch: {why}", code="batch-rejected"
                    )
        except DefenderError as e:
            e.partial = self._prefix()  # what was settled before the call that failed, as the batch's leading part
            raise
        return [self.settled[i] for i in range(n)]

    def _search(self, part: list[int], error: BatchRejected, depth: int) -> list[tuple[list[int], BatchRejected, int]]:
        """Isolate one rejected row of `part` (known rejected with `error`); the parts still to search."""
        later: list[tuple[list[int], BatchRejected, int]] = []
        pool: list[int] = []
        while len(part) > 1:
            left, right = bisect(part)
            left_error = self._send(left)
            if left_error is None:
                part = right  # what was rejected is in the right half: split it without sending it whole
            elif depth <= BODY_DEPTH:
                right_error = self._send(right)
                if right_error is not None:
                    if right_error.code == left_error.code and not right_error.names_value:
                        raise _BodyRejected(right_error)
                    later.append((right, right_error, depth + 1))
                part, error = left, left_error
            else:
                pool.extend(right)
                part, error = left, left_error
            depth += 1
        o = self.batch[part[0]]
        self.settled[part[0]] = o.final(Status.failed, f"Defender rejected it: {_why(error)}", code="defender-rejected")
        if pool:
            pool_error = self._send(pool)
            if pool_error is not None:
                later.append((pool, pool_error, max(depth, BODY_DEPTH + 1)))
        return later

    def _prefix(self) -> list[Outcome]:
        out = []
        for i in range(len(self.batch)):
            if i not in self.settled:
                break
            out.append(self.settled[i])
        return out

    def _send(self, part: list[int]) -> BatchRejected | None:
        """Send `part`; its entries are settled when Defender answered 200. The 400 when it rejected it."""
        self.client.split_calls += 1
        items = [self.batch[i] for i in part]
        try:
            results = self.client._import(items)
        except BatchRejected as e:
            return e
        for i, o in zip(part, self.client._matched(items, results), strict=True):
            self.settled[i] = o
        return None


def _why(e: BatchRejected) -> str:
    return f"{e.code}: {e.message}" if e.code else e.message
