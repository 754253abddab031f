"""Apply every service's schema files, in name order, idempotently (CREATE … IF NOT EXISTS).

PostgreSQL: services/*/adapters/sql/postgres/*.sql, each file one script.
ClickHouse: services/*/adapters/sql/clickhouse/*.sql, split on ';' at line end, one statement
per HTTP request (the HTTP interface takes one statement at a time).
"""

from pathlib import Path

from platformkit.clickhouse import ClickHouseClient, ClickHouseConfig, ClickHouseError

from stackctl.config import StackSettings
from stackctl.first_start import say


def _files(s: StackSettings, store: str) -> list[Path]:
    return sorted(s.repo_root.glob(f"services/*/adapters/sql/{store}/*.sql"), key=lambda p: (p.name, str(p)))


def clickhouse_statements(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";").strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [st for st in statements if st]


async def migrate_postgres(s: StackSettings) -> None:
    import asyncpg

    conn = await asyncpg.connect(s.postgres_dsn)
    try:
        for path in _files(s, "postgres"):
            say(f"postgres: applying {path.relative_to(s.repo_root)}")
            await conn.execute(path.read_text())
    finally:
        await conn.close()


async def migrate_clickhouse(s: StackSettings) -> None:
    if s.is_cluster:
        for node in s.clickhouse_nodes:
            await migrate_clickhouse_node(s, node)
        return
    client = ClickHouseClient(ClickHouseConfig(url=s.clickhouse_url, database=s.clickhouse_database, timeout_s=30))
    try:

        async def run(sql: str, database: str = "default") -> None:
            try:
                await client.execute(sql, database=database)
            except ClickHouseError as exc:
                raise RuntimeError(f"ClickHouse refused:\n{sql}\n-> {exc.message[:500]}") from exc

        await run(f"CREATE DATABASE IF NOT EXISTS {s.clickhouse_database}")
        for path in _files(s, "clickhouse"):
            say(f"clickhouse: applying {path.relative_to(s.repo_root)}")
            for statement in clickhouse_statements(path.read_text()):
                await run(statement, s.clickhouse_database)
    finally:
        await client.aclose()


async def migrate_clickhouse_node(s: StackSettings, node: int) -> None:
    """Cluster profile: the same schema files as replicated tables and Distributed tables over
    them (stackctl.clickhouse_cluster), applied to each node (no ON CLUSTER: distributed DDL waits
    for every node, and one that is down would stall `just up`)."""
    from stackctl.clickhouse_cluster import cluster_statements

    base_url = f"http://127.0.0.1:{s.clickhouse_node_ports(node)[0]}"
    client = ClickHouseClient(ClickHouseConfig(url=base_url, database=s.clickhouse_database, timeout_s=60))
    try:

        async def run(sql: str, database: str = "default") -> None:
            try:
                await client.execute(sql, database=database)
            except ClickHouseError as exc:
                raise RuntimeError(f"ClickHouse node {node} refused:\n{sql}\n-> {exc.message[:500]}") from exc

        await run(f"CREATE DATABASE IF NOT EXISTS {s.clickhouse_database}")
        for path in _files(s, "clickhouse"):
            say(f"clickhouse-{node}: applying {path.relative_to(s.repo_root)} (replicated + distributed)")
            statements = cluster_statements(clickhouse_statements(path.read_text()), database=s.clickhouse_database)
            for statement in statements:
                await run(statement, s.clickhouse_database)
    finally:
        await client.aclose()
