"""One-shot initialisation of the compose stack: wait for the stores, create topics, migrate,
issue the generated API key (`init`); or wait for the stores and migrate only (`migrate`, the
Kubernetes Job).

The same steps, in the same order, as `just up` runs natively after starting the infrastructure:
stackctl.topics.ensure_topics (libs/contracts/topics.py ALL_TOPICS) and stackctl.migrate
(services/*/adapters/sql/{postgres,clickhouse}/*.sql in name order). Idempotent: run it again
after any change of a schema file or topic declaration.
"""

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from stackctl import migrate, topics
from stackctl.first_start import say
from tenacity import AsyncRetrying, stop_after_delay, wait_fixed

from composectl.settings import ComposeSettings, stack_settings


async def _kafka(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        await admin.describe_cluster()
    finally:
        await admin.close()


async def _postgres(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def _clickhouse(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        response = await client.get("/", params={"query": "SELECT 1"})
    if response.status_code != 200 or response.text.strip() != "1":
        raise RuntimeError(f"ClickHouse answered {response.status_code}: {response.text[:200]}")


async def _until_ok(what: str, step: Callable[[], Awaitable[None]], timeout: float) -> None:
    """Run `step` until it succeeds; after `timeout` seconds its last error propagates."""
    attempt = 0
    async for trying in AsyncRetrying(stop=stop_after_delay(timeout), wait=wait_fixed(1), reraise=True):
        with trying:
            attempt += 1
            try:
                await step()
            except Exception as exc:
                if attempt % 10 == 1:
                    say(f"{what}: not yet ({type(exc).__name__}: {exc})"[:300])
                raise
    say(f"{what}: ok")


async def run(settings: ComposeSettings) -> None:
    timeout = settings.compose_init_timeout
    bootstrap = settings.kafka_bootstrap_servers
    await asyncio.gather(
        _until_ok("kafka", lambda: _kafka(bootstrap), timeout),
        _until_ok("postgres", lambda: _postgres(settings.postgres_dsn_asyncpg()), timeout),
        _until_ok("clickhouse", lambda: _clickhouse(settings.clickhouse_url), timeout),
    )
    # A broker that just answered may still refuse admin requests for a moment: retry briefly.
    await _until_ok("topics", lambda: topics.ensure_topics(bootstrap), 60)
    await _migrate(settings)
    await _local_admin_key()
    say("compose stack initialised: topics created, schemas migrated, admin key issued")


async def run_migrations(settings: ComposeSettings) -> None:
    """Only the schemas (the Kubernetes `migrate` Job): there the topics are Strimzi KafkaTopic
    resources, which the topic operator creates with the cluster's replication factor."""
    timeout = settings.compose_init_timeout
    await asyncio.gather(
        _until_ok("postgres", lambda: _postgres(settings.postgres_dsn_asyncpg()), timeout),
        _until_ok("clickhouse", lambda: _clickhouse(settings.clickhouse_url), timeout),
    )
    await _migrate(settings)
    say("schemas migrated")


async def _migrate(settings: ComposeSettings) -> None:
    stack = stack_settings(settings)
    await migrate.migrate_postgres(stack)
    await migrate.migrate_clickhouse(stack)


async def _local_admin_key() -> None:
    """The generated app/api-key becomes the admin key of workspace `default` (k_local_admin), in
    shorten's store and on the `keys` topic, as `just up` does natively (stackctl.localkey)."""
    from shorten.entrypoints.keys_cli import ensure_local_admin
    from shorten.settings import ShortenSettings
    from stackctl.config import read_secret

    from composectl.secrets import SECRETS_DIR

    if await ensure_local_admin(ShortenSettings(), read_secret(SECRETS_DIR / "app" / "api-key")):
        say("issued the admin key k_local_admin (workspace default) for app/api-key")
