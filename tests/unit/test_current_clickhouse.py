"""The ClickHouse schema, the aggregator's writes (raw rows, rollup feeds, marker row) and
retention SQL, and the analytics queries
also run on *current* ClickHouse, not only on Debian's 18.16 that the native stack runs (the
compose stack runs a current server). chDB is the ClickHouse engine embedded in-process: the
same SQL goes to a real, current ClickHouse without a server. The adapters' own code builds
every statement and the shared client (platformkit.clickhouse) sends it and reads the answer; only
the transport under the client differs (HTTP to the server there, a call into chDB here)."""

import gzip
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from aggregator.adapters.clickhouse import (
    ALL_TABLES,
    TARGETS,
    ClickHouse,
    ClickHouseEvents,
    ClickHouseLinkOwners,
    marker_row,
    month_start,
)
from aggregator.domain.click_records import ClickRow
from aggregator.domain.link_owners import owner_rows
from aggregator.metrics import AggregatorMetrics
from analytics.adapters.clickhouse import ClickHouseEvents as AnalyticsStore
from analytics.adapters.memory_cache import CountedCache
from analytics.domain.model import DIRECT
from analytics.domain.queries import parse_stats, parse_top
from chdb import session as chdb_session
from contracts.links import LinkCreated, LinkDeleted
from platformkit.clickhouse import ClickHouseClient, ClickHouseConfig, ClickHouseError
from stackctl.migrate import clickhouse_statements

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "shortlink"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# The MergeTree tables (the rest are feeds and views): retention drops their monthly partitions.
MERGE_TREE_TABLES = ALL_TABLES


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as path:
        session = chdb_session.Session(path)
        version = str(session.query("SELECT version()", "TabSeparated")).strip()
        assert int(version.split(".")[0]) >= 24, version  # a current server, not 18.16
        session.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        try:
            yield session
        finally:
            session.close()


def schema_statements() -> list[str]:
    files = sorted(ROOT.glob("services/*/adapters/sql/clickhouse/*.sql"), key=lambda p: (p.name, str(p)))
    assert files
    return [st for f in files for st in clickhouse_statements(f.read_text())]


def over_chdb(session: Any) -> ClickHouseClient:
    """The services' ClickHouse client, answered by chDB: statement in the body, or (INSERT ...
    FORMAT) in the `query` parameter with the rows in the body, as the HTTP interface takes them;
    a refusal as the HTTP interface answers it (status 500, "Code: N. DB::Exception: ...")."""

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.params["database"] == DATABASE
        query = request.url.params.get("query")
        content = request.content
        if request.headers.get("content-encoding") == "gzip":  # as ClickHouse's HTTP interface does
            content = gzip.decompress(content)
        body = content.decode()
        sql = f"{query}\n{body}" if query else body
        session.query(f"USE {DATABASE}")
        try:
            return httpx.Response(200, text=str(session.query(sql, "TabSeparated")))
        except Exception as exc:
            return httpx.Response(500, text=str(exc))

    config = ClickHouseConfig(url="http://clickhouse", database=DATABASE)
    return ClickHouseClient(config, transport=httpx.MockTransport(handle))


def click(
    code: str,
    at: datetime,
    *,
    visitor: str,
    bot: int = 0,
    referrer_host: str = "",
    country: str = "DE",
    event_id: str | None = None,
) -> ClickRow:
    return ClickRow(
        event_id=event_id or str(uuid.uuid4()),
        code=code,
        occurred_at=int(at.timestamp()),
        visitor_key=visitor,
        referrer=f"https://{referrer_host}/" if referrer_host else "",
        referrer_host=referrer_host,
        country=country,
        device="mobile",
        is_bot=bot,
    )


def link_created(code: str, workspace: str, tags: tuple[str, ...]) -> LinkCreated:
    return LinkCreated(
        event_id=str(uuid.uuid4()),
        occurred_at=NOW - timedelta(hours=1),
        code=code,
        url="https://example.com/",
        workspace=workspace,
        tags=tags,
    )


