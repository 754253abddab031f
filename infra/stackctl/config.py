"""The stack's own settings: ports and paths, from environment variables (see .env.example).

Ports match the services' settings defaults; both read the same variable names.
"""

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where `ip netns add` mounts its namespaces (one file each).
NETNS_RUN_DIR = Path("/run/netns")


def read_secret(path: Path) -> str:
    """A secret the stack generated and stored at `path` ("" before the first start)."""
    return path.read_text().strip() if path.exists() else ""


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    local_dir: Path = REPO_ROOT / ".local"
    # `default`: one of each component. `cluster` (`just up --profile cluster`, docs/cluster.md):
    # Kafka x3, PostgreSQL primary + streaming replica + PgBouncer, ClickHouse 2 shards x 2
    # replicas + ZooKeeper, redirect and aggregator processes on three host addresses. Its data,
    # logs and supervisord live in .local/cluster/ (the same service ports: run one at a time).
    stack_profile: Literal["default", "cluster"] = "default"
    # The cluster's own ports, on top of the service ports: CLUSTER_PORT_BASE + the offsets of
    # `cluster_ports` (27011-27144 by default; free in every worktree's port block).
    cluster_port_base: int = 27000
    # The cluster's "hosts": redirect replica i and aggregator worker i run on host (i-1) % 3.
    # Each host is a network namespace (netns.py) where `ip netns` works (root); otherwise, or
    # with CLUSTER_NETNS=off, one loopback address each, CLUSTER_HOSTS.
    cluster_hosts: str = "127.0.0.21,127.0.0.22,127.0.0.23"
    # `auto`: namespaces when they can be made, else CLUSTER_HOSTS (logged); `on`: namespaces or
    # fail; `off`: CLUSTER_HOSTS.
    cluster_netns: Literal["auto", "on", "off"] = "auto"
    # Names of the namespaces (<prefix>-h1..3), the bridge (<prefix>-br) and the root-side veth
    # ends (<prefix>-v1..3), and the private subnet of the bridge (.1) and hosts (.11, .12, .13).
    # Two checkouts' clusters need two prefixes and two subnets (.env).
    cluster_netns_prefix: str = Field(default="shl", pattern=r"^[a-z][a-z0-9]{0,9}$")
    cluster_subnet: str = "10.231.0.0/24"
    # PgBouncer: client connections it accepts, and server connections per (database, user).
    cluster_pgbouncer_max_clients: int = 2000
    cluster_pgbouncer_pool_size: int = 20

    public_http_port: int = 8080
    shorten_port: int = 8001
    # shorten API processes behind nginx (shorten-1..N): shorten-1 on SHORTEN_PORT, shorten-2,
    # shorten-3, ... on SHORTEN_PORT + 20, + 21, ... (8021, 8022 by default; free in every
    # worktree's port block). The outbox relay stays one process.
    shorten_processes: int = Field(default=2, ge=1)
    analytics_port: int = 8002
    stackcheck_port: int = 8009
    redirect_replica_ports: str = "8011,8012,8013"
    aggregator_web_ports: str = "6061,6062,6063"

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "-Xms256m -Xmx512m"
    postgres_port: int = 5433
    postgres_user: str = "shortlink"
    postgres_password: str = "shortlink"
    postgres_db: str = "shortlink"
    redis_port: int = 6380
    redis_replica_port: int = 6381
    redis_maxmemory: str = "512mb"
    # Three Redis Sentinels watch the primary and promote the replica when it is down for
    # REDIS_SENTINEL_DOWN_AFTER_MS; the services find the primary through them.
    redis_sentinel_ports: str = "26379,26380,26381"
    redis_sentinel_master: str = "shortlink"
    redis_sentinel_down_after_ms: int = 1000
    clickhouse_http_port: int = 18123
    clickhouse_tcp_port: int = 19000
    clickhouse_interserver_port: int = 19009
    clickhouse_database: str = "shortlink"
    prometheus_port: int = 9090
    # Proxies in front of nginx (load balancers, CDN; comma-separated addresses or CIDR ranges)
    # whose X-Forwarded-For nginx believes. Empty: the client is whoever connects to nginx.
    trusted_proxies: str = ""
    # CPU priority (nice 0..19) of the background programs (aggregator workers, ClickHouse,
    # retention, Prometheus; render.is_background): on a shared host the hot path goes first.
    background_nice: int = Field(default=0, ge=0, le=19)
    # CPUs (a `taskset -c` list: "0", "0-5", "0,2") for every program but the redirect path
    # (nginx, the redirect replicas, Redis and its Sentinels; render.on_redirect_path), which
    # keeps all CPUs. On two shared cores a woken replica otherwise queues behind Kafka,
    # ClickHouse or an aggregator: the redirects' p99 was 2-3x longer (docs/benchmarks/notfound.md);
    # the pipeline behind Kafka can lag and catch up, a redirect cannot wait. `auto`: all CPUs
    # but the last one when there are two or more, in the default profile (the cluster's hosts
    # keep every CPU: its benchmarks measure each tier's cost); empty: no partition.
    background_cpus: str = Field(default="auto", pattern=r"^(auto|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$")

    @model_validator(mode="before")
    @classmethod
    def _cluster_local_dir(cls, data: Any) -> Any:
        """The cluster keeps its state apart from the default stack's (unless LOCAL_DIR says where)."""
        if isinstance(data, dict) and data.get("stack_profile") == "cluster" and "local_dir" not in data:
            data = {**data, "local_dir": REPO_ROOT / ".local" / "cluster"}
        return data

    @property
    def is_cluster(self) -> bool:
        return self.stack_profile == "cluster"

    @property
    def background_cpu_list(self) -> str:
        """BACKGROUND_CPUS resolved: a `taskset -c` list, or "" (no partition)."""
        if self.background_cpus != "auto":
            return self.background_cpus
        cpus = sorted(os.sched_getaffinity(0))
        if self.is_cluster or len(cpus) < 2:
            return ""
        return ",".join(str(cpu) for cpu in cpus[:-1])

    def cluster_port(self, offset: int) -> int:
        return self.cluster_port_base + offset

    @property
    def loopback_hosts(self) -> list[str]:
        """CLUSTER_HOSTS: the hosts' addresses when they are no namespaces."""
        return [h.strip() for h in self.cluster_hosts.split(",") if h.strip()]

    @property
    def netns_names(self) -> list[str]:
        """The hosts' network namespaces (one per CLUSTER_HOSTS entry)."""
        return [f"{self.cluster_netns_prefix}-h{i}" for i in range(1, len(self.loopback_hosts) + 1)]

    @property
    def netns_veths(self) -> list[str]:
        """The root-namespace end of each host's veth pair (on the bridge); `ip link set <it> down`
        cuts the host off."""
        return [f"{self.cluster_netns_prefix}-v{i}" for i in range(1, len(self.loopback_hosts) + 1)]

    @property
    def netns_bridge(self) -> str:
        return f"{self.cluster_netns_prefix}-br"

    @property
    def netns_subnet(self) -> ipaddress.IPv4Network:
        net = ipaddress.ip_network(self.cluster_subnet)
        if not isinstance(net, ipaddress.IPv4Network) or net.num_addresses < 16 + len(self.loopback_hosts):
            raise ValueError(f"CLUSTER_SUBNET {self.cluster_subnet}: an IPv4 network of 16 addresses or more")
        return net

    @property
    def netns_bridge_address(self) -> str:
        """The root namespace's address on the bridge: where the hosts reach the infrastructure."""
        return str(self.netns_subnet.network_address + 1)

    @property
    def netns_addresses(self) -> list[str]:
        """Host i's address in its namespace (.11, .12, .13 of CLUSTER_SUBNET)."""
        base = self.netns_subnet.network_address
        return [str(base + 10 + i) for i in range(1, len(self.loopback_hosts) + 1)]

    @property
    def netns_in_use(self) -> bool:
        """The cluster's hosts are namespaces: `just up --profile cluster` made them (netns.py),
        and they are there now. Read from the system, so every tool (chaos, benchmarks) that
        builds these settings sees the hosts the running cluster has."""
        return (
            self.is_cluster
            and self.cluster_netns != "off"
            and all((NETNS_RUN_DIR / name).exists() for name in self.netns_names)
        )

    @property
    def hosts(self) -> list[str]:
        """The addresses processes spread over: three in the cluster (the namespaces' or
        CLUSTER_HOSTS), 127.0.0.1 otherwise."""
        if not self.is_cluster:
            return ["127.0.0.1"]
        return self.netns_addresses if self.netns_in_use else self.loopback_hosts

    def netns_of(self, index: int) -> str | None:
        """The namespace of the index-th (1-based) redirect replica or aggregator worker, or None
        (no namespaces)."""
        if not self.netns_in_use:
            return None
        return self.netns_names[(index - 1) % len(self.netns_names)]

    @property
    def infra_addresses(self) -> list[str]:
        """Where the servers the hosts use listen: 127.0.0.1, and the bridge address when the
        hosts are namespaces."""
        return ["127.0.0.1", self.netns_bridge_address] if self.netns_in_use else ["127.0.0.1"]

    @property
    def hosts_gateway(self) -> str:
        """Where a process on a host reaches the infrastructure: the bridge address (every
        server the hosts use listens there too), or 127.0.0.1 without namespaces."""
        return self.netns_bridge_address if self.netns_in_use else "127.0.0.1"

    def host_of(self, index: int) -> str:
        """The host address of the index-th (1-based) redirect replica or aggregator worker."""
        return self.hosts[(index - 1) % len(self.hosts)]

    # Cluster layout (offsets from CLUSTER_PORT_BASE): Kafka broker i 10+i (its listener on the
    # bridge for the namespaces 15+i), its controller 20+i;
    # PgBouncer 32, the PostgreSQL replica 33; ZooKeeper 81; ClickHouse node i HTTP 120+i,
    # native 130+i, interserver 140+i; nginx in front of the ClickHouse nodes' HTTP 120.
    CLUSTER_KAFKA_BROKERS: ClassVar[int] = 3
    CLUSTER_CLICKHOUSE_NODES: ClassVar[int] = 4  # shard 1: nodes 1, 2; shard 2: nodes 3, 4

    @property
    def redirect_read_timeout(self) -> float:
        """nginx's read timeout for redirects (s), also given to the replicas
        (REDIRECT_PROXY_READ_TIMEOUT_SECONDS): past it, less a margin, they answer a request 503
        without a click, as nginx may have re-sent it. A redirect answers in milliseconds; the
        default stack allows 10 s (a loaded CI machine), the cluster 3 s (cluster.py)."""
        return 3.0 if self.is_cluster else 10.0

    @property
    def kafka_broker_ports(self) -> list[int]:
        if not self.is_cluster:
            return [self.kafka_port]
        return [self.cluster_port(10 + i) for i in range(1, self.CLUSTER_KAFKA_BROKERS + 1)]

    @property
    def kafka_controller_ports(self) -> list[int]:
        if not self.is_cluster:
            return [self.kafka_controller_port]
        return [self.cluster_port(20 + i) for i in range(1, self.CLUSTER_KAFKA_BROKERS + 1)]

    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.kafka_broker_ports)

    @property
    def kafka_hosts_ports(self) -> list[int]:
        """Each broker's second listener (HOSTS), on the bridge address, for the namespaces'
        processes: Kafka refuses two listeners on one port (even on two addresses)."""
        return [self.cluster_port(15 + i) for i in range(1, len(self.kafka_broker_ports) + 1)]

    @property
    def kafka_hosts_bootstrap(self) -> str:
        return ",".join(f"{self.netns_bridge_address}:{p}" for p in self.kafka_hosts_ports)

    @property
    def kafka_replication_factor(self) -> int:
        return len(self.kafka_broker_ports)

    @property
    def pgbouncer_port(self) -> int:
        return self.cluster_port(32)

    @property
    def postgres_replica_port(self) -> int:
        return self.cluster_port(33)

    @property
    def zookeeper_port(self) -> int:
        return self.cluster_port(81)

    @property
    def clickhouse_lb_port(self) -> int:
        return self.cluster_port(120)

    def clickhouse_node_ports(self, node: int) -> tuple[int, int, int]:
        """(HTTP, native, interserver) of ClickHouse node 1..4 of the cluster."""
        return self.cluster_port(120 + node), self.cluster_port(130 + node), self.cluster_port(140 + node)

    @property
    def clickhouse_nodes(self) -> list[int]:
        return list(range(1, self.CLUSTER_CLICKHOUSE_NODES + 1)) if self.is_cluster else []

    @staticmethod
    def clickhouse_shard_replica(node: int) -> tuple[int, int]:
        return (node + 1) // 2, (node + 1) % 2 + 1

    @property
    def redirect_ports(self) -> list[int]:
        return [int(p) for p in self.redirect_replica_ports.split(",") if p.strip()]

    @property
    def sentinel_ports(self) -> list[int]:
        return [int(p) for p in self.redis_sentinel_ports.split(",") if p.strip()]

    @property
    def redis_sentinels(self) -> str:
        """host:port of every sentinel, as REDIS_SENTINELS takes them."""
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    @property
    def shorten_ports(self) -> list[int]:
        return [self.shorten_port, *(self.shorten_port + 20 + i for i in range(self.shorten_processes - 1))]

    @property
    def aggregator_ports(self) -> list[int]:
        return [int(p) for p in self.aggregator_web_ports.split(",") if p.strip()]

    @cached_property
    def repo_root(self) -> Path:
        return REPO_ROOT

    def path(self, *parts: str) -> Path:
        return self.local_dir.joinpath(*parts)

    @property
    def supervisor_conf(self) -> Path:
        return self.path("supervisord.conf")

    @property
    def log_dir(self) -> Path:
        return self.path("logs")

    @property
    def api_key_file(self) -> Path:
        return self.path("api-key")

    @property
    def visitor_key_secret_file(self) -> Path:
        return self.path("visitor-key-secret")

    @property
    def postgres_dsn(self) -> str:
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@127.0.0.1:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def clickhouse_url(self) -> str:
        """Where the services reach ClickHouse: the server, or nginx in front of the cluster's nodes."""
        port = self.clickhouse_lb_port if self.is_cluster else self.clickhouse_http_port
        return f"http://127.0.0.1:{port}"

    def dsn(self, port: int, database: str | None = None, host: str = "127.0.0.1") -> str:
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}@{host}:{port}/{database or self.postgres_db}"
        )

    @property
    def pgbouncer_dsn(self) -> str:
        """The services' PostgreSQL in the cluster: PgBouncer's pool of the primary."""
        return self.dsn(self.pgbouncer_port)

    @property
    def pgbouncer_read_dsn(self) -> str:
        """PgBouncer's pool of the streaming replica (reads that may lag, e.g. analytics totals)."""
        return self.dsn(self.pgbouncer_port, f"{self.postgres_db}_replica")
