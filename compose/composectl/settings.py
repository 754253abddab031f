"""Settings of the compose-only control: the services' shared variables plus a few of its own."""

from platformkit.settings import InfraSettings
from pydantic_settings import SettingsConfigDict
from stackctl.config import StackSettings

_SERVICES = (
    "shorten=http://shorten:8001,analytics=http://analytics:8002,"
    "redirect-1=http://redirect-1:8011,redirect-2=http://redirect-2:8012,"
    "redirect-3=http://redirect-3:8013,aggregator-1=http://aggregator-1:6061,"
    "aggregator-2=http://aggregator-2:6062,aggregator-3=http://aggregator-3:6063"
)


class ComposeSettings(InfraSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_file=None)

    # `init`: how long to wait for Kafka, PostgreSQL and ClickHouse to answer.
    compose_init_timeout: float = 180.0
    # `health-server`: the combined /healthz and /readyz nginx serves publicly.
    stackcheck_host: str = "0.0.0.0"
    stackcheck_port: int = 8009
    # name=url of every service whose /healthz and /readyz the combined check asks.
    compose_service_urls: str = _SERVICES
    compose_nginx_health_url: str = "http://nginx:8081/healthz"
    compose_prometheus_url: str = "http://prometheus:9090"

    def service_urls(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.compose_service_urls.split(",") if item.strip())
        return {name.strip(): url.strip().rstrip("/") for name, url in pairs}


def stack_settings(infra: InfraSettings) -> StackSettings:
    """stackctl's settings, with PostgreSQL and ClickHouse where the compose network has them.

    stackctl.migrate reads only `postgres_dsn`, `clickhouse_url`, `clickhouse_database` and
    `repo_root` (the source tree: /app in the image), so its code applies the same files in the
    same order as `just migrate` does.
    """

    class ComposeStack(StackSettings):
        @property
        def postgres_dsn(self) -> str:
            return infra.postgres_dsn_asyncpg()

        @property
        def clickhouse_url(self) -> str:
            return infra.clickhouse_url

    return ComposeStack(clickhouse_database=infra.clickhouse_database)
