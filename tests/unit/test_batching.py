"""Batching (defender-api.md §1.4: at most 500 per import call) and bisection of a rejected batch."""

from __future__ import annotations

import pytest

from shared.core.batching import batches, bisect


@pytest.mark.parametrize(
    ("n", "size", "sizes"),
    [(0, 3, []), (1, 3, [1]), (3, 3, [3]), (7, 3, [3, 3, 1]), (1000, 500, [500, 500]), (1001, 500, [500, 500, 1])],
)
def test_batches(n, size, sizes):
    got = list(batches(range(n), size))
    assert [len(b) for b in got] == sizes
    assert [x for b in got for x in b] == list(range(n))  # order kept, nothing lost


def test_batches_are_lazy():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    it = batches(endless(), 2)
    assert next(it) == [0, 1] and next(it) == [2, 3]


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError):
        list(batches([1], 0))


@pytest.mark.parametrize(("n", "left", "right"), [(2, 1, 1), (5, 3, 2), (500, 250, 250)])
def test_bisect(n, left, right):
    a, b = bisect(list(range(n)))
    assert (len(a), len(b)) == (left, right) and a + b == list(range(n))


def test_bisect_refuses_a_single_item():
    with pytest.raises(ValueError):
        bisect([1])
