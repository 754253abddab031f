"""The benchmark scripts' modules (infra/bench) for the unit tests of their pure parts."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BENCH = str(Path(__file__).resolve().parents[2] / "infra" / "bench")


@contextmanager
def bench_on_path() -> Iterator[None]:
    """infra/bench on sys.path only while the test module imports from it: its redirect.py must
    not shadow the redirect service package for the tests collected after it."""
    sys.path.insert(0, BENCH)
    try:
        yield
    finally:
        sys.path.remove(BENCH)
