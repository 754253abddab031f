"""Bulk import through the public entry point (nginx): POST /api/v1/links/bulk and `just import`.

A fresh workspace per test (its own key, its own rate-limit window, its own links to count).
"""

import asyncio
import csv
import io
import json
import secrets
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from contracts.keys import Scope

from tests.conftest import ROOT, public_url, wait_until_async
from tests.support.keys import IssuedKey, issue_key

pytestmark = pytest.mark.e2e

COLUMNS = ["url", "alias", "expires_at", "redirect_type", "max_clicks", "public_stats", "tags"]


@dataclass(frozen=True)
class Expected:
    status: str  # created | exists | error
    code: str | None = None  # the alias (None: generated)
    error: str | None = None
    url: str | None = None  # the target the link redirects to


# Bad rows and the single create's code each must get.
BAD_ROWS: list[tuple[dict[str, str], str]] = [
    ({"url": "ftp://files.example/x"}, "url_scheme_not_allowed"),
    ({"url": "https://bulk.example/r", "alias": "healthz"}, "alias_reserved"),
    ({"url": "https://bulk.example/r", "alias": "no spaces"}, "alias_invalid"),
    ({"url": "https://bulk.example/r", "max_clicks": "0"}, "max_clicks_invalid"),
    ({"url": "https://bulk.example/r", "redirect_type": "307"}, "redirect_type_invalid"),
    ({"url": "https://bulk.example/r", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at_in_past"),
    ({"url": "https://bulk.example/r", "public_stats": "maybe"}, "public_stats_invalid"),
    ({"url": "https://user:pw@bulk.example/r"}, "url_has_credentials"),
    ({"url": f"{public_url()}/loop"}, "url_self_reference"),
    ({"url": ""}, "url_required"),
]


def build_rows(token: str) -> tuple[list[dict[str, str]], list[Expected]]:
    """1,000 rows: 940 with an alias, 10 without, 40 bad ones, 5 repeats of an alias with its
    own target (exists) and 5 with another target (alias_taken), interleaved."""
    rows: list[dict[str, str]] = []
    expected: list[Expected] = []
    for n in range(950):
        url = f"https://bulk.example/{token}/{n}"
        if n % 95 == 94:  # 10 rows without alias
            rows.append({"url": url, "tags": "bulk,e2e"})
            expected.append(Expected("created", url=url))
        else:
            alias = f"{token}-{n}"
            rows.append({"url": url, "alias": alias, "redirect_type": "301" if n % 2 else "302", "max_clicks": "99"})
            expected.append(Expected("created", alias, url=url))
        if n % 23 == 22 and len([e for e in expected if e.error]) < 40:  # 40 bad rows spread out
            bad, code = BAD_ROWS[len([e for e in expected if e.error]) % len(BAD_ROWS)]
            rows.append(bad)
            expected.append(Expected("error", error=code))
    for n in range(10):  # repeats of earlier aliases: same target -> exists, another -> taken
        alias, url = f"{token}-{n * 7}", f"https://bulk.example/{token}/{n * 7}"
        if n % 2:
            rows.append({"url": url + "/other", "alias": alias})
            expected.append(Expected("error", error="alias_taken"))
        else:
            rows.append({"url": url, "alias": alias})
            expected.append(Expected("exists", alias, url=url))
    assert len(rows) == 1000 and sum(1 for e in expected if e.status == "error") == 45
    return rows, expected


def as_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=public_url(), timeout=120, limits=httpx.Limits(max_connections=20)) as c:
        yield c


async def accepted_key(scopes: tuple[Scope, ...]) -> IssuedKey:
    """A new key of a new workspace, once every shorten process behind nginx accepts it (each
    follows the `keys` topic itself; on a loaded machine one may be a moment behind)."""
    key = await issue_key(f"bulk-{secrets.token_hex(4)}", scopes)
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as client:

        async def accepted_twice() -> bool:  # nginx alternates between the processes
            answers = [(await client.get("/api/v1/links", headers=key.headers)).status_code for _ in range(4)]
            return all(status != 401 for status in answers)

        await wait_until_async(accepted_twice, timeout=30, what="the new key accepted by every shorten process")
    return key


@pytest.fixture
async def workspace_key() -> IssuedKey:
    return await accepted_key(("links:write",))


def outcome(results: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(r["row"], r["status"], r["error"]["code"] if isinstance(r["error"], dict) else None) for r in results]


async def count_links(public: httpx.AsyncClient, key: IssuedKey) -> int:
    total, cursor = 0, None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = (await public.get("/api/v1/links", params=params, headers=key.headers)).json()
        total += len(page["links"])
        if (cursor := page["next_cursor"]) is None:
            return total


async def redirects(public: httpx.AsyncClient, pairs: list[tuple[str, str]]) -> list[tuple[str, int, str | None]]:
    """Each code's answer through nginx, right after the import answered (no waiting)."""
    gate = asyncio.Semaphore(16)

    async def one(code: str) -> tuple[str, int, str | None]:
        async with gate:
            response = await public.get(f"/{code}")
        return code, response.status_code, response.headers.get("location")

    return list(await asyncio.gather(*(one(code) for code, _ in pairs)))


async def test_a_thousand_row_csv_gets_exact_results_and_every_link_redirects_at_once(
    public: httpx.AsyncClient, workspace_key: IssuedKey
) -> None:
    token = secrets.token_hex(3)
    rows, expected = build_rows(token)
    body = as_csv(rows)
    answer = await public.post(
        "/api/v1/links/bulk", content=body, headers={**workspace_key.headers, "Content-Type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert outcome(result["results"]) == [(i, e.status, e.error) for i, e in enumerate(expected)]
    assert (result["created"], result["exists"], result["errors"]) == (950, 5, 45)
    assert result["visible"] is True
    for r, e in zip(result["results"], expected, strict=True):
        if e.code is not None:
            assert r["code"] == e.code and r["short_url"] == f"{public_url()}/{e.code}"

    # Read your writes: every created link redirects the moment the answer arrived.
    created = [(r["code"], e.url) for r, e in zip(result["results"], expected, strict=True) if r["status"] == "created"]
    answers = await redirects(public, created)
    wrong = [
        (code, status, location)
        for (code, status, location), (_, url) in zip(answers, created, strict=True)
        if status not in (301, 302) or location != url
    ]
    assert wrong == []
    assert await count_links(public, workspace_key) == 950

    # The same file again: alias rows exist (same codes), nothing new for them; the rows without
    # alias are new links (they carry nothing that says they were imported before).
    again = (
        await public.post(
            "/api/v1/links/bulk", content=body, headers={**workspace_key.headers, "Content-Type": "text/csv"}
        )
    ).json()
    statuses = [
        "created" if e.status == "created" and e.code is None else "exists" if e.status != "error" else "error"
        for e in expected
    ]
    assert [r["status"] for r in again["results"]] == statuses
    assert [r["code"] for r, e in zip(again["results"], expected, strict=True) if e.code] == [
        e.code for e in expected if e.code
    ]
    assert (again["created"], again["exists"], again["errors"]) == (10, 945, 45)
    assert await count_links(public, workspace_key) == 960


async def test_json_rows_get_the_same_results(public: httpx.AsyncClient, workspace_key: IssuedKey) -> None:
    token = secrets.token_hex(3)
    links = [
        {"url": f"https://bulk.example/{token}/json", "alias": f"{token}-json", "tags": ["a", "b"]},
        {"url": "https://bulk.example/no-alias", "expires_at": "2099-01-01T00:00:00Z", "public_stats": True},
        "not an object",
        {"url": "https://bulk.example/x", "unknown": 1},
    ]
    answer = await public.post("/api/v1/links/bulk", json={"links": links}, headers=workspace_key.headers)
    assert answer.status_code == 200, answer.text
    assert outcome(answer.json()["results"]) == [
        (0, "created", None),
        (1, "created", None),
        (2, "error", "row_invalid"),
        (3, "error", "unknown_field"),
    ]
    link = (await public.get(f"/api/v1/links/{token}-json", headers=workspace_key.headers)).json()
    assert link["tags"] == ["a", "b"] and link["workspace"] == workspace_key.workspace


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (json.dumps({"links": [{"url": "https://e.com"}] * 10_001}).encode(), "application/json", 413, "too_many_rows"),
        (b"url\n" + b"https://bulk.example/x\n" * 10_001, "text/csv", 413, "too_many_rows"),
        # over SHORTEN_BULK_MAX_BODY_BYTES (16 MiB): the service's own 413, and past nginx's 17m nginx's
        (b"url\nhttps://bulk.example/" + b"x" * (16 * 1024 * 1024) + b"\n", "text/csv", 413, "payload_too_large"),
        (b"url\nhttps://bulk.example/" + b"x" * (18 * 1024 * 1024) + b"\n", "text/csv", 413, "payload_too_large"),
        (b'url\n"https://bulk.example/never closed\n', "text/csv", 400, "malformed_csv"),
        (b"{", "application/json", 400, "malformed_json"),
        (b"url,colour\nhttps://e.com,red\n", "text/csv", 422, "unknown_field"),
        (b'{"links": []}', "application/json", 422, "links_empty"),
        (b"url\nhttps://e.com\n", "text/plain", 415, "unsupported_media_type"),
    ],
    ids=["rows-json", "rows-csv", "bytes", "bytes-nginx", "csv-quote", "json", "column", "empty", "media-type"],
)
async def test_a_request_refused_whole_has_its_code_and_writes_nothing(
    public: httpx.AsyncClient, workspace_key: IssuedKey, content: bytes, content_type: str, status: int, code: str
) -> None:
    answer = await public.post(
        "/api/v1/links/bulk", content=content, headers={**workspace_key.headers, "Content-Type": content_type}
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text[:300]
    assert await count_links(public, workspace_key) == 0


async def test_a_key_without_links_write_is_refused(public: httpx.AsyncClient) -> None:
    reader = await accepted_key(("links:read",))
    answer = await public.post("/api/v1/links/bulk", json={"links": [{"url": "https://e.com"}]}, headers=reader.headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "scope_missing")


def test_just_import_reports_counts_and_writes_the_failed_rows(tmp_path: Path, workspace_key: IssuedKey) -> None:
    token = secrets.token_hex(3)
    source = tmp_path / "links.csv"
    source.write_text(
        "url,alias,tags\n"
        f'https://bulk.example/{token}/1,{token}-1,"cli,e2e"\n'
        "\n"
        "ftp://bulk.example/bad,,\n"
        f"https://bulk.example/{token}/3,,\n"
        f"https://bulk.example/{token}/1,{token}-1,\n"
        f"https://bulk.example/{token}/other,{token}-1,\n"
    )
    key_file = tmp_path / "key"
    key_file.write_text(workspace_key.secret)
    key_file.chmod(0o600)
    done = subprocess.run(
        [str(ROOT / ".venv/bin/just"), "import", str(source), "--workspace-key", str(key_file), "--chunk-rows", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # some rows failed
    assert "created 2, exists 1, error 2" in done.stdout, done.stdout
    with (tmp_path / "links.csv.failed.csv").open(newline="") as handle:
        failed = list(csv.DictReader(handle))
    assert [(f["url"], f["line"], f["error_code"]) for f in failed] == [
        ("ftp://bulk.example/bad", "4", "url_scheme_not_allowed"),
        (f"https://bulk.example/{token}/other", "7", "alias_taken"),
    ]
