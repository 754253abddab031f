"""Bulk import without I/O: the request's rows (JSON and CSV), each row's validation (the single
create's), and the import use case against the fake store (created / exists / error, chunks)."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from shorten.domain.bulk import MAX_ROWS, MalformedCsv, TooManyRows, csv_rows, json_rows
from shorten.domain.errors import InvalidInput, ShortenError
from shorten.domain.model import CreateLink
from shorten.domain.targets import TargetRules
from shorten.entrypoints.bulk_endpoint import row_command
from shorten.service_layer.bulk_import import LinkImporter

from tests.unit.shorten.fakes import FakeLinkStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TARGETS = TargetRules.from_settings(public_base_url="http://sho.rt", extra_domains="", denied_targets="")


def command(row: object, workspace: str = "acme") -> CreateLink | ShortenError:
    return row_command(row, now=NOW, targets=TARGETS, workspace=workspace)


def error_code(row: object) -> str:
    result = command(row)
    assert isinstance(result, ShortenError), result
    return result.code


# --- JSON -----------------------------------------------------------------------------------


def test_json_rows_are_the_links_list() -> None:
    assert json_rows({"links": [{"url": "https://e.com"}, 7]}) == [{"url": "https://e.com"}, 7]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([{"url": "https://e.com"}], "body_not_object"),
        ({"links": [], "extra": 1}, "unknown_field"),
        ({}, "links_invalid"),
        ({"links": {"url": "https://e.com"}}, "links_invalid"),
        ({"links": []}, "links_empty"),
    ],
)
def test_a_json_body_of_the_wrong_shape_is_refused_whole(payload: object, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        json_rows(payload)
    assert refused.value.code == code


def test_more_rows_than_the_limit_are_refused_whole() -> None:
    assert len(json_rows({"links": [{}] * MAX_ROWS})) == MAX_ROWS
    with pytest.raises(TooManyRows) as refused:
        json_rows({"links": [{}] * (MAX_ROWS + 1)})
    assert refused.value.code == "too_many_rows"


# --- CSV ------------------------------------------------------------------------------------


def test_csv_cells_get_their_json_types() -> None:
    body = (
        "\ufeffurl,alias,redirect_type,max_clicks,public_stats,tags,expires_at\r\n"
        'https://e.com/a,a-1,301,5,true,"x, y",2030-01-01T00:00:00Z\r\n'
        "https://e.com/b,,,,no,,\r\n"
        "\r\n"
        "https://e.com/c\r\n"
        ",,,,,,\r\n"
    ).encode()
    assert csv_rows(body) == [
        {
            "url": "https://e.com/a",
            "alias": "a-1",
            "redirect_type": 301,
            "max_clicks": 5,
            "public_stats": True,
            "tags": ["x", "y"],
            "expires_at": "2030-01-01T00:00:00Z",
        },
        {"url": "https://e.com/b", "public_stats": False},
        {"url": "https://e.com/c"},
        {},  # a line of empty cells is a row (url_required), a blank line is not
    ]


def test_csv_cells_that_do_not_convert_fail_their_fields_rule() -> None:
    rows = csv_rows(b"url,redirect_type,max_clicks,public_stats\nhttps://e.com,303,-1,maybe\n")
    assert rows == [{"url": "https://e.com", "redirect_type": 303, "max_clicks": "-1", "public_stats": "maybe"}]
    assert error_code({"url": "https://e.com", "redirect_type": 303}) == "redirect_type_invalid"
    assert error_code({"url": "https://e.com", "max_clicks": "-1"}) == "max_clicks_invalid"
    assert error_code({"url": "https://e.com", "public_stats": "maybe"}) == "public_stats_invalid"


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        (b"", InvalidInput, "links_empty"),
        (b"url\n", InvalidInput, "links_empty"),
        (b"url,color\nhttps://e.com,red\n", InvalidInput, "unknown_field"),
        (b"alias\nabc\n", InvalidInput, "url_required"),
        (b"url,url\nhttps://e.com,https://e.com\n", InvalidInput, "csv_header_invalid"),
        (b"url\n\xff\xfe\n", MalformedCsv, "malformed_csv"),
        (b'url\n"https://e.com\n', MalformedCsv, "malformed_csv"),
    ],
    ids=["empty", "header-only", "unknown-column", "no-url-column", "twice", "not-utf8", "open-quote"],
)
def test_a_csv_that_cannot_be_read_is_refused_whole(body: bytes, error: type[ShortenError], code: str) -> None:
    with pytest.raises(error) as refused:
        csv_rows(body)
    assert refused.value.code == code


def test_a_csv_over_the_row_limit_is_refused_whole() -> None:
    body = b"url\n" + b"https://e.com\n" * (MAX_ROWS + 1)
    with pytest.raises(TooManyRows) as refused:
        csv_rows(body)
    assert f"{MAX_ROWS + 1} rows" in refused.value.message


def test_a_csv_line_with_more_cells_than_columns_is_that_rows_error() -> None:
    rows = csv_rows(b"url,alias\nhttps://e.com,abc,extra\nhttps://e.com/ok\n")
    assert error_code(rows[0]) == "row_invalid"
    assert isinstance(command(rows[1]), CreateLink)


# --- each row: the single create's validation ----------------------------------------------


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("https://e.com", "row_invalid"),
        ({}, "url_required"),
        ({"url": "ftp://e.com"}, "url_scheme_not_allowed"),
        ({"url": "https://e.com/\x00"}, "url_invalid"),  # the csv module reads a NUL as any character
        ({"url": "http://sho.rt/loop"}, "url_self_reference"),
        ({"url": "https://e.com", "alias": "healthz"}, "alias_reserved"),
        ({"url": "https://e.com", "alias": "a b"}, "alias_invalid"),
        ({"url": "https://e.com", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at_in_past"),
        ({"url": "https://e.com", "max_clicks": 0}, "max_clicks_invalid"),
        ({"url": "https://e.com", "tags": ["a,b"]}, "tag_invalid"),
        ({"url": "https://e.com", "color": "red"}, "unknown_field"),
    ],
)
def test_a_row_is_refused_with_the_single_creates_code(row: object, code: str) -> None:
    assert error_code(row) == code


def test_a_valid_row_is_normalised_like_a_single_create() -> None:
    result = command({"url": "HTTPS://Bücher.example/x", "alias": "books", "tags": ["a", "a"]})
    assert result == CreateLink(url="https://xn--bcher-kva.example/x", alias="books", workspace="acme", tags=("a",))


# --- the use case ---------------------------------------------------------------------------


def ids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"event-{n}"


def importer(store: FakeLinkStore, *, codes: list[str] | None = None, chunk_rows: int = 1000) -> LinkImporter:
    scripted, generated, event_ids = iter(codes or []), iter(f"gen{n:05d}" for n in range(100_000)), ids()
    return LinkImporter(
        store=store,
        chunk_rows=chunk_rows,
        clock=lambda: NOW,
        event_ids=lambda: next(event_ids),
        codes=lambda _length: next(scripted, None) or next(generated),
    )


def link(url: str, alias: str | None = None, workspace: str = "acme") -> CreateLink:
    return CreateLink(url=url, alias=alias, workspace=workspace)


async def test_each_row_gets_its_result_in_input_order() -> None:
    store = FakeLinkStore()
    result = await importer(store).import_links(
        [
            link("https://e.com/1", "one"),
            InvalidInput("url is required", code="url_required", field="url"),
            link("https://e.com/2"),
            link("https://e.com/1", "one"),  # repeated alias, same target: exists
            link("https://e.com/other", "one"),  # repeated alias, other target: taken
        ]
    )
    assert [(r.row, r.status, r.code, r.error and r.error.code) for r in result.rows] == [
        (0, "created", "one", None),
        (1, "error", None, "url_required"),
        (2, "created", "gen00000", None),
        (3, "exists", "one", None),
        (4, "error", None, "alias_taken"),
    ]
    assert len(store.links) == 2 and len(store.events) == 2  # one event per created link


async def test_sending_the_same_alias_rows_again_creates_nothing() -> None:
    store = FakeLinkStore()
    rows = [link(f"https://e.com/{n}", f"alias-{n}") for n in range(50)]
    first = await importer(store).import_links(rows)
    again = await importer(store).import_links(rows)
    assert {r.status for r in first.rows} == {"created"}
    assert [(r.status, r.code) for r in again.rows] == [("exists", f"alias-{n}") for n in range(50)]
    assert len(store.links) == 50 and len(store.events) == 50


async def test_an_alias_of_another_workspace_or_a_deleted_link_is_taken() -> None:
    store = FakeLinkStore()
    await importer(store).import_links([link("https://e.com/a", "theirs", workspace="other")])
    await importer(store).import_links([link("https://e.com/b", "gone")])
    store.links["gone"] = replace(store.links["gone"], deleted_at=NOW)
    result = await importer(store).import_links([link("https://e.com/a", "theirs"), link("https://e.com/b", "gone")])
    assert [r.error and r.error.code for r in result.rows] == ["alias_taken", "alias_taken"]


async def test_rows_are_written_in_chunks() -> None:
    store = FakeLinkStore()
    result = await importer(store, chunk_rows=400).import_links([link(f"https://e.com/{n}") for n in range(1000)])
    assert store.chunks == [400, 400, 200]
    assert [r.row for r in result.rows] == list(range(1000)) and len(store.links) == 1000


async def test_a_generated_code_that_is_taken_is_retried_with_a_fresh_one() -> None:
    store = FakeLinkStore()
    await importer(store, codes=["taken01"]).import_links([link("https://e.com/first")])
    result = await importer(store, codes=["taken01", "fresh01"]).import_links([link("https://e.com/second")])
    assert [(r.status, r.code) for r in result.rows] == [("created", "fresh01")]


async def test_only_errors_writes_nothing_and_waits_for_nothing() -> None:
    store = FakeLinkStore()
    result = await importer(store).import_links([InvalidInput("bad", code="url_invalid", field="url")])
    assert [r.status for r in result.rows] == ["error"] and result.visible and not store.links


def test_expires_at_is_checked_against_the_requests_now() -> None:
    soon = (NOW + timedelta(minutes=1)).isoformat()
    assert isinstance(command({"url": "https://e.com", "expires_at": soon}), CreateLink)
