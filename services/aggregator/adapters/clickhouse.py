"""ClickHouse over HTTP: batched JSONEachRow inserts into click_events (the materialized views
fill the rollups), plus the partition housekeeping the retention job needs.

Works on 18.16 (the local stack) and current servers. Inserts are idempotent in effect: a
repeated event id collapses in the ReplacingMergeTree and every count is uniqExact(event_id).
"""

import time
from collections.abc import Sequence

import httpx
import msgspec

from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.domain.clicks import ClickRow

ROLLUP_TABLES = ("clicks_minute", "clicks_hour", "clicks_day", "clicks_dims_minute")
ALL_TABLES = ("click_events", *ROLLUP_TABLES)
INSERT_COLUMNS = (
    "event_id", "code", "occurred_at", "visitor_key", "referrer", "referrer_host", "country",
    "device", "is_bot",
)


class ClickHouseError(RuntimeError):
    """The server refused a statement (status and message from its answer)."""


def build_client(url: str, *, timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=timeout_s)


class ClickHouse:
    def __init__(self, client: httpx.AsyncClient, *, database: str) -> None:
        self._client = client
        self._database = database

    async def execute(self, sql: str, *, body: bytes | None = None) -> str:
        """Run one statement; with `body`, the statement is in the query string (INSERT ... FORMAT)."""
        params = {"database": self._database}
        if body is None:
            response = await self._client.post("/", params=params, content=sql.encode())
        else:
            response = await self._client.post("/", params={**params, "query": sql}, content=body)
        if response.status_code != 200:
            raise ClickHouseError(f"ClickHouse {response.status_code}: {response.text[:500]}")
        return response.text

    async def ping(self) -> None:
        await self.execute("SELECT 1")

    async def active_partitions(self, table: str) -> list[str]:
        text = await self.execute(
            "SELECT DISTINCT partition FROM system.parts "
            f"WHERE database = currentDatabase() AND table = '{table}' AND active"
        )
        return [line.strip().strip("'") for line in text.splitlines() if line.strip()]

    async def drop_partition(self, table: str, partition: str) -> None:
        if not (partition.isdigit() and len(partition) == 6):
            raise ValueError(f"not a monthly partition id: {partition!r}")
        await self.execute(f"ALTER TABLE {table} DROP PARTITION {partition}")


class ClickHouseEvents:
    """EventStore port: one INSERT per batch."""

    _encoder = msgspec.json.Encoder()

    def __init__(self, clickhouse: ClickHouse, metrics: AggregatorMetrics) -> None:
        self._ch = clickhouse
        self._metrics = metrics
        self._sql = f"INSERT INTO click_events ({', '.join(INSERT_COLUMNS)}) FORMAT JSONEachRow"

    async def insert(self, rows: Sequence[ClickRow]) -> None:
        body = self._encoder.encode_lines(rows)
        started = time.perf_counter()
        await self._ch.execute(self._sql, body=body)
        self._metrics.clickhouse_insert_seconds.observe(time.perf_counter() - started)
        self._metrics.clickhouse_batch_rows.observe(len(rows))
