"""The cluster profile (`just up --profile cluster`, docs/cluster.md): its configuration files,
its supervised infrastructure programs and their probes. The services are the default stack's
programs with other addresses (service_overrides); render.py and checks.py call in here when
STACK_PROFILE is `cluster`.

What runs, natively, from the same Debian packages and Maven jars as the default stack:
- Kafka x3 in KRaft combined mode (each node broker and controller: 3 voters; on one 2-core
  machine three more JVMs for dedicated controllers would cost more than they prove), default
  replication factor 3, min.insync.replicas 2, unclean leader election off;
- PostgreSQL primary (`postgres`) + a streaming replica (`postgres-replica`, pg_basebackup -R)
  + PgBouncer (transaction pooling) in front of both;
- ClickHouse 18.16 x4 (2 shards x 2 replicas) with ZooKeeper (18.16 has no ClickHouse Keeper),
  and nginx balancing the services' ClickHouse HTTP requests over the four nodes;
- Redis, its replica and Sentinels as in the default stack;
- redirect replicas and aggregator workers on three hosts: network namespaces (netns.py), or
  loopback addresses (CLUSTER_HOSTS) where namespaces cannot be made.
"""

import asyncio
import functools
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from stackctl.config import StackSettings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def kafka_programs(s: StackSettings) -> list[str]:
    return [f"kafka-{i}" for i in range(1, len(s.kafka_broker_ports) + 1)]


def clickhouse_programs(s: StackSettings) -> list[str]:
    return [f"clickhouse-{n}" for n in s.clickhouse_nodes]


def infra_programs(s: StackSettings, sentinels: list[str]) -> list[str]:
    """Every infrastructure program but the replica (it is cloned from the running primary)."""
    return [
        *kafka_programs(s),
        "postgres",
        "pgbouncer",
        "zookeeper",
        *clickhouse_programs(s),
        "redis",
        "redis-replica",
        *sentinels,
        "nginx",
        "prometheus",
    ]


# -- configuration files -------------------------------------------------------------------------


def _set_properties(text: str, values: dict[str, object]) -> str:
    """`key=value` lines of a properties file replaced (or appended) with `values`."""
    lines = text.splitlines()
    for key, value in values.items():
        pattern = re.compile(rf"^{re.escape(key)}=")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        if hits:
            lines[hits[0]] = f"{key}={value}"
        else:
            lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def kafka_data_dir(s: StackSettings, broker: int) -> Path:
    return s.path(f"kafka-{broker}", "data")


def kafka_properties(s: StackSettings, broker: int, default_text: str) -> str:
    """Broker `broker` (1-based): the default stack's rendered properties, clustered."""
    voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in enumerate(s.kafka_controller_ports, start=1))
    rf = s.kafka_replication_factor
    return _set_properties(
        default_text.replace("Single-node KRaft.", "Cluster profile: one of three KRaft nodes."),
        {
            "node.id": broker,
            "controller.quorum.voters": voters,
            **kafka_listeners(s, broker),
            "log.dirs": kafka_data_dir(s, broker),
            "default.replication.factor": rf,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": 2,
            # acks=all producers (relay, redirect, faust) need 2 of 3 copies: one broker may be lost.
            "min.insync.replicas": 2,
            "unclean.leader.election.enable": "false",
            "num.io.threads": 2,
        },
    )


def kafka_listeners(s: StackSettings, broker: int) -> dict[str, str]:
    """Broker `broker`'s listeners: PLAINTEXT on 127.0.0.1 for the root namespace (brokers,
    tools, the services there) and, with the hosts in namespaces, HOSTS on the bridge address,
    advertised as such, so the hosts' processes (bootstrapped from it) are sent to addresses
    they reach. Kafka refuses two listeners on one port: HOSTS has its own (kafka_hosts_ports)."""
    port, controller = s.kafka_broker_ports[broker - 1], s.kafka_controller_ports[broker - 1]
    listeners = [f"PLAINTEXT://127.0.0.1:{port}"]
    protocols = ["PLAINTEXT:PLAINTEXT"]
    if s.netns_in_use:
        listeners.append(f"HOSTS://{s.netns_bridge_address}:{s.kafka_hosts_ports[broker - 1]}")
        protocols.append("HOSTS:PLAINTEXT")
    return {
        "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{controller}"]),
        "advertised.listeners": ",".join(listeners),
        "listener.security.protocol.map": ",".join([*protocols, "CONTROLLER:PLAINTEXT"]),
    }