def test_the_schema_applies_and_reapplies(engine: Any) -> None:
    for _ in range(2):  # `just migrate` is idempotent (IF NOT EXISTS everywhere)
        for statement in schema_statements():
            engine.query(f"USE {DATABASE}")
            engine.query(statement)
    tables = set(str(engine.query(f"SHOW TABLES FROM {DATABASE}", "TabSeparated")).split())
    assert (
        set(MERGE_TREE_TABLES) | {"clicks_totals_in", "clicks_breakdown_in", "clicks_top_in", "link_workspaces"}
        <= tables
    )
    assert not tables & {
        "clicks_minute",
        "clicks_hour",
        "clicks_day",
        "clicks_dims_minute",
        "clicks_rollup",
        "clicks_rollup_feed",
        "clicks_top_feed",
    }


async def insert_batch(clickhouse: ClickHouse, rows: list[ClickRow]) -> str:
    """The aggregator's writer: the new clicks of a batch, once, into click_events and both
    rollup feeds, each insert ending with a marker row (is_bot = 2, code '~' + sink id + month).
    Returns the marker code of NOW's month."""
    sink = uuid.uuid4()
    await ClickHouseEvents(clickhouse, AggregatorMetrics()).write(sink, rows)
    return marker_row(sink, month_start(int(NOW.timestamp()))).code


