"""The gap-repair timer survives its stores going away: a faust timer that raises crashes the
worker (seen in the cluster's host cut-off: PostgreSQL unreachable while a partition was stuck)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from aggregator.domain.gaps import Frontier
from aggregator.entrypoints import gap_repair
from aggregator.metrics import AggregatorMetrics

pytestmark = pytest.mark.unit
TOPIC = "clicks"


@dataclass
class FakeConsumer:
    sought: list[tuple[Any, int]] = field(default_factory=list)

    def assignment(self) -> set[faust.types.TP]:
        return {faust.types.TP(TOPIC, 0)}

    async def earliest_offsets(self, *tps: faust.types.TP) -> dict[faust.types.TP, int]:
        return {tp: 0 for tp in tps}

    async def seek(self, tp: faust.types.TP, offset: int) -> None:
        self.sought.append((tp, offset))


@dataclass
class FakeApp:
    consumer: FakeConsumer = field(default_factory=FakeConsumer)
    timers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def timer(self, interval_s: float) -> Callable[[Callable[[], Awaitable[None]]], None]:
        return self.timers.append


class UnreachableFrontierStore:
    async def load(self, topic: str, partitions: list[int]) -> dict[int, int]:
        raise OSError(113, "No route to host")


@dataclass
class Stores:
    frontier: Any


class LazyStores:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    async def get(self) -> Stores:
        return self.stores


async def test_a_stuck_partition_with_its_store_away_waits_for_the_next_round() -> None:
    frontier = Frontier(stuck_after_s=0.0)
    frontier.start(0, 10)
    frontier.processed(0, 12)  # offset 10 and 11 skipped: the partition is stuck at 10
    app = FakeApp()
    gap_repair.register(
        app,  # type: ignore[arg-type]
        topic=TOPIC,
        frontier=frontier,
        runtime=LazyStores(Stores(frontier=UnreachableFrontierStore())),  # type: ignore[arg-type]
        offsets=None,  # type: ignore[arg-type]
        held_min=dict,
        metrics=AggregatorMetrics(),
        interval_s=1.0,
    )
    [repair_gaps] = app.timers
    await repair_gaps()  # notes the frontier
    await repair_gaps()  # stuck now: re-reading the stored frontier fails, and the timer goes on
    assert app.consumer.sought == []  # no seek on a frontier it could not check
    assert frontier.next[0] == 10
