"""Bulk import (POST /api/v1/links/bulk): the request's rows and each row's outcome. Pure.

A request is JSON `{"links": [ {url, alias?, ...}, ... ]}` or CSV with a header row whose columns
are the same field names. Either way it becomes a list of rows, each a JSON-like dict that the
single create's validation takes as is (shorten.domain.commands.parse_create): a row is valid
exactly when `POST /api/v1/links` would accept it as a body. CSV cells are text, so they are
given their JSON types first (`csv_rows`): an empty cell is an absent field, redirect_type and
max_clicks become integers when they are digits, public_stats true/false (also 1/0, yes/no),
tags split on commas (a tag has none). A cell that does not convert is passed on as text, so
the rule of its field reports it with its usual code.

Request-level failures (the whole request is refused, nothing is written) have their own codes;
a row's failure is in that row's result and does not stop the others.
"""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shorten.domain.commands import CREATE_FIELDS
from shorten.domain.errors import InvalidInput, ShortenError

MAX_ROWS = 10_000


class TooManyRows(ShortenError):
    """More rows than one request may carry (413): split the file (`just import` does)."""

    code = "too_many_rows"


class MalformedCsv(ShortenError):
    """CSV that cannot be read: not UTF-8, a NUL byte, a quote never closed (400)."""

    code = "malformed_csv"


Row = dict[str, object]

_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def _too_many(rows: int) -> TooManyRows:
    return TooManyRows(f"{rows} rows; at most {MAX_ROWS:,} per request", field="links")


def json_rows(payload: object) -> list[object]:
    """The rows of a decoded JSON body `{"links": [...]}` (each row is checked later, alone)."""
    if not isinstance(payload, dict):
        raise InvalidInput('the request body must be a JSON object {"links": [...]}', code="body_not_object")
    for name in payload:
        if name != "links":
            shown = str(name)[:64]
            raise InvalidInput(f"unknown field {shown!r}; allowed: links", code="unknown_field", field=shown)
    rows = payload.get("links")
    if not isinstance(rows, list):
        raise InvalidInput("links must be a list of link objects", code="links_invalid", field="links")
    if not rows:
        raise InvalidInput("links is empty: nothing to import", code="links_empty", field="links")
    if len(rows) > MAX_ROWS:
        raise _too_many(len(rows))
    return rows


def csv_rows(body: bytes) -> list[object]:
    """The rows of a CSV body (header row first; UTF-8, a byte order mark is allowed)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedCsv(f"CSV is not UTF-8: {exc}"[:200]) from None
    # strict: a quote never closed is an error, not a row that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput("the CSV is empty: a header row is required", code="links_empty", field="links")
        columns = _columns(header)
        rows: list[object] = []
        for cells in reader:
            if not cells:  # a blank line (a line of empty cells is a row: its url is missing)
                continue
            if len(rows) == MAX_ROWS:
                raise _too_many(MAX_ROWS + 1 + sum(1 for cells in reader if cells))
            rows.append(_typed(columns, cells))
    except csv.Error as exc:
        raise MalformedCsv(f"CSV line {reader.line_num}: {exc}"[:200]) from None
    if not rows:
        raise InvalidInput("the CSV has a header but no rows", code="links_empty", field="links")
    return rows


def _columns(header: Sequence[str]) -> list[str]:
    columns = [name.strip() for name in header]
    for name in columns:
        if name not in CREATE_FIELDS:
            shown = name[:64]
            raise InvalidInput(
                f"unknown column {shown!r}; allowed: {', '.join(CREATE_FIELDS)}", code="unknown_field", field=shown
            )
    if len(set(columns)) != len(columns):
        raise InvalidInput("a column is named twice in the header", code="csv_header_invalid", field="links")
    if "url" not in columns:
        raise InvalidInput("the header has no url column", code="url_required", field="url")
    return columns


class _ExtraCells:
    """A row with more cells than the header has columns: refused by its row's check."""


def _typed(columns: Sequence[str], cells: Sequence[str]) -> object:
    if len(cells) > len(columns):
        return _ExtraCells()
    row: Row = {}
    for name, cell in zip(columns, cells, strict=False):  # missing trailing cells: absent fields
        if cell != "":
            row[name] = _cell(name, cell)
    return row


def _cell(name: str, cell: str) -> object:
    if name in ("redirect_type", "max_clicks"):
        stripped = cell.strip()
        return int(stripped) if stripped.isascii() and stripped.isdigit() else cell
    if name == "public_stats":
        word = cell.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else cell
    if name == "tags":
        return [tag.strip() for tag in cell.split(",")]
    return cell


def check_row_shape(row: object) -> None:
    """What only a row can get wrong (a JSON row that is not an object, a CSV line with more
    cells than the header); the rest is the single create's validation."""
    if isinstance(row, _ExtraCells):
        raise InvalidInput("the row has more cells than the header has columns", code="row_invalid")
    if not isinstance(row, dict):
        raise InvalidInput("a row must be a JSON object", code="row_invalid")


Status = Literal["created", "exists", "error"]


@dataclass(frozen=True, kw_only=True)
class RowError:
    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True, kw_only=True)
class RowResult:
    """One row's outcome, in input order: created (a new link), exists (its alias names a link of
    the same workspace and the same target: nothing written) or error (nothing written)."""

    row: int
    status: Status
    code: str | None = None
    error: RowError | None = None


def row_error(row: int, failure: ShortenError) -> RowResult:
    return RowResult(
        row=row, status="error", error=RowError(code=failure.code, message=failure.message, field=failure.field)
    )
