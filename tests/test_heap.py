"""The collector after start-up (ivr.heap): what start-up made is skipped, cycles made later
are still found."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ivr import heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def settled() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_what_start_up_made_is_frozen_out_of_collections(settled: None) -> None:
    made_at_start = [_Node()]
    frozen = heap.settle()
    assert frozen >= 1
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
    tracked = gc.get_objects()
    assert not any(o is made_at_start for o in tracked)
    made_later = [_Node()]
    assert any(o is made_later for o in gc.get_objects())


def test_a_cycle_made_after_start_is_still_collected(settled: None) -> None:
    heap.settle()
    one, two = _Node(), _Node()
    one.other, two.other = two, one
    gone = weakref.ref(one)
    del one, two
    assert gone() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert gone() is None