def clickhouse_config(s: StackSettings, node: int, default_text: str) -> str:
    """Node `node`: the default stack's rendered config with its own ports and data, the cluster's
    shards, ZooKeeper and this node's macros."""
    http, tcp, interserver = s.clickhouse_node_ports(node)
    shard, replica = s.clickhouse_shard_replica(node)
    text = (
        default_text.replace(f"<http_port>{s.clickhouse_http_port}</http_port>", f"<http_port>{http}</http_port>")
        .replace(f"<tcp_port>{s.clickhouse_tcp_port}</tcp_port>", f"<tcp_port>{tcp}</tcp_port>")
        .replace(
            f"<interserver_http_port>{s.clickhouse_interserver_port}</interserver_http_port>",
            f"<interserver_http_port>{interserver}</interserver_http_port>",
        )
        .replace(str(s.path("clickhouse", "data")), str(s.path(f"clickhouse-{node}", "data")))
        .replace(str(s.path("clickhouse", "users.xml")), str(s.path("clickhouse-cluster", "users.xml")))
    )
    shards = []
    for first in range(1, len(s.clickhouse_nodes) + 1, 2):
        replicas = "".join(
            f"<replica><host>127.0.0.1</host><port>{s.clickhouse_node_ports(n)[1]}</port></replica>"
            for n in (first, first + 1)
        )
        shards.append(f"            <shard><internal_replication>true</internal_replication>{replicas}</shard>")
    cluster = "\n".join(
        [
            "    <interserver_http_host>127.0.0.1</interserver_http_host>",
            "    <remote_servers>",
            "        <shortlink>",
            *shards,
            "        </shortlink>",
            "    </remote_servers>",
            "    <zookeeper>",
            f"        <node><host>127.0.0.1</host><port>{s.zookeeper_port}</port></node>",
            "        <session_timeout_ms>10000</session_timeout_ms>",
            "    </zookeeper>",
            f"    <macros><shard>{shard}</shard><replica>replica-{replica}</replica></macros>",
        ]
    )
    return text.replace("</yandex>", cluster + "\n</yandex>")


def clickhouse_users(default_text: str) -> str:
    """The default users file, with synchronous Distributed inserts: an insert answers once every
    shard holds its rows, so the aggregator's marker check right after it sees them (and a
    node's crash never strands rows in its local send queue). Without insert deduplication:
    Replicated tables drop a block identical to a recent one, and a shard's share of a rollup
    feed (its marker row went to the other shard) can equal an earlier one (one click of the same
    link, minute and visitor): measured, 33 of 10,335 clicks missing from clicks_totals. Exactness
    is the aggregator's (its PostgreSQL ledger and marker rows), as on the default stack."""
    return default_text.replace(
        "<load_balancing>random</load_balancing>",
        "<load_balancing>random</load_balancing>\n"
        "            <insert_distributed_sync>1</insert_distributed_sync>\n"
        "            <insert_deduplicate>0</insert_deduplicate>\n"
        "            <skip_unavailable_shards>0</skip_unavailable_shards>",
    )


def zookeeper_config(s: StackSettings) -> str:
    return "\n".join(
        [
            "# Generated by `just up --profile cluster`: ClickHouse 18.16's replication coordinator.",
            "# One server (standalone): the ensemble of three is a list of server.N lines more.",
            f"dataDir={s.path('zookeeper', 'data')}",
            f"clientPort={s.zookeeper_port}",
            "clientPortAddress=127.0.0.1",
            "tickTime=2000",
            "initLimit=10",
            "syncLimit=5",
            "maxClientCnxns=200",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,mntr",
            "autopurge.snapRetainCount=3",
            "autopurge.purgeInterval=1",
            "",
        ]
    )


