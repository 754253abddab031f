"""Redis Sentinel from the operator's side: who the primary is, and moving it back to the
`redis` program after a failover (`python -m stackctl redis-failback`).

After a failover the stack serves on: the services ask the sentinels. Tools and tests that
address Redis by REDIS_URL (the `redis` program's port) expect the primary there, so the fault
tests and `just chaos` put it back when they are done, the way an operator would.
"""

import asyncio
import time

import redis.asyncio as aioredis

from stackctl import checks
from stackctl.config import StackSettings


async def primary_port(s: StackSettings) -> int | None:
    """The primary's port as the first sentinel that answers names it (None: none answers)."""
    for port in s.sentinel_ports:
        try:
            _, primary = await checks.sentinel_master(port, s.redis_sentinel_master)
        except (RuntimeError, OSError):
            continue
        return primary
    return None


async def _role(port: int) -> tuple[str, str | None]:
    client = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        info = await client.info("replication")
    except Exception:
        return "down", None
    finally:
        await client.aclose()
    return str(info.get("role")), str(info.get("master_link_status")) if "master_link_status" in info else None


async def settled(s: StackSettings, primary: int) -> bool:
    """Every sentinel names `primary`, it answers as primary, and the other server replicates it."""
    other = s.redis_replica_port if primary == s.redis_port else s.redis_port
    for port in s.sentinel_ports:
        try:
            _, named = await checks.sentinel_master(port, s.redis_sentinel_master)
        except (RuntimeError, OSError):
            return False
        if named != primary:
            return False
    return await _role(primary) == ("master", None) and await _role(other) == ("slave", "up")


async def wait_promoted(s: StackSettings, primary: int, *, timeout: float) -> float:
    """Until every sentinel names `primary` and it answers as primary; when (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        named: set[int | None] = set()
        for port in s.sentinel_ports:
            try:
                named.add((await checks.sentinel_master(port, s.redis_sentinel_master))[1])
            except (RuntimeError, OSError):
                named.add(None)
        if named == {primary} and (await _role(primary))[0] == "master":
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"Sentinel did not promote the Redis on port {primary} within {timeout:.0f}s")
        await asyncio.sleep(0.1)


async def wait_settled(s: StackSettings, primary: int, *, timeout: float) -> float:
    """Seconds until `settled(primary)`; TimeoutError after `timeout`."""
    start = time.monotonic()
    while not await settled(s, primary):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"Redis did not settle with the primary on port {primary} within {timeout:.0f}s")
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def fail_back(s: StackSettings, *, timeout: float = 90) -> bool:
    """Make the `redis` program the primary again (a Sentinel-run failover to it) once it is a
    linked replica; no-op when it already is. True when a failover was needed."""
    if await primary_port(s) == s.redis_port:
        await wait_settled(s, s.redis_port, timeout=timeout)
        return False
    await wait_settled(s, s.redis_replica_port, timeout=timeout)  # the redis program has rejoined
    client = aioredis.Redis(host="127.0.0.1", port=s.sentinel_ports[0], socket_timeout=5)
    try:
        await client.execute_command("SENTINEL", "FAILOVER", s.redis_sentinel_master)  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()
    await wait_settled(s, s.redis_port, timeout=timeout)
    return True
