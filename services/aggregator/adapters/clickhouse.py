"""ClickHouse over HTTP: each batch of new clicks goes to the raw table (JSONEachRow) and to the
three rollup feeds (TabSeparated; Null tables whose materialized views fill clicks_totals,
clicks_breakdown and clicks_top), plus the partition housekeeping the retention job needs. Works
on 18.16 and current servers.

Exactly once, per target table: the rows of one month go in ONE insert (one block, so one part:
all or nothing) that ends with a *marker row* (code '~<sink id>-<yyyymm>', is_bot = 2), which
the views carry into their tables too. Before (re)writing, `write` looks for the marker in each
target and skips the targets that already hold it; the insert's query_id is fixed per target,
so ClickHouse itself refuses a second copy while an earlier attempt is still running. The
transport is the shared client (platformkit.clickhouse). The body is sent gzip-framed (level 0:
framing and CRC only, ~1 us per row): ClickHouse takes a plain body cut off at a line boundary
(a client killed mid-send) as complete and would insert the rows before the cut without the
marker; a cut gzip body fails its checksum and inserts nothing (tried on 18.16). Every analytics
query filters is_bot IN (0, 1): markers never show.

The raw table's body is JSONEachRow (msgspec writes a row in ~0.3 us, UUIDs included); the feeds'
body is TabSeparated with only the columns their views read (no event id, no full referrer), built
once and sent to all three.
"""

import asyncio
import calendar
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from platformkit.clickhouse import ClickHouseClient, ClickHouseConfig, gzip_body

from aggregator.domain.click_records import ClickRow
from aggregator.domain.link_owners import LinkOwnerRow
from aggregator.metrics import AggregatorMetrics

