"""The `clicks` agent (concurrency=1): reads ticks of un-acked records from the stream and hands
them to the ClicksFlow (service_layer/clicks_flow.py), which flushes them through the pipeline
and acks them once durable. The agent only translates faust's stream into the flow's calls.
Beside it runs the flow's idle flush: faust yields a tick only when records arrived."""

import asyncio
from collections.abc import Callable
from typing import Any

import faust

from aggregator.service_layer.clicks_flow import ClicksFlow


def register(
    app: faust.App, topic: Any, *, flow: ClicksFlow, refresh_lag: Callable[[], int], tick: int, tick_s: float
) -> None:
    @app.agent(topic, concurrency=1)
    async def aggregate_clicks(stream: Any) -> None:
        # A restarted agent starts empty: records it held unacked are re-read (gap repair).
        flow.batcher.drain()
        idle = asyncio.create_task(flow.flush_when_idle(stream, refresh_lag, tick_s), name="idle flush")
        try:
            async for events in stream.noack_take(tick, within=tick_s):
                if idle.done():  # it failed: crash the agent like a failed flush of its own
                    idle.result()
                flow.take(events)
                lag = flow.click_lag(refresh_lag())
                flow.metrics.flush_interval.set(flow.policy.target(lag, share=flow.partition_share).max_wait_s)
                # A full tick: faust holds more records right now; take them before flushing.
                await flow.flush_if_due(stream, lag, more_waiting=len(events) >= tick)
        finally:
            idle.cancel()
            await asyncio.gather(idle, return_exceptions=True)
