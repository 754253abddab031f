"""The processing frontier: contiguous progress, skipped records found and re-read."""

import pytest
from aggregator.domain.gaps import Frontier

pytestmark = pytest.mark.unit


def test_frontier_advances_over_contiguous_offsets_only() -> None:
    f = Frontier(stuck_after_s=10)
    for offset in (100, 101, 103):
        f.processed(0, offset)
    assert not f.known(0)
    f.start(0, 100)  # loaded after the first batches: what was processed counts
    assert f.next[0] == 102 and f.done[0] == {103}
    f.processed(0, 102)
    assert f.next[0] == 104 and f.done[0] == set()
    f.processed(0, 50)  # older than the frontier: already durable, ignored
    assert f.next[0] == 104 and f.done[0] == set()


def test_a_skipped_head_is_sought_back_after_the_grace_period() -> None:
    f = Frontier(stuck_after_s=10)
    f.start(2, 100)
    for offset in range(120, 200):  # 100..119 never reached the agent
        f.processed(2, offset)
    assert f.stuck({}, now=0.0) == []
    assert f.stuck({}, now=9.0) == []
    assert f.stuck({}, now=10.0) == [(2, 100)]
    for offset in range(100, 120):  # the re-read
        f.processed(2, offset)
    assert f.next[2] == 200 and f.stuck({}, now=30.0) == []


def test_nothing_to_do_while_the_head_is_held_or_nothing_is_ahead() -> None:
    f = Frontier(stuck_after_s=10)
    f.start(1, 100)
    assert f.stuck({}, now=0.0) == [] and f.stuck({}, now=100.0) == []  # idle, caught up
    f.processed(1, 105)
    assert f.stuck({1: 100}, now=0.0) == [] and f.stuck({1: 100}, now=100.0) == []  # ours, being written
    assert f.stuck({1: 103}, now=101.0) == []  # held below... still ahead of the frontier: watch
    assert f.stuck({1: 103}, now=115.0) == [(1, 100)]


def test_after_a_seek_the_partition_is_left_alone_until_the_re_read_can_arrive() -> None:
    f = Frontier(stuck_after_s=10, reseek_after_s=60)
    f.start(0, 10)
    f.processed(0, 12)
    assert f.stuck({}, now=0.0) == [] and f.stuck({}, now=10.0) == [(0, 10)]
    assert f.stuck({}, now=30.0) == [] and f.stuck({}, now=69.0) == []  # the re-read is queued
    assert f.stuck({}, now=70.0) == []  # grace over: watching again
    assert f.stuck({}, now=80.0) == [(0, 10)]  # still missing: seek again
    f.processed(0, 10)
    f.processed(0, 11)
    assert f.next[0] == 13 and f.stuck({}, now=200.0) == []


def test_below_the_log_start_there_is_nothing_to_wait_for() -> None:
    f = Frontier(stuck_after_s=1)
    f.start(0, 10)
    f.processed(0, 500)
    f.floor(0, 400)  # retention removed 10..399
    assert f.next[0] == 400
    f.floor(0, 100)
    assert f.next[0] == 400


def test_partitions_no_longer_owned_are_forgotten() -> None:
    f = Frontier(stuck_after_s=1)
    f.start(0, 5)
    f.start(1, 7)
    f.processed(1, 9)
    f.keep_only({0})
    assert f.next == {0: 5} and 1 not in f.done


def test_a_reloaded_frontier_never_moves_backwards() -> None:
    f = Frontier(stuck_after_s=1)
    f.start(0, 100)
    f.processed(0, 100)
    f.start(0, 90)
    assert f.next[0] == 101
    f.start(0, 150)  # another worker finished up to 150 meanwhile
    assert f.next[0] == 150