async def test_writes_rollups_queries_and_retention(engine: Any) -> None:
    test_the_schema_applies_and_reapplies(engine)
    code, other = "chdb" + uuid.uuid4().hex[:8], "chdbo" + uuid.uuid4().hex[:8]
    theirs, gone = "chdbt" + uuid.uuid4().hex[:8], "chdbg" + uuid.uuid4().hex[:8]
    workspace = "ws-" + uuid.uuid4().hex[:8]
    rows = [
        click(code, NOW - timedelta(minutes=3), visitor="a", referrer_host="news.example"),
        click(code, NOW - timedelta(minutes=2), visitor="b", country="FR"),
        click(code, NOW - timedelta(minutes=1), visitor="b", country="FR"),
        click(code, NOW - timedelta(minutes=1), visitor="bot", bot=1),
        click(other, NOW - timedelta(minutes=1), visitor="c"),
        click(theirs, NOW - timedelta(minutes=1), visitor="c"),
        click(gone, NOW - timedelta(minutes=1), visitor="c"),
        click(code, NOW - timedelta(days=1000), visitor="ancient"),
    ]
    # Free text reaches ClickHouse unchanged: TabSeparated escapes tabs, newlines, backslashes.
    odd = click(other, NOW - timedelta(days=1000), visitor="tab\there\\ \r\n\0", referrer_host="odd\thost\nname")
    odd = msgspec.structs.replace(odd, referrer="https://odd/?q=a\tb\\c\nd\r\x00e\x07é")
    client = over_chdb(engine)
    try:
        clickhouse = ClickHouse(client)
        marker = await insert_batch(clickhouse, rows)
        await insert_batch(clickhouse, [odd])
        assert msgspec.json.decode(
            await clickhouse.execute(
                "SELECT visitor_key, referrer, referrer_host FROM click_events WHERE event_id = "
                f"toUUID('{odd.event_id}') FORMAT JSONEachRow"
            )
        ) == {"visitor_key": odd.visitor_key, "referrer": odd.referrer, "referrer_host": odd.referrer_host}
        # The checks the aggregator makes: the marker is exactly one row in each table.
        month = month_start(int(NOW.timestamp()))
        for target in TARGETS:
            assert await clickhouse.execute(target.marker_sql.format(code=marker, bucket=month)) == "1\n"
        # A second batch into minutes the first one already wrote: their rollup rows sit in two parts
        # until a merge, and every answer below must already be merged.
        await insert_batch(
            clickhouse,
            [
                click(code, NOW - timedelta(minutes=1), visitor="b", country="FR"),
                click(code, NOW - timedelta(minutes=1), visitor="d"),
            ],
        )

        # Who owns which link (the aggregator's links agent): `code` and `other` are the
        # workspace's, `other` tagged; `theirs` is another workspace's; `gone` was deleted. The
        # same events written twice, and an older event after a newer one, change nothing.
        created = [
            link_created(code, workspace, ()),
            link_created(other, workspace, ("launch",)),
            link_created(theirs, "elsewhere", ("launch",)),
            link_created(gone, workspace, ("launch",)),
        ]
        deleted = LinkDeleted(event_id="e", occurred_at=NOW, code=gone, workspace=workspace)
        owners = ClickHouseLinkOwners(clickhouse)
        await owners.put(owner_rows([*created, deleted]))
        await owners.put(owner_rows([*created, deleted]))  # a replay of `links`
        await owners.put(owner_rows([msgspec.structs.replace(created[3], occurred_at=NOW - timedelta(days=1))]))

        store = AnalyticsStore(client, visitors=CountedCache(max_entries=1000, ttl_s=600))
        # Queries are parsed as the HTTP layer parses them: ranges aligned to the interval, so
        # the answer does not depend on the time of day the test runs at.
        since = (NOW - timedelta(hours=1)).isoformat()
        stats = await store.range_stats(parse_stats(code, {"from": since, "interval": "minute"}, now=NOW))
        # The bot click is apart; the ancient one is outside; the marker never shows.
        assert (stats.clicks, stats.unique_visitors) == (5, 3)
        assert [(p.t, p.clicks, p.unique_visitors) for p in stats.series] == [
            (NOW - timedelta(minutes=3), 1, 1),
            (NOW - timedelta(minutes=2), 1, 1),
            (NOW - timedelta(minutes=1), 3, 2),
        ]
        assert [(s.value, s.clicks) for s in stats.countries] == [("FR", 3), ("DE", 2)]
        assert [(s.value, s.clicks) for s in stats.referrers] == [(DIRECT, 4), ("news.example", 1)]
        assert [(s.value, s.clicks) for s in stats.devices] == [("mobile", 5)]
        with_bots = await store.range_stats(
            parse_stats(code, {"from": since, "interval": "minute", "include_bots": "true"}, now=NOW)
        )
        assert (with_bots.clicks, with_bots.unique_visitors) == (6, 4)
        assert [(p.clicks, p.unique_visitors) for p in with_bots.series] == [(1, 1), (1, 1), (4, 3)]
        hours = await store.range_stats(
            parse_stats(code, {"from": since, "interval": "hour", "include_bots": "true"}, now=NOW)
        )
        assert (hours.clicks, hours.unique_visitors) == (6, 4)
        for window in ("1h", "24h", "7d"):
            top = await store.top(parse_top({"window": window, "limit": "100"}, now=NOW, workspace=workspace))
            assert [(t.code, t.clicks, t.unique_visitors) for t in top] == [(code, 5, 3), (other, 1, 1)], window
            tagged = await store.top(parse_top({"window": window, "tag": "launch"}, now=NOW, workspace=workspace))
            assert [(t.code, t.clicks) for t in tagged] == [(other, 1)], window
            elsewhere = await store.top(parse_top({"window": window}, now=NOW, workspace="elsewhere"))
            assert [t.code for t in elsewhere] == [theirs], window
        days = await store.range_stats(parse_stats(code, {"interval": "day", "include_bots": "true"}, now=NOW))
        assert (days.clicks, days.unique_visitors) == (6, 4)
        # Visitors are cached with the clicks they were counted over: asked again, the same answer;
        # after a new click in one of the minutes, that minute and the total are counted again.
        query = parse_stats(code, {"from": since, "interval": "minute"}, now=NOW)
        assert await store.range_stats(query) == stats
        await insert_batch(clickhouse, [click(code, NOW - timedelta(minutes=1), visitor="e")])
        again = await store.range_stats(query)
        assert (again.clicks, again.unique_visitors) == (6, 4)
        assert [(p.clicks, p.unique_visitors) for p in again.series] == [(1, 1), (1, 1), (4, 3)]

        # The shared client's readings: TabSeparated rows unescaped (the free text above comes back
        # whole), JSONEachRow rows, and a refusal with ClickHouse's exception code.
        [(visitor_key, referrer)] = await client.rows(
            f"SELECT visitor_key, referrer FROM click_events WHERE event_id = toUUID('{odd.event_id}')"
        )
        assert (visitor_key, referrer) == (odd.visitor_key, odd.referrer)
        assert await client.json_rows("SELECT toUInt8(1) AS one, 'a\\tb' AS s") == [{"one": 1, "s": "a\tb"}]
        with pytest.raises(ClickHouseError) as refused:
            await client.rows("SELECT count() FROM no_such_table")
        assert refused.value.code == 60 and refused.value.status == 500  # UNKNOWN_TABLE

        ancient = (NOW - timedelta(days=1000)).strftime("%Y%m")
        for table in MERGE_TREE_TABLES:
            assert ancient in await clickhouse.active_partitions(table), table
            await clickhouse.drop_partition(table, ancient)
            assert ancient not in await clickhouse.active_partitions(table), table
        await store.ping()

    finally:
        await client.aclose()
