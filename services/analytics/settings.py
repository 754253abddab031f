"""Settings of the analytics service, read once from the environment at the entry point."""

from platformkit.settings import InfraSettings, ServerName
from pydantic import SecretStr


class AnalyticsSettings(InfraSettings):
    """Env names are the field names in upper case (ANALYTICS_PORT, ANALYTICS_SERVER, ...)."""

    analytics_host: str = "127.0.0.1"
    analytics_port: int = 8002
    analytics_server: ServerName = "hypercorn"
    analytics_db_pool_size: int = 5
    # Where the totals are read (they may lag by the replication delay): a streaming replica on
    # the cluster profile. Empty: POSTGRES_DSN, as before.
    analytics_postgres_read_dsn: SecretStr = SecretStr("")

    def postgres_read_dsn(self) -> str:
        read = self.analytics_postgres_read_dsn.get_secret_value()
        return read.replace("postgresql+asyncpg://", "postgresql://") if read else self.postgres_dsn_asyncpg()
    analytics_clickhouse_timeout_s: float = 10.0
    # ClickHouse queries run in worker threads (clickhouse-sqlalchemy's engine is synchronous).
    analytics_clickhouse_pool_size: int = 8
    # /api/v1/top answers are shared this long (the query scans the whole window).
    analytics_top_cache_s: float = 2.0
    # Unique visitors per (link, bucket) and per range, kept with the click count they were
    # counted over (valid while it is unchanged; the TTL bounds a replay into emptied sinks).
    analytics_visitor_cache_entries: int = 100_000
    analytics_visitor_cache_s: float = 600.0
