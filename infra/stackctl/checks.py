"""Probes of every stack component; the smoke test, `just check` and the public /readyz use them.

Each probe raises with a reason when its component does not answer as it should.
"""

import asyncio
import functools
import socket
from collections.abc import Awaitable, Callable

import httpx

from stackctl.config import StackSettings

Probe = Callable[[], Awaitable[object]]


async def kafka_metadata(s: StackSettings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        topics = await admin.list_topics()
        missing = {"links", "clicks", "deadletter"} - set(topics)
        if missing:
            raise RuntimeError(f"topics missing: {sorted(missing)}")
    finally:
        await admin.close()


async def kafka_broker(s: StackSettings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        await admin.describe_cluster()
    finally:
        await admin.close()


async def postgres(s: StackSettings) -> None:
    import asyncpg

    conn = await asyncpg.connect(s.postgres_dsn, timeout=3)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def postgres_server(s: StackSettings) -> None:
    """The server answers (superuser over the local socket; used before the app role exists)."""
    import asyncpg

    conn = await asyncpg.connect(
        host=str(s.path("postgres", "run")), port=s.postgres_port, user="postgres", database="postgres", timeout=3
    )
    await conn.close()


async def _redis_info(port: int) -> dict[str, object]:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=3, socket_connect_timeout=3)
    try:
        await client.ping()
        return await client.info("replication")
    finally:
        await client.aclose()


async def redis_memory(url: str) -> tuple[int, int]:
    """(used_memory, maxmemory) from INFO memory of the Redis at `url`."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        info = await client.info("memory")
        return int(info["used_memory"]), int(info.get("maxmemory", 0))
    finally:
        await client.aclose()


async def redis_server(port: int, *, other: int) -> None:
    """One of the two Redis servers: the primary, or a replica linked to the other one. Which is
    which is Sentinel's call (after a failover the `redis-replica` program is the primary)."""
    info = await _redis_info(port)
    role = info.get("role")
    if role == "master":
        return
    if role != "slave" or info.get("master_link_status") != "up" or info.get("master_port") != other:
        raise RuntimeError(
            f"neither primary nor linked replica: role={role} master_port={info.get('master_port')} "
            f"link={info.get('master_link_status')}"
        )


async def redis_primary(s: StackSettings) -> None:
    await redis_server(s.redis_port, other=s.redis_replica_port)


async def redis_replica(s: StackSettings) -> None:
    await redis_server(s.redis_replica_port, other=s.redis_port)


async def sentinel_master(port: int, master: str) -> tuple[str, int]:
    """The primary the Sentinel on `port` names, once it sees a quorum (else RuntimeError)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=3, socket_connect_timeout=3)
    try:
        quorum = await client.execute_command("SENTINEL", "CKQUORUM", master)  # type: ignore[no-untyped-call]
        address = await client.execute_command(  # type: ignore[no-untyped-call]
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master
        )
    except Exception as exc:
        raise RuntimeError(f"sentinel: {exc}") from exc
    finally:
        await client.aclose()
    if not address:
        raise RuntimeError(f"sentinel knows no master {master!r} ({quorum!r})")
    return address[0].decode(), int(address[1])


async def redis_sentinel(s: StackSettings, port: int) -> None:
    """This Sentinel sees a quorum and names one of the stack's Redis servers, a primary."""
    host, primary = await sentinel_master(port, s.redis_sentinel_master)
    if primary not in (s.redis_port, s.redis_replica_port):
        raise RuntimeError(f"sentinel names {host}:{primary}, not one of this stack's Redis servers")
    info = await _redis_info(primary)
    if info.get("role") != "master":
        raise RuntimeError(f"sentinel names {host}:{primary}, whose role is {info.get('role')}")


async def _http_ok(url: str, *, expect: int = 200) -> str:
    async with httpx.AsyncClient(timeout=3) as client:
        response = await client.get(url)
    if response.status_code != expect:
        raise RuntimeError(f"GET {url} -> {response.status_code}: {response.text[:200]}")
    return response.text


async def clickhouse(s: StackSettings) -> None:
    body = await _http_ok(f"{s.clickhouse_url}/?query=SELECT%201")
    if body.strip() != "1":
        raise RuntimeError(f"unexpected answer {body!r}")


async def nginx(s: StackSettings) -> None:
    # A path nginx answers itself, so this probes nginx and not the services behind it.
    await _http_ok(f"http://127.0.0.1:{s.public_http_port}/metrics", expect=404)


async def prometheus(s: StackSettings) -> None:
    await _http_ok(f"http://127.0.0.1:{s.prometheus_port}/-/ready")


def infra_probes(s: StackSettings) -> dict[str, Probe]:
    if s.is_cluster:
        from stackctl import cluster

        probes: dict[str, Probe] = {
            name: probe for name, probe in _default_infra_probes(s).items() if name != "clickhouse"
        }
        probes.update(cluster.probes(s))
        probes["clickhouse"] = lambda: clickhouse(s)  # through nginx, as the services reach it
        return probes
    return _default_infra_probes(s)


def _default_infra_probes(s: StackSettings) -> dict[str, Probe]:
    return {
        "kafka": lambda: kafka_metadata(s),
        "postgres": lambda: postgres(s),
        "redis": lambda: redis_primary(s),
        "redis-replica": lambda: redis_replica(s),
        **{
            f"redis-sentinel-{i}": functools.partial(redis_sentinel, s, port)
            for i, port in enumerate(s.sentinel_ports, start=1)
        },
        "clickhouse": lambda: clickhouse(s),
        "nginx": lambda: nginx(s),
        "prometheus": lambda: prometheus(s),
    }


def service_endpoints(s: StackSettings) -> dict[str, str]:
    endpoints = {f"shorten-{i}": f"http://127.0.0.1:{port}" for i, port in enumerate(s.shorten_ports, start=1)}
    endpoints["analytics"] = f"http://127.0.0.1:{s.analytics_port}"
    for i, port in enumerate(s.redirect_ports, start=1):
        endpoints[f"redirect-{i}"] = f"http://{s.host_of(i)}:{port}"
    return endpoints


def service_probes(s: StackSettings, path: str = "/readyz") -> dict[str, Probe]:
    urls = {name: base + path for name, base in service_endpoints(s).items()}
    # Faust workers: their web server (metrics, health) answers while the worker runs.
    urls.update(
        {f"aggregator-{i}": f"http://{s.host_of(i)}:{port}{path}" for i, port in enumerate(s.aggregator_ports, 1)}
    )
    return {name: functools.partial(_http_ok, url) for name, url in urls.items()}


async def run_probes(probes: dict[str, Probe], timeout: float = 5.0) -> dict[str, str | None]:
    async def one(probe: Probe) -> str | None:
        try:
            await asyncio.wait_for(probe(), timeout)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        return None

    results = await asyncio.gather(*(one(p) for p in probes.values()))
    return dict(zip(probes, results, strict=True))


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_ports(s: StackSettings) -> dict[str, int]:
    ports = {
        "kafka": s.kafka_port,
        "kafka-controller": s.kafka_controller_port,
        "postgres": s.postgres_port,
        "redis": s.redis_port,
        "redis-replica": s.redis_replica_port,
        "clickhouse-http": s.clickhouse_http_port,
        "clickhouse-tcp": s.clickhouse_tcp_port,
        "nginx": s.public_http_port,
        "prometheus": s.prometheus_port,
        "analytics": s.analytics_port,
        "stackcheck": s.stackcheck_port,
    }
    ports.update({f"redis-sentinel-{i}": p for i, p in enumerate(s.sentinel_ports, start=1)})
    ports.update({f"shorten-{i}": p for i, p in enumerate(s.shorten_ports, start=1)})
    ports.update({f"redirect-{i}": p for i, p in enumerate(s.redirect_ports, start=1)})
    ports.update({f"aggregator-{i}": p for i, p in enumerate(s.aggregator_ports, start=1)})
    if s.is_cluster:
        from stackctl import cluster

        for name in ("kafka", "kafka-controller", "clickhouse-http", "clickhouse-tcp"):
            ports.pop(name)
        ports.update(cluster.ports(s))
    return ports
