"""The list's query parameters and its opaque cursor (pure parts; the SQL runs in
tests/integration/shorten/test_workspaces.py)."""

from datetime import UTC, datetime

import pytest
from shorten.domain.commands import parse_changes, parse_create
from shorten.domain.errors import InvalidInput
from shorten.domain.listing import (
    DEFAULT_LIMIT,
    ListQuery,
    Position,
    decode_cursor,
    encode_cursor,
    like_pattern,
    parse_list_query,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("code", ["abc", "aZ3kP9q_-x", "A" * 64])
def test_a_cursor_round_trips_to_the_microsecond(code: str) -> None:
    position = Position(datetime(2026, 11, 30, 12, 0, 1, 123456, tzinfo=UTC), code)
    cursor = encode_cursor(position)
    assert cursor.isascii() and "=" not in cursor and code not in cursor
    assert decode_cursor(cursor) == position


@pytest.mark.parametrize("cursor", ["zzz", "!!!!", "é", "x" * 201, "MTIzNA", "LmFiYw", "YWJjLmRlZg"])
def test_a_cursor_this_api_did_not_return_is_422(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(cursor)
    assert (refused.value.code, refused.value.field) == ("cursor_invalid", "cursor")


def test_defaults_and_every_parameter() -> None:
    assert parse_list_query({}, workspace="acme") == ListQuery(workspace="acme", limit=DEFAULT_LIMIT)
    cursor = encode_cursor(Position(NOW, "abc"))
    query = parse_list_query(
        {"q": "Shop", "tag": "q4 launch", "cursor": cursor, "limit": "100", "x": "?"}, workspace="acme"
    )
    assert query == ListQuery(workspace="acme", q="Shop", tag="q4 launch", after=Position(NOW, "abc"), limit=100)
    assert parse_list_query({"q": "", "tag": "", "cursor": ""}, workspace="w").q is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "limit_invalid"),
        ({"limit": "101"}, "limit_invalid"),
        ({"limit": "-1"}, "limit_invalid"),
        ({"limit": "²"}, "limit_invalid"),
        ({"limit": "1e2"}, "limit_invalid"),
        ({"limit": "00000000001"}, "limit_invalid"),
        ({"q": "x" * 201}, "q_invalid"),
        ({"q": "a\x00b"}, "q_invalid"),
        ({"tag": "a,b"}, "tag_invalid"),
        ({"tag": "t" * 41}, "tag_invalid"),
        ({"cursor": "nope"}, "cursor_invalid"),
    ],
)
def test_bad_parameters_are_422_with_a_stable_code(params: dict[str, str], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_list_query(params, workspace="acme")
    assert refused.value.code == code


def test_q_is_matched_literally() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_tags_and_public_stats_on_create_and_patch() -> None:
    created = parse_create(
        {"url": "https://a.example", "tags": ["b", "a", "b"], "public_stats": True}, now=NOW, workspace="acme"
    )
    assert (created.tags, created.public_stats, created.workspace) == (("b", "a"), True, "acme")
    plain = parse_create({"url": "https://a.example"}, now=NOW)
    assert (plain.tags, plain.public_stats, plain.workspace) == ((), False, "default")
    changes = parse_changes({"tags": []}, now=NOW)
    assert (changes.tags, changes.public_stats) == ((), None)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"tags": "a"}, "tags_invalid"),
        ({"tags": [1]}, "tag_invalid"),
        ({"tags": [""]}, "tag_invalid"),
        ({"tags": ["a,b"]}, "tag_invalid"),
        ({"tags": ["a\nb"]}, "tag_invalid"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags_too_many"),
        ({"public_stats": "yes"}, "public_stats_invalid"),
        ({"public_stats": 1}, "public_stats_invalid"),
        ({"workspace": "other"}, "unknown_field"),  # the workspace is the key's, never the body's
    ],
)
def test_bad_tags_and_public_stats(body: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_create({"url": "https://a.example", **body}, now=NOW)
    assert refused.value.code == code
