"""Read your writes (issue 9): once `POST /api/v1/links` answered 201 -- or a PATCH 200, a DELETE
204 -- every redirect replica answers the new state. Through nginx (the public entry point) and
on each replica directly, a GET sent at once after each of 500 creates, 500 updates and 500
deletes: zero wrong answers."""

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.conftest import public_url, redirect_replica_urls, wait_until_async
from tests.integration.redirect.support import api, unique_code

pytestmark = pytest.mark.integration
__all__ = ["api"]  # fixture

WRITES = 500
CONCURRENCY = 16

Expected = tuple[int, str | None]


async def _answers(clients: list[httpx.AsyncClient], code: str) -> list[Expected]:
    responses = await asyncio.gather(*(c.get(f"/{code}") for c in clients))
    return [(r.status_code, r.headers.get("location")) for r in responses]


async def _each(codes: list[str], step: Callable[[int, str], Awaitable[list[str]]]) -> list[str]:
    """Run `step` for every code, CONCURRENCY at a time; gather the wrong answers it reports."""
    wrong: list[str] = []
    queue = list(enumerate(codes))

    async def worker() -> None:
        while queue:
            i, code = queue.pop()
            wrong.extend(await step(i, code))

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return wrong


async def test_every_replica_answers_a_write_as_soon_as_it_is_acknowledged(api: httpx.AsyncClient) -> None:
    readers = [httpx.AsyncClient(base_url=public_url(), timeout=5)]
    readers += [httpx.AsyncClient(base_url=url, timeout=5) for url in redirect_replica_urls()]
    prefix = unique_code("ryw")
    codes = [f"{prefix}-{i}" for i in range(WRITES)]

    def check(code: str, expected: Expected, answers: list[Expected], what: str) -> list[str]:
        return [f"{what} {code}: reader {n} answered {got}" for n, got in enumerate(answers) if got != expected]

    async def create(i: int, code: str) -> list[str]:
        url = f"https://ryw.example/{i}/created"
        response = await api.post("/api/v1/links", json={"url": url, "alias": code})
        assert response.status_code == 201, response.text
        return check(code, (302, url), await _answers(readers, code), "create")

    async def update(i: int, code: str) -> list[str]:
        url = f"https://ryw.example/{i}/updated"
        response = await api.patch(f"/api/v1/links/{code}", json={"url": url, "redirect_type": 301})
        assert response.status_code == 200, response.text
        return check(code, (301, url), await _answers(readers, code), "update")

    async def delete(i: int, code: str) -> list[str]:
        response = await api.delete(f"/api/v1/links/{code}")
        assert response.status_code == 204, response.text
        return check(code, (410, None), await _answers(readers, code), "delete")

    async def warm() -> bool:
        """The write path warmed up (the relay's first publish after a start can take seconds):
        a create whose immediate GETs all redirect."""
        code = unique_code("ryw-warm")
        return not await create(0, code)

    try:
        await wait_until_async(warm, timeout=60, interval=0.5, what="a create served at once by every replica")
        for step in (create, update, delete):
            wrong = await _each(codes, step)
            assert wrong == [], f"{len(wrong)} wrong answers after {step.__name__}s; first: {wrong[:5]}"
    finally:
        for reader in readers:
            await reader.aclose()
