"""`just import`'s sender: chunks in file order, a bounded number in flight, nothing more sent
after a chunk refused whole (the chunks in flight finish), every chunk accounted for."""

import asyncio

import httpx
import pytest
from shorten.entrypoints import import_cli

pytestmark = pytest.mark.unit

HEADER = ["url"]


def planned(n: int) -> list[import_cli.Chunk]:
    return import_cli.chunks([(i + 2, [f"https://example.com/{i}"]) for i in range(n)], 1)


async def run(n: int, *, parallel: int, refuse_line: int | None) -> tuple[list[int], list[int], int]:
    in_flight = 0
    most_in_flight = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await asyncio.sleep(0)  # let the other senders start theirs
        in_flight -= 1
        url = request.content.decode().splitlines()[1]
        if refuse_line is not None and url.endswith(f"/{refuse_line - 2}"):
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "down"}})
        return httpx.Response(200, json={"results": [{"row": 0, "status": "created", "code": "c"}]})

    answered: list[int] = []
    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        not_sent = await import_cli.send_all(
            client,
            HEADER,
            planned(n),
            parallel=parallel,
            say=lambda _: None,
            answered=lambda chunk, _: answered.append(chunk.lines[0]),
        )
    return answered, [c.lines[0] for c in not_sent], most_in_flight


async def test_every_chunk_is_sent_once_with_at_most_parallel_in_flight() -> None:
    answered, not_sent, most = await run(9, parallel=3, refuse_line=None)
    assert sorted(answered) == list(range(2, 11)) and not_sent == []
    assert most == 3


async def test_one_at_a_time_stops_right_after_a_refused_chunk() -> None:
    answered, not_sent, most = await run(6, parallel=1, refuse_line=4)
    assert answered == [2, 3, 4] and not_sent == [5, 6, 7] and most == 1


async def test_in_flight_chunks_finish_after_a_refusal_and_the_rest_is_not_sent() -> None:
    answered, not_sent, _ = await run(8, parallel=2, refuse_line=3)
    assert 3 in answered
    assert sorted(answered + not_sent) == list(range(2, 10))  # every chunk accounted for, once
    assert not_sent == sorted(not_sent) and min(not_sent) > 3
    assert len(answered) <= 3  # the refused chunk, the one beside it, at most one taken meanwhile
