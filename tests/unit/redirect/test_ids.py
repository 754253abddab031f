"""UUIDv7 event ids made in bulk: valid v7 UUIDs, unique, of the current millisecond."""

import time
import uuid

import pytest
from redirect.domain.ids import RUN, new_event_id, new_event_ids

pytestmark = pytest.mark.unit


def test_ids_are_uuid7_of_now() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_event_ids(1000)
    after = time.time_ns() // 1_000_000
    assert all(isinstance(i, uuid.UUID) and i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(before <= i.int >> 80 <= after for i in ids)  # the 48-bit timestamp, in ms
    assert uuid.UUID(str(ids[0])) == ids[0]


def test_ids_are_unique_within_and_across_calls_and_runs() -> None:
    many = new_event_ids(2 * RUN + 7)  # more than one counter run
    assert len(many) == 2 * RUN + 7
    ids = set(many) | {i for _ in range(200) for i in new_event_ids(50)} | {new_event_id() for _ in range(1000)}
    assert len(ids) == 2 * RUN + 7 + 200 * 50 + 1000


def test_nothing_asked_nothing_made() -> None:
    assert new_event_ids(0) == []
