"""The stack's own settings: ports and paths, from environment variables (see .env.example).

Ports match the services' settings defaults; both read the same variable names.
"""

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


def read_secret(path: Path) -> str:
    """A secret the stack generated and stored at `path` ("" before the first start)."""
    return path.read_text().strip() if path.exists() else ""


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    local_dir: Path = REPO_ROOT / ".local"

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
        return f"http://127.0.0.1:{self.clickhouse_http_port}"
