"""Settings every service shares: where the infrastructure is and what the topics are called.

Read once, at the entry point, from environment variables (names = field names in upper
case, e.g. KAFKA_BOOTSTRAP_SERVERS). Defaults fit the local stack started by `just up`.
Each service subclasses this with its own fields; the result is frozen and passed in.

Any field can also come from a file named by `<NAME>_FILE` (e.g. REDIRECT_VISITOR_KEY_SECRET_FILE): that is
how the stack hands out secrets, so they never sit in a process's environment listing, a
config file or argv. A variable set directly wins over the file.
"""

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ServerName = Literal["hypercorn", "granian", "uvicorn"]


class FileValues(PydanticBaseSettingsSource):
    """`<NAME>_FILE` -> the file's content (trailing newline dropped) as the value of field `name`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        return Path(path).read_text().rstrip("\r\n"), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class InfraSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_file=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, FileValues(settings_cls), dotenv_settings, file_secret_settings

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    postgres_dsn: SecretStr = SecretStr("postgresql://shortlink:shortlink@127.0.0.1:5433/shortlink")
    # asyncpg's prepared-statement cache per connection (its default, 100). 0 behind a pooler in
    # transaction mode that does not track prepared statements (PgBouncer < 1.21: the cluster
    # profile, docs/cluster.md), where the next transaction may run on another server connection.
    postgres_statement_cache_size: int = 100
    redis_url: str = "redis://127.0.0.1:6380/0"
    redis_replica_url: str = "redis://127.0.0.1:6381/0"
    # Redis Sentinel (host:port,...): when set, the primary is whichever these name for
    # `redis_sentinel_master` (failover without a restart); REDIS_URL then gives only the db.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "shortlink"
    clickhouse_url: str = "http://127.0.0.1:18123"
    clickhouse_database: str = "shortlink"

    topic_links: str = "links"
    # Other regions' copies of `links` that MirrorMaker 2 writes into this region's Kafka (its
    # default replication policy names them `<source region>.links`, e.g. `A.links`),
    # comma-separated: the redirect projector and the aggregator's link owners read them next to
    # TOPIC_LINKS (docs/regions.md). Empty: one region.
    topic_links_remote: str = ""
    topic_clicks: str = "clicks"
    topic_deadletter: str = "deadletter"
    topic_link_activity: str = "link-activity"  # live per-link counts: aggregator -> analytics

    log_level: str = "INFO"
    # OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); tracing export is off when empty.
    otel_exporter_otlp_endpoint: str = ""

    def links_topics(self) -> list[str]:
        """TOPIC_LINKS, then each of TOPIC_LINKS_REMOTE."""
        remote = [t.strip() for t in self.topic_links_remote.split(",") if t.strip()]
        return [self.topic_links, *remote]

    def postgres_dsn_asyncpg(self) -> str:
        """The DSN in the form asyncpg's `create_pool` takes."""
        return self.postgres_dsn.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
