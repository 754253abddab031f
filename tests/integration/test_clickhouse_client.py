"""The shared ClickHouse client (platformkit.clickhouse) against the stack's ClickHouse 18.16:
answers read back exactly (TabSeparated escapes, JSONEachRow), a gzip-framed insert, and a
refusal carrying ClickHouse's exception code. The same readings run on current ClickHouse (chDB)
in tests/unit/test_current_clickhouse.py."""

import uuid

import pytest
from platformkit.clickhouse import ClickHouseClient, ClickHouseConfig, ClickHouseError, gzip_body

from tests.integration.aggregator.support import CLICKHOUSE_DB, CLICKHOUSE_URL

pytestmark = pytest.mark.integration

ODD = "tab\there, newline\nhere, backslash \\ quote ' nul \0 é"


def client() -> ClickHouseClient:
    return ClickHouseClient(ClickHouseConfig(url=CLICKHOUSE_URL, database=CLICKHOUSE_DB, timeout_s=30))


async def test_the_client_reads_writes_and_reports_refusals_on_18_16() -> None:
    table = f"client_test_{uuid.uuid4().hex[:8]}"
    async with client() as ch:
        assert (await ch.rows("SELECT version()"))[0][0].startswith("18.16")
        await ch.execute(f"CREATE TABLE {table} (s String, n UInt64) ENGINE = Memory")
        try:
            body = "".join(f"{line}\n" for line in ['{"s": "plain", "n": 1}', '{"s": "%s", "n": 18446744073709551615}'])
            odd_json = ODD.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\0", "\\u0000")
            await ch.insert(
                f"INSERT INTO {table} (s, n) FORMAT JSONEachRow",
                gzip_body((body % odd_json).encode()),
                query_id=f"{table}-1",
                gzipped=True,
            )
            assert await ch.rows(f"SELECT s, n FROM {table} ORDER BY n") == [
                ("plain", "1"),
                (ODD, "18446744073709551615"),
            ]
            assert await ch.json_rows(f"SELECT s, n FROM {table} ORDER BY n") == [
                {"s": "plain", "n": "1"},  # 64-bit integers arrive quoted
                {"s": ODD, "n": "18446744073709551615"},
            ]
            with pytest.raises(ClickHouseError) as refused:
                await ch.rows(f"SELECT count() FROM {table}_missing")
            assert refused.value.code == 60 and refused.value.status in (404, 500)  # UNKNOWN_TABLE
        finally:
            await ch.execute(f"DROP TABLE IF EXISTS {table}")
