"""The Zipf picker: hot keys exist, rank order holds, the pool can grow, bad input is refused."""

import random
from collections import Counter
from typing import TypeVar

import pytest

from loadtest.pool import CodePool
from loadtest.zipf import ZipfPicker

pytestmark = pytest.mark.unit

T = TypeVar("T")


def _sample(picker: ZipfPicker[T], n: int, seed: int = 7) -> Counter[T]:
    rng = random.Random(seed)
    return Counter(picker.pick(rng) for _ in range(n))


def test_frequencies_follow_the_zipf_weights() -> None:
    picker = ZipfPicker(range(1, 101), s=1.1)
    draws = 60_000
    counts = _sample(picker, draws)
    for rank in (1, 2, 5, 20):
        expected = picker.weight(rank) * draws
        assert abs(counts[rank] - expected) < 0.1 * expected + 30, (rank, counts[rank], expected)


def test_hot_keys_dominate_the_cold_tail() -> None:
    picker = ZipfPicker(range(1, 1001), s=1.1)
    counts = _sample(picker, 50_000)
    top10 = sum(counts[r] for r in range(1, 11))
    bottom500 = sum(counts[r] for r in range(501, 1001))
    assert counts[1] > counts[2] > counts[10] > counts[100]
    assert top10 > 2 * bottom500
    assert top10 / 50_000 == pytest.approx(sum(picker.weight(r) for r in range(1, 11)), abs=0.02)


def test_weights_sum_to_one_and_decrease_with_rank() -> None:
    picker = ZipfPicker("abcdefghij", s=1.3)
    weights = [picker.weight(r) for r in range(1, 11)]
    assert sum(weights) == pytest.approx(1.0)
    assert weights == sorted(weights, reverse=True)
    assert weights[0] / weights[1] == pytest.approx(2**1.3)


def test_added_items_join_at_the_cold_end() -> None:
    picker = ZipfPicker(["hot"], s=1.1)
    assert _sample(picker, 100) == Counter({"hot": 100})
    for name in ("b", "c", "d"):
        picker.add(name)
    counts = _sample(picker, 20_000)
    assert set(counts) == {"hot", "b", "c", "d"}
    assert counts["hot"] > counts["b"] > counts["d"]


def test_empty_pool_and_bad_exponent_are_refused() -> None:
    with pytest.raises(LookupError):
        ZipfPicker([]).pick(random.Random(1))
    with pytest.raises(ValueError):
        ZipfPicker([1], s=0)
    with pytest.raises(IndexError):
        ZipfPicker([1]).weight(2)


def test_code_pool_reads_new_codes_only_after_the_propagation_delay() -> None:
    now = [100.0]
    pool = CodePool(["seed"], s=1.1, fresh_after=5.0, clock=lambda: now[0])
    pool.created_code("new")
    rng = random.Random(3)
    assert {pool.pick(rng) for _ in range(200)} == {"seed"}
    assert (len(pool), pool.pending, pool.created) == (1, 1, 1)
    now[0] = 105.0
    assert "new" in {pool.pick(rng) for _ in range(500)}
    assert (len(pool), pool.pending) == (2, 0)