# MergeTree tables (retention drops their monthly partitions).
ALL_TABLES = ("click_events", "clicks_totals", "clicks_breakdown", "clicks_top")
# The raw table's columns, and the feeds' (what their views read), in body order.
RAW_COLUMNS = (
    "event_id",
    "code",
    "occurred_at",
    "visitor_key",
    "referrer",
    "referrer_host",
    "country",
    "device",
    "is_bot",
)
FEED_COLUMNS = ("code", "occurred_at", "visitor_key", "referrer_host", "country", "device", "is_bot")
MARKER_BOT = 2


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where a batch is inserted and how its marker is found afterwards."""

    insert_into: str
    raw: bool  # the raw table's body (every column); else the feeds' body
    marker_sql: str  # formatted with code= and bucket= (Unix seconds of the marker's minute)

    @property
    def insert_sql(self) -> str:
        if self.raw:
            return f"INSERT INTO {self.insert_into} ({', '.join(RAW_COLUMNS)}) FORMAT JSONEachRow"
        return f"INSERT INTO {self.insert_into} ({', '.join(FEED_COLUMNS)}) FORMAT TabSeparated"


TARGETS = (
    Target(insert_into="click_events", raw=True, marker_sql="SELECT count() FROM click_events WHERE code = '{code}'"),
    Target(
        insert_into="clicks_totals_in", raw=False, marker_sql="SELECT count() FROM clicks_totals WHERE code = '{code}'"
    ),
    Target(
        insert_into="clicks_breakdown_in",
        raw=False,
        marker_sql="SELECT count() FROM clicks_breakdown WHERE code = '{code}'",
    ),
    Target(
        insert_into="clicks_top_in",
        raw=False,
        marker_sql="SELECT count() FROM clicks_top WHERE grain = 0 AND bucket = toDateTime({bucket}) "
        "AND is_bot = 2 AND code = '{code}'",
    ),
)
# TabSeparated escapes: a value never holds a raw tab, newline or backslash.
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def tsv(value: str) -> str:
    """`value` as a TabSeparated field (the common case, nothing to escape, costs one scan)."""
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_TSV_ESCAPES)


_RAW_ENCODER = msgspec.json.Encoder()


def raw_body(rows: Sequence[ClickRow]) -> bytes:
    """The raw table's body (RAW_COLUMNS: ClickRow's fields), JSONEachRow."""
    return _RAW_ENCODER.encode_lines(rows)


def feed_body(rows: Sequence[ClickRow]) -> bytes:
    """The feeds' body (FEED_COLUMNS), TabSeparated. Codes, countries and devices are plain tokens
    (the contracts' patterns and enums); visitor keys and referrer hosts are free text, escaped
    when they hold anything but printable characters without a backslash (one check for both)."""
    lines = []
    for r in rows:
        key, host = r.visitor_key, r.referrer_host
        free = key + host
        if not free.isprintable() or "\\" in free:
            key, host = tsv(key), tsv(host)
        lines.append(f"{r.code}\t{r.occurred_at}\t{key}\t{host}\t{r.country}\t{r.device}\t{r.is_bot}\n")
    return "".join(lines).encode()


def month_start(seconds: int) -> int:
    """Unix seconds of the first instant of the UTC month holding `seconds`."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0))


def split_by_month(rows: Sequence[ClickRow]) -> dict[int, list[ClickRow]]:
    """Rows per month (key: the month's first second): one insert per monthly partition."""
    months: dict[int, list[ClickRow]] = {}
    lo = hi = -1
    current: list[ClickRow] = []
    for row in rows:
        at = row.occurred_at
        if not lo <= at < hi:
            lo = month_start(at)
            moment = datetime.fromtimestamp(lo, UTC)
            hi = calendar.timegm((moment.year + moment.month // 12, moment.month % 12 + 1, 1, 0, 0, 0))
            current = months.setdefault(lo, [])
        current.append(row)
    return months


def gzip_framed(body: bytes) -> bytes:
    """`body` in gzip framing without compression: a cut anywhere fails the CRC or the length."""
    return gzip_body(body, level=0)


def marker_row(sink_id: uuid.UUID, month: int) -> ClickRow:
    stamp = datetime.fromtimestamp(month, UTC).strftime("%Y%m")
    return ClickRow(
        event_id=str(sink_id),
        code=f"~{sink_id.hex}-{stamp}",
        occurred_at=month,
        visitor_key="~",
        referrer="",
        referrer_host="",
        country="ZZ",
        device="other",
        is_bot=MARKER_BOT,
    )


def build_client(url: str, *, database: str, timeout_s: float) -> ClickHouseClient:
    return ClickHouseClient(ClickHouseConfig(url=url, database=database, timeout_s=timeout_s))


class ClickHouse:
    """The aggregator's statements over the shared client (platformkit.clickhouse)."""

    def __init__(self, client: ClickHouseClient) -> None:
        self._client = client

    async def execute(self, sql: str) -> str:
        """Run one statement and return its text answer."""
        return await self._client.execute(sql)

    async def insert(self, sql: str, *, framed_body: bytes, query_id: str) -> None:
        """INSERT ... FORMAT with a `gzip_framed` body, under a fixed query id."""
        await self._client.insert(sql, framed_body, query_id=query_id, gzipped=True)

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
    """EventStore port: per month, one insert per target, each found again by its marker."""

    def __init__(self, clickhouse: ClickHouse, metrics: AggregatorMetrics) -> None:
        self._ch = clickhouse
        self._metrics = metrics

    async def write(self, sink_id: uuid.UUID, rows: Sequence[ClickRow], *, fresh: bool = False) -> None:
        for month, month_rows in split_by_month(rows).items():
            marker = marker_row(sink_id, month)
            missing = [t for t in TARGETS if fresh or not await self.holds(t, marker)]
            if not missing:
                continue
            batch = [*month_rows, marker]
            raw, feed = gzip_framed(raw_body(batch)), gzip_framed(feed_body(batch))
            # The targets are independent parts: inserted side by side (ClickHouse runs each on its
            # own thread). Every insert is awaited to its end, failed or not, before this returns
            # or raises: a retry must never look for a marker while an earlier insert still runs.
            results = await asyncio.gather(
                *(self._insert(t, marker, raw if t.raw else feed, len(month_rows)) for t in missing),
                return_exceptions=True,
            )
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            if failed is not None:
                raise failed

    async def _insert(self, target: Target, marker: ClickRow, body: bytes, rows: int) -> None:
        started = time.perf_counter()
        await self._ch.insert(target.insert_sql, framed_body=body, query_id=f"{marker.code[1:]}-{target.insert_into}")
        self._metrics.clickhouse_insert_seconds.observe(time.perf_counter() - started)
        self._metrics.clickhouse_batch_rows.observe(rows)

    async def holds(self, target: Target, marker: ClickRow) -> bool:
        text = await self._ch.execute(target.marker_sql.format(code=marker.code, bucket=marker.occurred_at))
        return int(text.strip() or 0) > 0


_OWNER_ENCODER = msgspec.json.Encoder()


class ClickHouseLinkOwners:
    """link_workspaces: the owner and tags of every link (see its CREATE TABLE), for /top.

    Rows carry the event's version, so writing the same events twice (a retry, a replay of
    `links`) changes nothing a query sees."""

    INSERT = "INSERT INTO link_workspaces (workspace, code, tags, deleted, version) FORMAT JSONEachRow"

    def __init__(self, clickhouse: ClickHouse) -> None:
        self._ch = clickhouse

    async def put(self, rows: Sequence[LinkOwnerRow]) -> None:
        if rows:
            await self._ch.insert(
                self.INSERT,
                framed_body=gzip_framed(_OWNER_ENCODER.encode_lines(rows)),
                query_id=f"link-owners-{uuid.uuid4().hex}",
            )
