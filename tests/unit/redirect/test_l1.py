"""L1: LRU bound, TTL, and the offset guard that keeps a stale Redis read out."""

import pytest
from redirect.domain.l1 import L1Cache
from redirect.domain.links import NOT_FOUND, Link

pytestmark = pytest.mark.unit


def v(offset: int, url: str = "https://e.com/") -> Link:
    return Link(offset=offset, url=url)


def test_get_returns_a_fresh_entry_and_misses_an_absent_one() -> None:
    l1: L1Cache[Link] = L1Cache(max_size=10)
    l1.offer("a", v(1), now=0.0, ttl=5.0)
    assert l1.get("a", 1.0) == v(1)
    assert l1.get("b", 1.0) is None


def test_an_expired_entry_is_not_served_but_still_guards() -> None:
    l1: L1Cache[Link] = L1Cache(max_size=10)
    l1.offer("a", v(7, "https://new/"), now=0.0, ttl=5.0)
    assert l1.get("a", 5.0) is None  # expired at now + ttl
    # A request read an older version from Redis meanwhile: refused, the newer one is served.
    assert l1.offer("a", v(3, "https://old/"), now=6.0, ttl=5.0, evictions_seen=0).url == "https://new/"
    assert l1.peek("a") == v(7, "https://new/")


def test_the_same_version_refreshes_the_ttl() -> None:
    l1: L1Cache[Link] = L1Cache(max_size=10)
    l1.offer("a", v(7), now=0.0, ttl=5.0)
    l1.offer("a", v(7), now=4.0, ttl=5.0, evictions_seen=0)
    assert l1.get("a", 8.0) == v(7)
    assert l1.get("a", 9.0) is None


def test_a_newer_version_replaces_and_an_older_one_never_does() -> None:
    l1: L1Cache[Link] = L1Cache(max_size=10)
    l1.offer("a", v(5, "https://five/"), now=0.0, ttl=5.0)
    assert l1.offer("a", v(9, "https://nine/"), now=0.0, ttl=5.0).url == "https://nine/"
    assert l1.offer("a", v(8, "https://eight/"), now=0.0, ttl=5.0).url == "https://nine/"
    assert l1.get("a", 1.0) == v(9, "https://nine/")


def test_not_found_is_beaten_by_any_real_version_and_never_beats_one() -> None:
    l1: L1Cache[Link] = L1Cache(max_size=10)
    l1.offer("a", NOT_FOUND, now=0.0, ttl=5.0, evictions_seen=0)
    assert l1.get("a", 1.0) is NOT_FOUND
    assert l1.offer("a", v(0), now=1.0, ttl=5.0) == v(0)  # the consumer's create wins at once
    assert l1.offer("a", NOT_FOUND, now=1.0, ttl=5.0, evictions_seen=0) == v(0)  # a late 404 read loses


def test_lru_evicts_the_least_recently_used_and_counts_evictions() -> None:
    l1: L1Cache[Link] = L1Cache(max_size=2)
    l1.offer("a", v(1), now=0.0, ttl=60.0)
    l1.offer("b", v(2), now=0.0, ttl=60.0)
    assert l1.get("a", 1.0) is not None  # a is now the most recently used
    l1.offer("c", v(3), now=0.0, ttl=60.0)
    assert (l1.peek("a"), l1.peek("b"), l1.peek("c")) == (v(1), None, v(3))
    assert len(l1) == 2 and l1.evictions == 1


def test_a_fill_for_an_absent_code_is_refused_after_an_eviction_during_the_read() -> None:
    """The entry a Redis read must be compared with may have been evicted while it was in flight."""
    l1: L1Cache[Link] = L1Cache(max_size=1)
    seen = l1.evictions
    l1.offer("a", v(9), now=0.0, ttl=60.0)  # the consumer's newer version...
    l1.offer("b", v(1), now=0.0, ttl=60.0)  # ...evicted by other traffic
    served = l1.offer("a", v(3, "https://stale/"), now=0.0, ttl=60.0, evictions_seen=seen)
    assert served.url == "https://stale/"  # served (it is what Redis said) but not cached
    assert l1.peek("a") is None


def test_disabled_cache_keeps_nothing() -> None:
    l1: L1Cache[Link] = L1Cache(max_size=0)
    assert l1.offer("a", v(1), now=0.0, ttl=60.0) == v(1)
    assert l1.get("a", 0.0) is None and len(l1) == 0
