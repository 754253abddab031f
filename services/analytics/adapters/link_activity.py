"""The `link-activity` topic (libs/contracts/link_activity.py), followed from its end.

Every analytics process reads the whole topic (a live stream may be opened on any of them) with
its own group-less consumer: no consumer group, no committed offset, nothing to rebalance. It
starts at the end (what was counted before the process started is in `/stats` already) and hands
each row to the hub. An undecodable record is skipped and counted (the topic is a live view; the
aggregator's own dead-letter path is for `clicks`, where counts are at stake).
"""

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from contracts import InvalidEvent, link_activity

log = logging.getLogger(__name__)

# Row handler: (code, clicks, bot_clicks, first_at, last_at).
OnRow = Callable[[str, int, int, int, int], None]


class LinkActivityFeed:
    def __init__(self, *, bootstrap_servers: str, topic: str, client_id: str, on_row: OnRow) -> None:
        self._topic = topic
        self._on_row = on_row
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            group_id=None,  # every partition, no group, no commits
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        self._task: asyncio.Task[None] | None = None
        self.records = 0
        self.invalid = 0

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self._topic])
        self._task = asyncio.get_running_loop().create_task(self._run(), name="link-activity feed")

    async def _run(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception:  # the client reconnects by itself; do not spin on a persistent error
                log.exception("link-activity fetch failed")
                await asyncio.sleep(1.0)
                continue
            for messages in batches.values():
                for message in messages:
                    self._apply(message.value)

    def _apply(self, payload: bytes | None) -> None:
        try:
            record = link_activity.decode(payload or b"")
        except InvalidEvent as exc:
            self.invalid += 1
            log.warning("link-activity record skipped: %s", exc.reason)
            return
        self.records += 1
        on_row = self._on_row
        for row in record.rows():
            on_row(*row)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()
