"""Every example payload of every topic contract round-trips; bad payloads are refused."""

import pytest
from contracts import InvalidEvent, clicks, deadletter, keys, links

pytestmark = pytest.mark.unit

CONTRACTS = [links, clicks, keys, deadletter]


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
