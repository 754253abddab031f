"""Topic replay (`python -m aggregator replay-clicks --from ...`, wired as `just replay clicks`):
changes no total, and rebuilds emptied sinks exactly."""

import pytest

from tests.integration.aggregator.support import (
    GRAINS,
    ClickProducer,
    Expected,
    Stores,
    batches,
    iso,
    make_click,
    run_aggregator,
    seconds_ago,
    unique_code,
)

pytestmark = pytest.mark.integration


async def test_replay_from_a_time_leaves_every_total_unchanged() -> None:
    start = seconds_ago(2)
    codes = [unique_code("rp") for _ in range(3)]
    async with ClickProducer() as producer, Stores() as stores:
        for n, code in enumerate(codes, start=1):
            await producer.send([make_click(code, i, bot=i % 5 == 0) for i in range(20 * n)])
        expected = {code: Expected(16 * n, 4 * n) for n, code in enumerate(codes, start=1)}
        for code, want in expected.items():
            await stores.wait_counted(code, want)
        # The whole topic from `start`, all codes: what the operator runs.
        result = run_aggregator("replay-clicks", "--from", iso(start))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[replay] done:" in result.stdout and "records (" in result.stdout  # progress shown
        for code, want in expected.items():
            assert await stores.pg_totals(code) == want
            assert await stores.ch_raw(code) == want
            for grain in GRAINS:
                assert await stores.ch_rollup(code, grain) == want
                assert await stores.ch_top(code, grain) == want
        # Twice is the same as once.
        again = run_aggregator("replay-clicks", "--from", iso(start), "--code", codes[0])
        assert again.returncode == 0 and "[replay] done: 0 newly counted, 20 already counted" in again.stdout
        assert await stores.pg_totals(codes[0]) == expected[codes[0]]


async def test_rebuild_of_emptied_codes_counts_them_again_exactly_once() -> None:
    start = seconds_ago(2)
    codes = [unique_code("rb"), unique_code("rb")]
    bystander = unique_code("rb")  # shares batch records with the rebuilt codes, must not change
    async with ClickProducer() as producer, Stores() as stores:
        events = [make_click(c, i, bot=i % 4 == 0) for c in codes for i in range(40)]
        others = [make_click(bystander, i) for i in range(25)]
        records = batches(events[:60] + others, partitions=await producer.partitions(), size=30)
        # Both formats, with repeats: a re-sent batch and repeated single clicks.
        await producer.send_batches(records + records[:1])
        await producer.send(events[60:] + events[60:70] + [make_click(c, 41) for c in codes])
        for code in codes:
            await stores.wait_counted(code, Expected(31, 10))
        await stores.wait_counted(bystander, Expected(25, 0))
        before = {code: await snapshot(stores, code) for code in [*codes, bystander]}
        await stores.forget(codes)
        for code in codes:
            assert await snapshot(stores, code) == (None, Expected(0, 0), [], [])
        # A plain replay cannot count them again: every record is in the ledger.
        plain = run_aggregator("replay-clicks", "--from", iso(start), *[f"--code={c}" for c in codes])
        assert plain.returncode == 0 and "[replay] done: 0 newly counted" in plain.stdout, plain.stdout
        result = run_aggregator("replay-clicks", "--from", iso(start), "--rebuild", *[f"--code={c}" for c in codes])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[replay] done: 82 newly counted" in result.stdout, result.stdout
        for code in [*codes, bystander]:
            assert await snapshot(stores, code) == before[code], code
        # A second rebuild is refused: the codes' sinks are no longer empty.
        again = run_aggregator("replay-clicks", "--from", iso(start), "--rebuild", f"--code={codes[0]}")
        assert again.returncode == 3 and "needs the listed codes' sinks empty" in again.stdout
        assert await snapshot(stores, codes[0]) == before[codes[0]]


async def snapshot(stores: Stores, code: str) -> tuple[object, ...]:
    return (
        await stores.pg_totals(code),
        await stores.ch_raw(code),
        await stores.ch_minutes(code),
        await stores.ch_dims(code),
    )


def test_replay_refuses_a_start_older_than_the_dedup_horizon() -> None:
    result = run_aggregator("replay-clicks", "--from", iso(seconds_ago(9 * 24 * 3600)))
    assert result.returncode == 2 and "older than the dedup horizon" in result.stdout


def test_rebuild_needs_the_codes() -> None:
    result = run_aggregator("replay-clicks", "--from", iso(seconds_ago(60)), "--rebuild")
    assert result.returncode == 2 and "--rebuild needs the codes" in result.stdout


def test_replay_refuses_a_malformed_time() -> None:
    result = run_aggregator("replay-clicks", "--from", "last tuesday")
    assert result.returncode == 2 and "not an ISO 8601 time" in result.stderr
