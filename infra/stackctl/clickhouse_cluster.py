"""The default stack's ClickHouse schema files, turned into the cluster's (pure).

Each table of services/*/adapters/sql/clickhouse/*.sql becomes, on every node:
- `<name>_local`: the same columns and keys on the Replicated variant of its engine (data of one
  shard, copied between the shard's two replicas through ZooKeeper); Null tables stay Null;
- `<name>`: a Distributed table over the `<name>_local` of every shard, sharded by
  `cityHash64(code)`, so every row of one link (its events, its rollup rows, the aggregator's
  marker rows) lands on one shard and the services' queries and inserts keep their table names.
Materialized views read and write the `_local` tables of their node: an insert into the
Distributed feed table reaches one shard's Null feed, whose views fill that shard's rollups.

Valid on ClickHouse 18.16 (Replicated*MergeTree with PARTITION BY / ORDER BY and {shard}/{replica}
macros, Distributed with a sharding key): `just up --profile cluster` applies it to every node.
"""

import re

CLUSTER_NAME = "shortlink"
SHARDING_KEY = "cityHash64(code)"

_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\s*(.*)$", re.DOTALL)
_CREATE_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\s*(.*)$", re.DOTALL)
_ENGINE = re.compile(r"ENGINE\s*=\s*(\w+)(\([^)]*\))?")
_DROP = re.compile(r"^DROP TABLE IF EXISTS (\w+)$")


def local(name: str) -> str:
    return f"{name}_local"


def _replicated_engine(engine: str, args: str | None, *, database: str, table: str) -> str:
    if engine == "Null":
        return "Null"
    if not engine.endswith("MergeTree"):
        raise ValueError(f"no replicated form of engine {engine} (table {table})")
    inner = (args or "()")[1:-1].strip()
    path = f"'/clickhouse/tables/{{shard}}/{database}/{table}', '{{replica}}'"
    return f"Replicated{engine}({path}{', ' + inner if inner else ''})"


def _distributed(name: str, database: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {name} AS {local(name)} "
        f"ENGINE = Distributed({CLUSTER_NAME}, {database}, {local(name)}, {SHARDING_KEY})"
    )


def cluster_statements(statements: list[str], *, database: str) -> list[str]:
    """The cluster's statements for the default schema's `statements` (in order)."""
    tables = [m.group(1) for st in statements if (m := _CREATE_TABLE.match(st.strip()))]

    def to_local(text: str) -> str:
        for name in tables:
            text = re.sub(rf"\b{name}\b", local(name), text)
        return text

    out: list[str] = []
    for statement in (st.strip() for st in statements):
        if m := _DROP.match(statement):
            out += [statement, f"DROP TABLE IF EXISTS {local(m.group(1))}"]
        elif m := _CREATE_VIEW.match(statement):
            view, target, select = m.groups()
            out.append(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} TO {local(target)} AS\n{to_local(select)}")
        elif m := _CREATE_TABLE.match(statement):
            name, rest = m.groups()
            if rest.startswith("AS "):  # CREATE TABLE x AS y: the same structure and engine as y
                source = rest[3:].strip()
                out.append(f"CREATE TABLE IF NOT EXISTS {local(name)} AS {local(source)}")
            else:
                engine = _ENGINE.search(rest)
                if engine is None:
                    raise ValueError(f"table {name} names no engine")
                replicated = _replicated_engine(engine.group(1), engine.group(2), database=database, table=local(name))
                out.append(
                    f"CREATE TABLE IF NOT EXISTS {local(name)} "
                    + rest[: engine.start()]
                    + f"ENGINE = {replicated}"
                    + rest[engine.end() :]
                )
            out.append(_distributed(name, database))
        else:
            raise ValueError(f"no cluster form for statement: {statement[:80]}")
    return out
