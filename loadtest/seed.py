"""Before the run: create the seeded codes and wait until each one redirects.

The waiting probes are real redirects through the entry point, so they are tallied like the
readers' requests (a served probe is a click analytics must count).
"""

import asyncio
import time

import httpx

from loadtest.browser import BROWSER_USER_AGENTS, REDIRECT_OK
from loadtest.tally import RedirectTally

SEED_CONCURRENCY = 8


class SeedError(RuntimeError):
    """The stack did not let us create or resolve the seeded codes in time."""


async def create_codes(
    client: httpx.AsyncClient, *, count: int, api_key: str, run_id: str, timeout: float
) -> list[str]:
    """Create `count` links (honouring 429 Retry-After) and return their codes in order."""
    deadline = time.monotonic() + timeout
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(index: int) -> str:
        body = {"url": f"https://example.com/loadtest/{run_id}/{index}"}
        headers = {"Authorization": f"Bearer {api_key}"}
        backoff = 0.2
        async with gate:
            while True:
                try:
                    response = await client.post("/api/v1/links", json=body, headers=headers)
                except httpx.TransportError as exc:
                    error, wait = f"{type(exc).__name__}: {exc}", backoff
                else:
                    if response.status_code == 201:
                        return str(response.json()["code"])
                    error = f"HTTP {response.status_code}: {response.text[:200]}"
                    if response.status_code in (400, 401, 403, 413, 415, 422):
                        raise SeedError(f"creating a seeded link was refused: {error}")
                    wait = _retry_after(response) if response.status_code == 429 else backoff
                if time.monotonic() + wait > deadline:
                    raise SeedError(f"could not create seeded links within {timeout:.0f}s; last: {error}")
                await asyncio.sleep(wait)
                backoff = min(2.0, backoff * 2)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def wait_until_served(
    client: httpx.AsyncClient, codes: list[str], tally: RedirectTally, *, timeout: float
) -> None:
    """Request each code until it redirects (the link reached the redirect service)."""
    deadline = time.monotonic() + timeout
    gate = asyncio.Semaphore(SEED_CONCURRENCY)
    headers = {"User-Agent": BROWSER_USER_AGENTS[0], "Accept": "text/html"}

    async def one(code: str) -> None:
        delay = 0.1
        async with gate:
            while True:
                tally.started(code)
                try:
                    response = await client.get(f"/{code}", headers=headers, follow_redirects=False)
                except httpx.TransportError as exc:
                    status, error = 0, f"{type(exc).__name__}: {exc}"
                else:
                    status, error = response.status_code, f"HTTP {response.status_code}"
                if status in REDIRECT_OK:
                    tally.served(code)
                    return
                if 400 <= status < 500:
                    tally.refused(code)
                if time.monotonic() + delay > deadline:
                    raise SeedError(f"seeded code {code} did not redirect within {timeout:.0f}s; last: {error}")
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    await asyncio.gather(*(one(c) for c in codes))


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
