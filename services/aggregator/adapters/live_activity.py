"""LiveActivity on Kafka: what each flush counted, per link, on the `link-activity` topic
(libs/contracts/link_activity.py), for analytics' live streams.

Best-effort by design, and kept off the exactness path: `counted` is called by the pipeline
right after PostgreSQL committed a batch's totals; it builds the records from the lists the
totals were made of (no pass over the clicks) and hands them to ONE background send. While a
send is still in flight (Kafka slow or away) the next flush's counts are dropped and counted in
`aggregator_live_dropped_total`, so nothing queues up, no batch ever waits on this topic, and a
failed send is never retried (a retry could deliver counts twice; the exact totals are the sinks').
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from contracts import link_activity

from aggregator.domain.windows import TotalsColumns
from aggregator.metrics import AggregatorMetrics

log = logging.getLogger(__name__)


class _Sendable(Protocol):
    async def send(self, *, key: Any = None, value: Any = None) -> Any: ...


class KafkaLiveActivity:
    def __init__(
        self,
        topic: _Sendable,
        *,
        producer: str,
        metrics: AggregatorMetrics,
        send_timeout_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._topic = topic
        self._producer = producer
        self._metrics = metrics
        self._send_timeout_s = send_timeout_s
        self._clock = clock
        self._in_flight: asyncio.Task[None] | None = None

    def counted(self, totals: TotalsColumns) -> None:
        records = link_activity.split(
            producer=self._producer,
            counted_at=self._clock(),
            codes=totals.codes,
            clicks=totals.clicks,
            bot_clicks=totals.bot_clicks,
            first_at=totals.first_s,
            last_at=totals.last_s,
        )
        if not records:
            return
        if self._in_flight is not None and not self._in_flight.done():
            self._metrics.live_dropped.inc(len(records))
            return
        payloads = [link_activity.encode(r) for r in records]
        self._in_flight = asyncio.get_running_loop().create_task(self._send(payloads), name="link-activity send")

    async def _send(self, payloads: list[bytes]) -> None:
        try:
            async with asyncio.timeout(self._send_timeout_s):
                delivered = [await self._topic.send(value=p) for p in payloads]
                await asyncio.gather(*delivered)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a live view: counted as dropped, never retried
            self._metrics.live_dropped.inc(len(payloads))
            log.warning("link-activity send failed (%d records dropped): %r", len(payloads), exc)
            return
        self._metrics.live_sent.inc(len(payloads))

    async def idle(self) -> None:
        """Until the send in flight (if any) has finished, however it finished."""
        if self._in_flight is not None:
            await asyncio.gather(asyncio.shield(self._in_flight), return_exceptions=True)

    async def close(self) -> None:
        """The worker stops: a send still in flight is abandoned (a live view), not waited for."""
        if self._in_flight is not None and not self._in_flight.done():
            self._in_flight.cancel()
            await asyncio.gather(self._in_flight, return_exceptions=True)
