"""Settings of the analytics service, read once from the environment at the entry point."""

from limits import RateLimitItem, parse
from platformkit.clientip import parse_networks
from platformkit.settings import InfraSettings, ServerName
from pydantic import Field, SecretStr, field_validator


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

    # Regions (docs/regions.md): this region's name, and where the other regions' totals are
    # counted into this region (an aggregator per remote region counting MirrorMaker 2's copy of
    # its `clicks`, `B.clicks`, into a database of its own): "B=postgresql://...,C=...". With a
    # region name, the stats answer `region` (this region's own lifetime counts) and `global`
    # (this region's and every listed region's, summed). Empty: one region, neither field.
    analytics_region: str = ""
    analytics_remote_totals: SecretStr = SecretStr("")

    def remote_totals_dsns(self) -> dict[str, str]:
        """Region name -> DSN of the database its mirrored clicks are counted into."""
        out: dict[str, str] = {}
        for item in self.analytics_remote_totals.get_secret_value().split(","):
            if not item.strip():
                continue
            name, sep, dsn = item.partition("=")
            if not sep or not name.strip() or not dsn.strip():
                raise ValueError("ANALYTICS_REMOTE_TOTALS takes NAME=DSN,... (e.g. B=postgresql://...)")
            out[name.strip()] = dsn.strip().replace("postgresql+asyncpg://", "postgresql://")
        return out

    analytics_clickhouse_timeout_s: float = 10.0
    # ClickHouse queries at a time per process (connections of the client's pool; more wait).
    analytics_clickhouse_pool_size: int = 8
    # /api/v1/top answers are shared this long per (workspace, tag, window, limit, bots).
    analytics_top_cache_s: float = 2.0
    # Unique visitors per (link, bucket) and per range, kept with the click count they were
    # counted over (valid while it is unchanged; the TTL bounds a replay into emptied sinks).
    analytics_visitor_cache_entries: int = 100_000
    analytics_visitor_cache_s: float = 600.0

    # Rate limits (moving windows in Redis shared by every analytics process; `limits` syntax,
    # "60/minute", "10/second"); 429 with Retry-After past them. Stats read without a key (public
    # stats, and every anonymous miss: the limit also bounds enumerating codes), per client address:
    analytics_public_rate_limit: str = "60/minute"
    # Stats and /top read with a key, per key:
    analytics_key_rate_limit: str = "1200/minute"
    # Failed authentications per client address: past it, that address gets 429 on every request
    # that sends a key until the window admits it again.
    analytics_auth_failure_limit: str = "30/minute"
    # Peers whose X-Forwarded-For names the client (nginx on loopback); CIDR ok.
    analytics_trusted_proxies: str = "127.0.0.1,::1"
    topic_keys: str = "keys"
    # A key not in this process's book: wait at most this long for the `keys` topic's end as of
    # the miss (a key created a moment ago), then 401.
    analytics_key_miss_wait_s: float = 1.0

    # Live stats (GET /api/v1/links/{code}/live, Server-Sent Events fed by the `link-activity`
    # topic). Streams one process holds at most (past it: 503 live_streams_exhausted with
    # Retry-After); each costs a connection, a few tasks and a few KB (docs/benchmarks/live.md).
    analytics_live_max_streams: int = Field(default=1000, ge=0)
    # A comment line this often on an idle stream, so proxies and clients see it is alive and a
    # client gone silently is noticed; below nginx's proxy_read_timeout for /live (60 s).
    analytics_live_heartbeat_s: float = Field(default=15.0, gt=0, le=30)
    # A stream ends after this long; the client reconnects and is authorised again (a revoked
    # key stops streaming within this time).
    analytics_live_max_stream_s: float = Field(default=3600.0, gt=0)

    @field_validator("analytics_public_rate_limit", "analytics_key_rate_limit", "analytics_auth_failure_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        parse(value)  # raises ValueError on a malformed limit: refuse to start
        return value

    @field_validator("analytics_remote_totals")
    @classmethod
    def _remote_totals_parse(cls, value: SecretStr) -> SecretStr:
        for item in value.get_secret_value().split(","):
            if item.strip() and not all(part.strip() for part in item.partition("=")):
                raise ValueError("ANALYTICS_REMOTE_TOTALS takes NAME=DSN,... (e.g. B=postgresql://...)")
        return value

    @field_validator("analytics_trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    def public_rate_limit(self) -> RateLimitItem:
        return parse(self.analytics_public_rate_limit)

    def key_rate_limit(self) -> RateLimitItem:
        return parse(self.analytics_key_rate_limit)

    def auth_failure_limit(self) -> RateLimitItem:
        return parse(self.analytics_auth_failure_limit)
