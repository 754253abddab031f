"""Skipped-record detection: a commit stuck behind acked offsets, the head not in our hands."""

import pytest
from aggregator.domain.gaps import GapWatch

pytestmark = pytest.mark.unit


def test_gap_watch_flags_a_partition_whose_head_was_dropped() -> None:
    watch = GapWatch(stuck_after_s=10)
    for offset in range(120, 200):
        watch.acked(2, offset)  # offsets 100..119 never reached us
    watch.acked(1, 50)
    committed = {1: 51, 2: 100}
    assert watch.stuck(committed, {}, now=0.0) == []  # first sight
    assert watch.stuck(committed, {}, now=5.0) == []
    assert watch.stuck(committed, {}, now=10.0) == [2]  # still 100 after 10 s: re-read
    assert watch.stuck(committed, {}, now=11.0) == []  # judged again only after another 10 s
    assert watch.stuck(committed, {}, now=21.0) == [2]


def test_gap_watch_leaves_alone_what_is_held_moving_or_caught_up() -> None:
    watch = GapWatch(stuck_after_s=10)
    watch.acked(0, 99)
    assert watch.stuck({0: 100}, {}, now=0.0) == [] and watch.stuck({0: 100}, {}, now=60.0) == []  # caught up
    watch.acked(0, 150)
    assert watch.stuck({0: 100}, {0: 100}, now=0.0) == []  # the head is ours, being written
    assert watch.stuck({0: 100}, {0: 100}, now=60.0) == []
    assert watch.stuck({0: 120}, {}, now=61.0) == []  # the commit moved: start over
    assert watch.stuck({0: 130}, {}, now=75.0) == []
    watch.forget({1})
    assert watch.acked_max == {}