def pgbouncer_ini(s: StackSettings) -> str:
    db = s.postgres_db
    return "\n".join(
        [
            "; Generated by `just up --profile cluster` (infra/stackctl/cluster.py).",
            "[databases]",
            f"{db} = host=127.0.0.1 port={s.postgres_port} dbname={db}",
            f"{db}_replica = host=127.0.0.1 port={s.postgres_replica_port} dbname={db}",
            "",
            "[pgbouncer]",
            f"listen_addr = {','.join(s.infra_addresses)}",
            f"listen_port = {s.pgbouncer_port}",
            f"unix_socket_dir = {s.path('pgbouncer')}",
            "auth_type = scram-sha-256",
            f"auth_file = {s.path('pgbouncer', 'userlist.txt')}",
            # Transaction pooling: a server connection is a client's only for one transaction, so
            # thousands of clients share CLUSTER_PGBOUNCER_POOL_SIZE connections per database. PgBouncer
            # 1.18 (Debian 12) does not track prepared statements (1.21 does, max_prepared_statements):
            # the services' asyncpg pools run with POSTGRES_STATEMENT_CACHE_SIZE=0.
            "pool_mode = transaction",
            f"max_client_conn = {s.cluster_pgbouncer_max_clients}",
            f"default_pool_size = {s.cluster_pgbouncer_pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            "server_reset_query =",
            # asyncpg sends it as a startup parameter; PgBouncer 1.18 would refuse the login.
            "ignore_startup_parameters = extra_float_digits",
            "server_connect_timeout = 3",
            "server_login_retry = 1",
            # A client waits at most this long for a server connection (primary down: it then gets an
            # error, the service answers 503), rather than PgBouncer's default of 120 s.
            "query_wait_timeout = 5",
            "admin_users = postgres",
            "stats_users = postgres",
            "",
        ]
    )


def pgbouncer_userlist(s: StackSettings) -> str:
    return f'"{s.postgres_user}" "{s.postgres_password}"\n'


def _write(path: Path, text: str) -> bool:
    from stackctl.render import _write as write

    return write(path, text)


def render(s: StackSettings, default_files: dict[str, str]) -> None:
    """Write the cluster's files from the default stack's rendered texts (`default_files`: template
    name -> rendered text)."""
    for broker in range(1, len(s.kafka_broker_ports) + 1):
        _write(
            s.path(f"kafka-{broker}", "server.properties"),
            kafka_properties(s, broker, default_files["kafka-server.properties"]),
        )
        kafka_data_dir(s, broker).mkdir(parents=True, exist_ok=True)
    for node in s.clickhouse_nodes:
        _write(
            s.path(f"clickhouse-{node}", "config.xml"),
            clickhouse_config(s, node, default_files["clickhouse-config.xml"]),
        )
        for sub in ("data", "data/tmp", "data/user_files", "data/format_schemas"):
            s.path(f"clickhouse-{node}", sub).mkdir(parents=True, exist_ok=True)
    _write(s.path("clickhouse-cluster", "users.xml"), clickhouse_users(default_files["clickhouse-users.xml"]))
    _write(s.path("zookeeper", "zoo.cfg"), zookeeper_config(s))
    s.path("zookeeper", "data").mkdir(parents=True, exist_ok=True)
    _write(s.path("pgbouncer", "pgbouncer.ini"), pgbouncer_ini(s))
    _write(s.path("pgbouncer", "userlist.txt"), pgbouncer_userlist(s))
    if os.geteuid() == 0:  # pgbouncer runs as postgres (it refuses root)
        for path in (s.path("pgbouncer"), s.path("pgbouncer", "pgbouncer.ini"), s.path("pgbouncer", "userlist.txt")):
            shutil.chown(path, "postgres", "postgres")


