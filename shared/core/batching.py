"""Batching: chunks of at most BATCH_SIZE, and halving a batch Defender rejects as a whole.

Core module: standard library only, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter); never an empty list.

    Import takes at most 500 indicators per call (defender-api.md §1.4, §2).
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def bisect(batch: Sequence[T]) -> tuple[list[T], list[T]]:
    """Two halves of a batch whose 400 names a value but not which one (CONTRACT.md "Defender calls").

    The first half gets the extra item of an odd batch; a single item cannot be split.
    """
    if len(batch) < 2:
        raise ValueError("a batch of fewer than two items cannot be split")
    mid = (len(batch) + 1) // 2
    return list(batch[:mid]), list(batch[mid:])
