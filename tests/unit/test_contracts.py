"""Every example payload of every topic contract round-trips; bad payloads are refused."""

from datetime import UTC, datetime

import pytest
from contracts import InvalidEvent, clicks, deadletter, keys, link_activity, links

pytestmark = pytest.mark.unit

CONTRACTS = [links, clicks, keys, deadletter, link_activity]


@pytest.mark.parametrize("module", CONTRACTS, ids=lambda m: m.__name__)
def test_every_example_round_trips(module: object) -> None:
    for example in module.EXAMPLES:  # type: ignore[attr-defined]
        event = module.decode(example)  # type: ignore[attr-defined]
        assert module.decode(module.encode(event)) == event  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"{}",
        b'{"type":"LinkClicked","schema_version":2,"event_id":"x","occurred_at":"2026-11-27T10:00:00Z","code":"c","visitor_key":"v"}',
        b'{"type":"LinkClicked","schema_version":1,"occurred_at":"2026-11-27T10:00:00Z","code":"c","visitor_key":"v"}',
        b'{"type":"Other","schema_version":1}',
    ],
)
def test_clicks_decode_refuses_poison(payload: bytes) -> None:
    with pytest.raises(InvalidEvent):
        clicks.decode(payload)


BATCH = clicks.EXAMPLES[0]


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (b'"event_id":"01890a5d-ac96-774b-bcce-b302099a8102"', b'"event_id":"not-a-uuid"'),
        (b'"code":"aZ3kP9q"', b'"code":"a/b"'),
        (b'"country":"FR"', b'"country":"fr"'),
        (b'"visitor_key":"3f2a9c0d1e4b5a69"', b'"visitor_key":""'),
        (b'"batch_id":"01890a5d-ac96-774b-bcce-b302099a8200"', b'"batch_id":"x"'),
        (b'"schema_version":1,"batch_id"', b'"schema_version":2,"batch_id"'),
    ],
)
def test_batch_decode_checks_every_click(good: bytes, bad: bytes) -> None:
    assert good in BATCH
    with pytest.raises(InvalidEvent):
        clicks.decode(BATCH.replace(good, bad, 1))


def test_batch_must_hold_clicks() -> None:
    empty = BATCH[: BATCH.index(b'"clicks":[')] + b'"clicks":[]}'
    with pytest.raises(InvalidEvent):
        clicks.decode(empty)


def test_record_id_is_the_batch_id_or_the_single_event_id() -> None:
    batch, single, _ = (clicks.decode(e) for e in clicks.EXAMPLES)
    assert clicks.record_id(batch) == "01890a5d-ac96-774b-bcce-b302099a8200"
    assert clicks.record_id(single) == "01890a5d-ac96-774b-bcce-b302099a8100"


def test_links_decode_refuses_unknown_redirect_type() -> None:
    bad = links.EXAMPLES[0].replace(b'"redirect_type":302', b'"redirect_type":307')
    with pytest.raises(InvalidEvent):
        links.decode(bad)


ACTIVITY = link_activity.EXAMPLES[0]


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (b'"codes":["aZ3kP9q","Qx7_b-2"]', b'"codes":["aZ3kP9q","a/b"]'),  # a code outside the pattern
        (b'"clicks":[3,0]', b'"clicks":[3]'),  # columns of different lengths
        (b'"bot_clicks":[1,2]', b'"bot_clicks":[1,-2]'),  # a negative count
        (b'"codes":["aZ3kP9q","Qx7_b-2"]', b'"codes":[]'),  # no link at all
        (b'"schema_version":1', b'"schema_version":2'),
    ],
)
def test_link_activity_decode_is_strict(good: bytes, bad: bytes) -> None:
    assert good in ACTIVITY
    with pytest.raises(InvalidEvent):
        link_activity.decode(ACTIVITY.replace(good, bad, 1))


def test_link_activity_splits_a_long_flush_into_records_of_at_most_max_links() -> None:
    n = 2 * link_activity.MAX_LINKS + 1
    codes = [f"code-{i}" for i in range(n)]
    records = link_activity.split(
        producer="aggregator-1",
        counted_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
        codes=codes,
        clicks=list(range(n)),
        bot_clicks=[0] * n,
        first_at=[1795773601] * n,
        last_at=[1795773602] * n,
    )
    assert [len(r.codes) for r in records] == [link_activity.MAX_LINKS, link_activity.MAX_LINKS, 1]
    rows = [row for r in records for row in link_activity.decode(link_activity.encode(r)).rows()]
    assert [(code, clicks) for code, clicks, *_ in rows] == list(zip(codes, range(n), strict=True))
    worst = link_activity.split(
        producer="aggregator-1",
        counted_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
        codes=["x" * 60 + f"{i:04d}" for i in range(link_activity.MAX_LINKS)],
        clicks=[50_000] * link_activity.MAX_LINKS,
        bot_clicks=[50_000] * link_activity.MAX_LINKS,
        first_at=[1795773601] * link_activity.MAX_LINKS,
        last_at=[1795773602] * link_activity.MAX_LINKS,
    )
    assert len(link_activity.encode(worst[0])) < 1_000_000  # under Kafka's default message size