# A host that stops answering (frozen, cut off) still completes TCP handshakes in its kernel, or
# holds nginx's kept-alive connections: only a read timeout shows nginx it is gone (the default
# 30 s: measured, 834 of 4,888 redirects timed out at the client during a 30 s freeze). A redirect
# answers in milliseconds, so after 3 s nginx marks the host failed (max_fails=1, 2 s) and sends
# the request to the next one (a GET: safe to repeat) within a client's patience. Not 1 s: on this
# loaded 2-core machine replicas stalled past 1 s while PostgreSQL restarted, all three were marked
# failed at once and nginx answered 320 redirects "no live upstreams". (The read timeout itself is
# StackSettings.redirect_read_timeout: the replicas are told it too.)
NGINX_REDIRECT_TIMEOUTS = "\n".join(
    [
        "            proxy_send_timeout 3s;",
        "            proxy_next_upstream_tries 3;",
    ]
)


def nginx_clickhouse_server(s: StackSettings) -> str:
    """An nginx server in front of the ClickHouse nodes' HTTP interface: a stopped node is skipped
    (connect error; a POST is retried only when it could not be sent)."""
    servers = "\n".join(
        f"        server 127.0.0.1:{s.clickhouse_node_ports(n)[0]} max_fails=1 fail_timeout=2s;"
        for n in s.clickhouse_nodes
    )
    return "\n".join(
        [
            "    # Cluster profile: the services' ClickHouse entry point, over every node (each has the",
            "    # Distributed tables).",
            "    upstream clickhouse {",
            servers,
            "        keepalive 32;",
            "    }",
            "    server {",
            *(f"        listen {address}:{s.clickhouse_lb_port};" for address in s.infra_addresses),
            "        access_log off;",
            "        client_max_body_size 256m;",
            "        location / {",
            "            proxy_pass http://clickhouse;",
            "            proxy_read_timeout 60s;",
            "            proxy_next_upstream error timeout http_502 http_503;",
            "        }",
            "    }",
        ]
    )


# -- programs -------------------------------------------------------------------------------------


def programs(s: StackSettings, program: "functools.partial[str]") -> list[str]:
    """supervisord sections of the cluster's own infrastructure (`program(name, command, **extra)`)."""
    from stackctl.render import postgres_bin_dir

    pg = postgres_bin_dir()
    parts = []
    for name in kafka_programs(s):
        parts.append(
            program(
                name,
                f"java {s.kafka_heap} -XX:+UseG1GC -Djava.awt.headless=true "
                f"-Dlog4j.configuration=file:{s.path('kafka', 'log4j.properties')} "
                f"-cp {s.path('kafka', 'libs')}/* kafka.Kafka {s.path(name, 'server.properties')}",
                stopsignal="TERM",
                stopwaitsecs="60",
            )
        )
    parts.append(
        program(
            "postgres-replica",
            f"{pg}/postgres -D {s.path('postgres-replica', 'data')} -p {s.postgres_replica_port} "
            f"-k {s.path('postgres-replica', 'run')} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c shared_buffers=128MB -c hot_standby=on",
            user="postgres",
            stopsignal="INT",
        )
    )
    parts.append(
        program(
            "pgbouncer",
            f"/usr/sbin/pgbouncer {s.path('pgbouncer', 'pgbouncer.ini')}",
            user="postgres",
            stopsignal="INT",
        )
    )
    parts.append(
        program(
            "zookeeper",
            "java -Xms64m -Xmx256m -Djava.awt.headless=true "
            f"-Dzookeeper.log.dir={s.log_dir} -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar "
            f"org.apache.zookeeper.server.quorum.QuorumPeerMain {s.path('zookeeper', 'zoo.cfg')}",
            stopsignal="TERM",
        )
    )
    for node, name in zip(s.clickhouse_nodes, clickhouse_programs(s), strict=True):
        parts.append(
            program(
                name,
                f"/usr/sbin/clickhouse-server --config-file={s.path(f'clickhouse-{node}', 'config.xml')}",
            )
        )
    return parts


