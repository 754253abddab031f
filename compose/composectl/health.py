"""The compose stack's combined /healthz and /readyz (nginx serves them publicly).

Same answers as the native `stackctl health-server` (infra/stackctl/healthapp.py): /healthz asks
every service's /healthz; /readyz probes every component and every service's /readyz; /metrics
reports Redis memory per role. Only the addresses differ: compose host names instead of
127.0.0.1:<port>.
"""

from functools import partial
from urllib.parse import urlsplit, urlunsplit

from contracts.topics import ALL_TOPICS
from stackctl.checks import Probe
from stackctl.healthapp import health_app
from starlette.applications import Starlette

from composectl.settings import ComposeSettings

_TOPICS = {t.name for t in ALL_TOPICS}


def without_credentials(url: str) -> str:
    """`url` with no user:password@ (ClickHouse's URL carries them): fit for a report."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


async def _http_ok(url: str) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=3) as client:
        response = await client.get(url)  # userinfo in `url` becomes Basic authentication
    if response.status_code != 200:
        raise RuntimeError(f"GET {without_credentials(url)} -> {response.status_code}: {response.text[:200]}")


async def _kafka(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        missing = _TOPICS - set(await admin.list_topics())
        if missing:
            raise RuntimeError(f"topics missing: {sorted(missing)}")
    finally:
        await admin.close()


async def _postgres(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def _redis(url: str, *, replica: bool) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        info = await client.info("replication")
    finally:
        await client.aclose()
    if replica and (info.get("role") != "slave" or info.get("master_link_status") != "up"):
        raise RuntimeError(f"replica not linked: role={info.get('role')} link={info.get('master_link_status')}")
    if not replica and info.get("role") != "master":
        raise RuntimeError(f"expected role master, got {info.get('role')}")


def infra_probes(s: ComposeSettings) -> dict[str, Probe]:
    return {
        "kafka": lambda: _kafka(s.kafka_bootstrap_servers),
        "postgres": lambda: _postgres(s.postgres_dsn_asyncpg()),
        "redis": lambda: _redis(s.redis_url, replica=False),
        "redis-replica": lambda: _redis(s.redis_replica_url, replica=True),
        # A query, not /ping: it proves the services' credentials are accepted.
        "clickhouse": lambda: _http_ok(f"{s.clickhouse_url}/?query=SELECT%201"),
        "nginx": lambda: _http_ok(s.compose_nginx_health_url),
        "prometheus": lambda: _http_ok(f"{s.compose_prometheus_url}/-/ready"),
    }


def service_probes(s: ComposeSettings, path: str) -> dict[str, Probe]:
    return {name: partial(_http_ok, url + path) for name, url in s.service_urls().items()}


def create_app() -> Starlette:
    settings = ComposeSettings()
    return health_app(
        live=lambda: service_probes(settings, "/healthz"),
        ready=lambda: {**infra_probes(settings), **service_probes(settings, "/readyz")},
        redis_urls={"primary": settings.redis_url, "replica": settings.redis_replica_url},
    )
