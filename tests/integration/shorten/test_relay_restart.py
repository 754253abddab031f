"""Destructive: the relay stopped, or started while Kafka is away. The API keeps writing to the
outbox; the relay publishes the backlog in order once it (or Kafka) is back."""

import httpx
import pytest
from contracts.links import LinkCreated, LinkUpdated

from tests.conftest import ROOT, wait_until, wait_until_async
from tests.integration.shorten.support import (
    LinksTopic,
    end_offsets,
    kafka_answers,
    outbox_rows,
    program_state,
    supervisorctl,
    unique_alias,
)

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


async def test_backlog_written_while_the_relay_is_down_is_published_after_restart(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    offsets = await end_offsets()
    aliases = [unique_alias("relay") for _ in range(4)]
    supervisorctl("stop", "shorten-relay")
    try:
        assert program_state("shorten-relay") == "STOPPED"
        for alias in aliases:
            created = await client.post("/api/v1/links", json={"url": "https://e.com/r", "alias": alias}, headers=auth)
            assert created.status_code == 201
            patched = await client.patch(f"/api/v1/links/{alias}", json={"max_clicks": 9}, headers=auth)
            assert patched.status_code == 200
        rows = await outbox_rows(aliases)
        assert len(rows) == 8 and all(r["published_at"] is None for r in rows)
    finally:
        supervisorctl("start", "shorten-relay")
        wait_until(lambda: program_state("shorten-relay") == "RUNNING", timeout=60, what="relay running")

    async with LinksTopic(start_offsets=offsets) as topic:
        seen = await topic.wait_for(aliases, 8, timeout=60)
    for alias in aliases:
        mine = [s for s in seen if s.event.code == alias]
        assert [type(s.event) for s in mine] == [LinkCreated, LinkUpdated]
        assert mine[0].partition == mine[1].partition and mine[0].offset < mine[1].offset
    rows = await outbox_rows(aliases)
    assert sorted(s.event.event_id for s in seen) == sorted(r["event_id"] for r in rows)  # no loss, no doubles

    async def all_marked() -> bool:
        return all(r["published_at"] is not None for r in await outbox_rows(aliases))

    await wait_until_async(all_marked, timeout=30, what="backlog marked published")


async def test_relay_started_while_kafka_is_down_backs_off_then_catches_up(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    offsets = await end_offsets()
    relay_log = ROOT / ".local/logs/shorten-relay.log"
    aliases = [unique_alias("kdown") for _ in range(3)]
    supervisorctl("stop", "kafka")
    try:
        assert program_state("kafka") == "STOPPED"
        log_start = relay_log.stat().st_size
        supervisorctl("restart", "shorten-relay")  # a relay process that starts without Kafka
        for alias in aliases:
            created = await client.post("/api/v1/links", json={"url": "https://e.com/k", "alias": alias}, headers=auth)
            assert created.status_code == 201

        def relay_log_since_start() -> str:
            return relay_log.read_bytes()[log_start:].decode(errors="replace")

        # It takes the lock, cannot reach Kafka, and retries with backoff (tenacity) ...
        wait_until(
            lambda: relay_log_since_start().count("publishing the outbox failed") >= 2,
            timeout=90,
            interval=0.25,
            what="the relay to retry publishing with backoff",
        )
        assert "relay lock taken" in relay_log_since_start()
        assert all(r["published_at"] is None for r in await outbox_rows(aliases))
    finally:
        supervisorctl("start", "kafka")
        wait_until(lambda: program_state("kafka") == "RUNNING", timeout=120, what="kafka running again")
        wait_until(lambda: program_state("shorten-relay") == "RUNNING", timeout=60, what="relay running")
        await wait_until_async(kafka_answers, timeout=120, interval=0.5, what="kafka answering again")

    # ... and catches up once Kafka is back.
    async with LinksTopic(start_offsets=offsets) as topic:
        seen = await topic.wait_for(aliases, 3, timeout=120)
    assert sorted(s.event.code for s in seen) == sorted(aliases)
    assert all(isinstance(s.event, LinkCreated) for s in seen)


async def test_just_keys_publishes_the_outbox_itself_when_no_relay_runs(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """As during `just up` (the local admin key is issued before the services start): with no
    relay holding the outbox lock, the CLI publishes the outbox, in order, and returns once its
    key is in the topic."""
    import asyncio
    import json
    import os
    import subprocess
    import sys

    from tests.integration.shorten.support import bearer

    offsets = await end_offsets()
    alias = unique_alias("norelay")
    supervisorctl("stop", "shorten-relay")
    try:
        assert program_state("shorten-relay") == "STOPPED"
        backlog = await client.post(
            "/api/v1/links", json={"url": "https://e.com/norelay", "alias": alias}, headers=auth
        )
        assert backlog.status_code == 201
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "shorten",
                "keys",
                "create",
                "--workspace",
                "norelay",
                "--scopes",
                "links:read",
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=os.environ.copy(),
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        secret = json.loads(done.stdout)["secret"]
        assert (await client.get("/api/v1/links", headers=bearer(secret))).status_code == 200
        # The link written before the key was published too (the outbox goes out in order).
        async with LinksTopic(start_offsets=offsets) as topic:
            [seen] = await topic.wait_for([alias], 1, timeout=30)
        assert isinstance(seen.event, LinkCreated)
    finally:
        supervisorctl("start", "shorten-relay")
        wait_until(lambda: program_state("shorten-relay") == "RUNNING", timeout=60, what="relay running")
