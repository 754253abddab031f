"""Fixtures for shorten integration tests: they talk to the shorten service directly (:8001)."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import shorten_url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shorten_url(), timeout=10) as c:
        yield c


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}