def service_overrides(s: StackSettings) -> dict[str, str]:
    """Environment of every service process in the cluster (on top of the default stack's)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap,
        "POSTGRES_DSN": s.pgbouncer_dsn,
        # PgBouncer 1.18 in transaction pooling: no named prepared statements across transactions.
        "POSTGRES_STATEMENT_CACHE_SIZE": "0",
        "ANALYTICS_POSTGRES_READ_DSN": s.pgbouncer_read_dsn,
        "CLICKHOUSE_URL": s.clickhouse_url,
        "AGGREGATOR_TOPIC_REPLICATION_FACTOR": str(s.kafka_replication_factor),
        "STACK_PROFILE": "cluster",
        "CLUSTER_PORT_BASE": str(s.cluster_port_base),
        "CLUSTER_HOSTS": s.cluster_hosts,
    }


def host_overrides(s: StackSettings, program: str) -> dict[str, str]:
    """Environment of a redirect replica or aggregator worker in a host's namespace: every server
    at the bridge address (PgBouncer, Kafka's HOSTS listener, Redis and its Sentinels, the
    ClickHouse balancer); the redirect replicas also believe nginx's X-Forwarded-For from it
    (nginx, in the root namespace, connects from it). Empty without namespaces."""
    if not s.netns_in_use:
        return {}
    gw = s.hosts_gateway
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_hosts_bootstrap,
        "POSTGRES_DSN": s.dsn(s.pgbouncer_port, host=gw),
        "CLICKHOUSE_URL": f"http://{gw}:{s.clickhouse_lb_port}",
        "REDIS_URL": f"redis://{gw}:{s.redis_port}/0",
        "REDIS_REPLICA_URL": f"redis://{gw}:{s.redis_replica_port}/0",
        "REDIS_SENTINELS": ",".join(f"{gw}:{p}" for p in s.sentinel_ports),
    }
    if program.startswith("redirect-"):
        proxies = os.environ.get("REDIRECT_TRUSTED_PROXIES", "127.0.0.1,::1")
        env["REDIRECT_TRUSTED_PROXIES"] = f"{proxies},{gw}" if proxies else gw
    return env


def relay_overrides(s: StackSettings) -> dict[str, str]:
    """The outbox relay holds a session advisory lock (one active relay): a session PgBouncer's
    transaction pooling does not keep. It connects to the primary itself."""
    return {"POSTGRES_DSN": s.postgres_dsn}


# -- first start ---------------------------------------------------------------------------------


def ensure_kafka_storage(s: StackSettings) -> None:
    """Format each broker's KRaft storage with one cluster id (kept in .local/cluster/kafka-id)."""
    from stackctl.first_start import kafka_storage_tool, say

    pending = [
        b for b in range(1, len(s.kafka_broker_ports) + 1) if not (kafka_data_dir(s, b) / "meta.properties").exists()
    ]
    if not pending:
        return
    id_file = s.path("kafka-cluster-id")
    if not id_file.exists():
        id_file.write_text(kafka_storage_tool(s, "random-uuid").splitlines()[-1] + "\n")
    cluster_id = id_file.read_text().strip()
    for broker in pending:
        say(f"formatting Kafka KRaft storage of broker {broker} (cluster {cluster_id})")
        kafka_storage_tool(
            s,
            "format",
            "-t",
            cluster_id,
            "-c",
            str(s.path(f"kafka-{broker}", "server.properties")),
            "--ignore-formatted",
        )


