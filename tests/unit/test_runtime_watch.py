"""The event-loop lag and GC pause metrics see what they are there to see."""

import asyncio
import gc
import time

import pytest
from prometheus_client import CollectorRegistry
from telemetry.runtime import RuntimeWatch

pytestmark = pytest.mark.unit


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def _until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not seen in time"
        await asyncio.sleep(0.01)


async def test_a_blocked_loop_shows_as_lag_and_a_collection_as_a_pause() -> None:
    registry = CollectorRegistry()
    watch = RuntimeWatch(registry, interval=0.01)
    watch.start()
    try:
        await _until(lambda: _value(registry, "event_loop_lag_seconds_count") >= 2)
        assert _value(registry, "event_loop_lag_seconds_bucket", le="0.02") == _value(
            registry, "event_loop_lag_seconds_count"
        )
        time.sleep(0.06)  # noqa: ASYNC251 -- the point: the loop is blocked, its timer fires ~50 ms late
        await _until(
            lambda: (
                _value(registry, "event_loop_lag_seconds_bucket", le="0.02")
                < _value(registry, "event_loop_lag_seconds_count")
            )
        )
        full = _value(registry, "python_gc_pause_seconds_count", generation="2")
        gc.collect()
        assert _value(registry, "python_gc_pause_seconds_count", generation="2") == full + 1
    finally:
        await watch.stop()
    gc.collect()
    assert registry.get_sample_value("python_gc_pause_seconds_count", {"generation": "2"}) is None  # unhooked
    again = RuntimeWatch(registry)  # a second runtime in the same process registers again
    again.start()
    await again.stop()
