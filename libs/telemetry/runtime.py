"""Where a Python service's tail latency goes when no request is slow: event-loop lag and GC.

A request that arrives while the event loop runs something else (a big batch, a decode, a
garbage collection) waits for it; at a few hundred requests/s on an idle machine that wait is
most of a p99. Two metrics show it, cheaply enough to run always:

- `event_loop_lag_seconds`: how late a timer fires. A task sleeps `interval` (50 ms) and records
  its overshoot: a sample of the wait a request arriving at that moment would have had (20
  wakeups/s, a few microseconds each).
- `python_gc_pause_seconds{generation}`: each garbage collection's duration, from `gc.callbacks`
  (the collector stops the whole interpreter, so every request in flight waits for it).

`freeze_heap()` moves everything alive after start-up (modules, settings, compiled regexes,
caches warmed at start) to the permanent generation, which collections never traverse again:
full collections then scan only what requests created (CPython's `gc.freeze`, meant for this).
"""

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Histogram

LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class RuntimeWatch:
    """The two histograms, in `registry` from `start()` to `stop()` (a process may start and stop
    several runtimes, e.g. tests)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, *, interval: float = 0.05) -> None:
        self.interval = interval
        self._registry = registry
        self.loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late a timer of the event loop fired (sampled every 50 ms)",
            buckets=LAG_BUCKETS,
            registry=None,
        )
        self._pause = Histogram(
            "python_gc_pause_seconds",
            "Duration of each garbage collection, by generation",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=None,
        )
        self._pauses = [self._pause.labels(generation=str(g)) for g in range(3)]
        self._registered = False
        self._gc_started = 0.0
        self._callback: Callable[[str, dict[str, Any]], None] | None = None
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._pauses[info["generation"]].observe(time.perf_counter() - self._gc_started)

    def start(self) -> None:
        """Inside the running loop: start sampling its lag and timing collections."""
        if not self._registered:
            self._registry.register(self.loop_lag)
            self._registry.register(self._pause)
            self._registered = True
        if self._callback is None:
            self._callback = self._on_gc
            gc.callbacks.append(self._callback)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sample(), name="event-loop-lag")

    async def _sample(self) -> None:
        loop, interval, observe = asyncio.get_running_loop(), self.interval, self.loop_lag.observe
        while True:
            due = loop.time() + interval
            await asyncio.sleep(interval)
            observe(max(loop.time() - due, 0.0))

    async def stop(self) -> None:
        if self._registered:
            self._registry.unregister(self.loop_lag)
            self._registry.unregister(self._pause)
            self._registered = False
        if self._callback is not None:
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self._callback)
            self._callback = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def freeze_heap() -> None:
    """After start-up: collect once, then exempt everything alive from future collections."""
    gc.collect()
    gc.freeze()