def ensure_postgres_replica(s: StackSettings) -> None:
    """Clone the running primary into the replica's data directory (pg_basebackup -R: it starts
    as a hot standby streaming from the primary, over the local socket as the superuser)."""
    from stackctl.first_start import run_as_postgres, say
    from stackctl.render import postgres_bin_dir

    data, run = s.path("postgres-replica", "data"), s.path("postgres-replica", "run")
    is_root = os.geteuid() == 0
    for d in (s.path("postgres-replica"), run):
        d.mkdir(parents=True, exist_ok=True)
        if is_root:
            shutil.chown(d, "postgres", "postgres")
    if (data / "PG_VERSION").exists():
        return
    say("cloning the PostgreSQL primary into the streaming replica (pg_basebackup)")
    cmd = [
        str(postgres_bin_dir() / "pg_basebackup"),
        "-D",
        str(data),
        "-h",
        str(s.path("postgres", "run")),
        "-p",
        str(s.postgres_port),
        "-U",
        "postgres",
        "-X",
        "stream",
        "-R",
        "--checkpoint=fast",
    ]
    run_as_postgres(cmd)


# -- probes --------------------------------------------------------------------------------------


async def kafka_node(port: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        if len(cluster["brokers"]) < 1:
            raise RuntimeError("no brokers known")
    finally:
        await admin.close()


async def postgres_replica(s: StackSettings) -> None:
    """The replica answers, is in recovery (a standby) and streams from the primary."""
    import asyncpg

    conn = await asyncpg.connect(
        host=str(s.path("postgres-replica", "run")),
        port=s.postgres_replica_port,
        user="postgres",
        database="postgres",
        timeout=3,
    )
    try:
        if not await conn.fetchval("SELECT pg_is_in_recovery()"):
            raise RuntimeError("not in recovery: this is no standby")
        status = await conn.fetchval("SELECT status FROM pg_stat_wal_receiver")
        if status != "streaming":
            raise RuntimeError(f"WAL receiver status {status!r}")
    finally:
        await conn.close()


async def pgbouncer(s: StackSettings) -> None:
    import asyncpg

    conn = await asyncpg.connect(s.pgbouncer_dsn, timeout=3, statement_cache_size=0)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def zookeeper(s: StackSettings) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", s.zookeeper_port)
    try:
        writer.write(b"ruok")
        await writer.drain()
        answer = await reader.read(16)
    finally:
        writer.close()
    if answer != b"imok":
        raise RuntimeError(f"ruok -> {answer!r}")


async def clickhouse_node(s: StackSettings, node: int) -> None:
    async with httpx.AsyncClient(timeout=3) as client:
        response = await client.get(
            f"http://127.0.0.1:{s.clickhouse_node_ports(node)[0]}/", params={"query": "SELECT 1"}
        )
    if response.status_code != 200 or response.text.strip() != "1":
        raise RuntimeError(f"SELECT 1 -> {response.status_code} {response.text[:200]!r}")


def probes(s: StackSettings) -> dict[str, Callable[[], Awaitable[object]]]:
    """The cluster's own components (the Redis, nginx and Prometheus probes are the default's)."""
    out: dict[str, Callable[[], Awaitable[object]]] = {}
    for name, port in zip(kafka_programs(s), s.kafka_broker_ports, strict=True):
        out[name] = functools.partial(kafka_node, port)
    out["postgres-replica"] = functools.partial(postgres_replica, s)
    out["pgbouncer"] = functools.partial(pgbouncer, s)
    out["zookeeper"] = functools.partial(zookeeper, s)
    for node, name in zip(s.clickhouse_nodes, clickhouse_programs(s), strict=True):
        out[name] = functools.partial(clickhouse_node, s, node)
    return out


def ports(s: StackSettings) -> dict[str, int]:
    out = {f"kafka-{i}": p for i, p in enumerate(s.kafka_broker_ports, start=1)}
    out.update({f"kafka-controller-{i}": p for i, p in enumerate(s.kafka_controller_ports, start=1)})
    out.update(
        {
            "pgbouncer": s.pgbouncer_port,
            "postgres-replica": s.postgres_replica_port,
            "zookeeper": s.zookeeper_port,
            "clickhouse-lb": s.clickhouse_lb_port,
        }
    )
    for node in s.clickhouse_nodes:
        for kind, port in zip(("http", "tcp", "interserver"), s.clickhouse_node_ports(node), strict=True):
            out[f"clickhouse-{node}-{kind}"] = port
    return out
