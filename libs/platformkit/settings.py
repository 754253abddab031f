"""Settings every service shares: where the infrastructure is and what the topics are called.

Read once, at the entry point, from environment variables (names = field names in upper
case, e.g. KAFKA_BOOTSTRAP_SERVERS). Defaults fit the local stack started by `just up`.
Each service subclasses this with its own fields; the result is frozen and passed in.
"""

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ServerName = Literal["hypercorn", "granian", "uvicorn"]


class InfraSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_file=None)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    postgres_dsn: SecretStr = SecretStr("postgresql://shortlink:shortlink@127.0.0.1:5433/shortlink")
    redis_url: str = "redis://127.0.0.1:6380/0"
    redis_replica_url: str = "redis://127.0.0.1:6381/0"
    # Redis Sentinel (host:port,...): when set, the primary is whichever these name for
    # `redis_sentinel_master` (failover without a restart); REDIS_URL then gives only the db.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "shortlink"
    clickhouse_url: str = "http://127.0.0.1:18123"
    clickhouse_database: str = "shortlink"

    topic_links: str = "links"
    topic_clicks: str = "clicks"
    topic_deadletter: str = "deadletter"

    log_level: str = "INFO"
    # OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); tracing export is off when empty.
    otel_exporter_otlp_endpoint: str = ""

    def postgres_dsn_asyncpg(self) -> str:
        """The DSN in the form asyncpg's `create_pool` takes."""
        return self.postgres_dsn.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
