"""The hypercorn services keep an idle connection open past hypercorn's 5 s default, so nginx
(which drops idle upstream connections at 60 s) never reuses one the service is closing.
tests/unit/test_keep_alive.py checks the two timeouts against each other."""

import asyncio

import pytest
from stackctl.config import StackSettings

pytestmark = pytest.mark.e2e

HYPERCORN_DEFAULT_IDLE_S = 5
# The idle period is the behaviour under test, not a wait for something to happen.
IDLE_S = HYPERCORN_DEFAULT_IDLE_S + 2


async def get_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length")
    await asyncio.wait_for(reader.readexactly(length), timeout=10)
    return int(lines[0].split()[1])


async def survives_idle(port: int) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        first = await get_on(reader, writer, "/healthz")
        await asyncio.sleep(IDLE_S)
        return first, await get_on(reader, writer, "/healthz")
    finally:
        writer.close()


async def test_an_idle_connection_outlives_hypercorns_default_timeout() -> None:
    s = StackSettings()
    ports = {"shorten": s.shorten_port, "analytics": s.analytics_port, "stackcheck": s.stackcheck_port}
    results = await asyncio.gather(*(survives_idle(p) for p in ports.values()), return_exceptions=True)
    for name, result in zip(ports, results, strict=True):
        assert result == (200, 200), f"{name}: {result!r}"
