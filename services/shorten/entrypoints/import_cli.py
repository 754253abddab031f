"""`python -m shorten import links.csv` (`just import links.csv`): a CSV file into a workspace,
through the public API (POST /api/v1/links/bulk behind nginx), with a progress bar.

    just import links.csv [--workspace-key FILE] [--api URL] [--chunk-rows 1000] [--parallel 2]
                          [--failed FILE]

The file is CSV with a header row (url, alias, expires_at, redirect_type, max_clicks,
public_stats, tags: see services/shorten/README.md "Bulk import"); any number of rows, sent in
chunks of `--chunk-rows` (at most 10,000, the API's limit per request), `--parallel` of them in
flight (each answer waits until every redirect replica serves its links: a second chunk in
flight writes meanwhile). The key is read from a
file (default .local/api-key, the local stack's admin key; a secret on the command line would
be visible to every local user). A chunk refused by the rate limit (429, charged one write per
row) is sent again after its Retry-After: nothing of it was written. Any other refusal of a
whole chunk stops the import (chunks already in flight finish); rows not sent are listed as
failed with the refusal's code.

Prints the created / exists / error counts and writes the failed rows (the file's own cells,
then `line`, `error_code`, `error_message`) to `--failed` (default <file>.failed.csv). Exit
status 0 when every row was created or existed, 1 otherwise.
"""

import argparse
import asyncio
import csv
import io
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

MAX_ROWS_PER_REQUEST = 10_000
MAX_PARALLEL = 8
RATE_LIMIT_RETRIES = 10
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Chunk:
    lines: Sequence[int]  # the file's line number of each row
    rows: Sequence[Sequence[str]]


@dataclass
class Tally:
    counts: Counter[str]
    failed: list[tuple[Sequence[str], int, str, str]]  # cells, line, code, message


def read_file(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows with their line numbers (UTF-8, a BOM allowed)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader, [])
        rows = [(reader.line_num, cells) for cells in reader if cells]
    return header, rows


def chunks(rows: Sequence[tuple[int, list[str]]], size: int) -> list[Chunk]:
    return [
        Chunk(lines=[line for line, _ in part], rows=[cells for _, cells in part])
        for part in (rows[i : i + size] for i in range(0, len(rows), size))
    ]


def csv_body(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


async def send(client: httpx.AsyncClient, header: Sequence[str], chunk: Chunk, say: Any) -> httpx.Response:
    """POST one chunk; a 429 is waited out (Retry-After) and sent again, at most a few times."""
    body = csv_body(header, chunk.rows)
    for _ in range(RATE_LIMIT_RETRIES):
        response = await client.post("/api/v1/links/bulk", content=body, headers={"Content-Type": "text/csv"})
        if response.status_code != 429 or response.json()["error"]["code"] != "rate_limited":
            return response
        wait = int(response.headers.get("Retry-After", "1"))
        say(f"rate limited: waiting {wait}s")
        await asyncio.sleep(wait)
    return response


async def send_all(
    client: httpx.AsyncClient,
    header: Sequence[str],
    planned: Sequence[Chunk],
    *,
    parallel: int,
    say: Any,
    answered: Callable[[Chunk, httpx.Response], None],
) -> list[Chunk]:
    """Send the chunks in file order, `parallel` in flight, telling `answered` about each answer
    as it comes. After a chunk refused whole (not 200) nothing more is sent; returns the chunks
    not sent."""
    queue = iter(planned)
    not_sent: list[Chunk] = []
    refused = False

    async def sender() -> None:
        nonlocal refused
        for chunk in queue:  # one iterator shared by the senders: each chunk is taken once
            if refused:
                not_sent.append(chunk)
                continue
            response = await send(client, header, chunk, say)
            answered(chunk, response)
            if response.status_code != 200:
                refused = True

    await asyncio.gather(*(sender() for _ in range(parallel)))
    return sorted(not_sent, key=lambda c: c.lines[0])


def record(tally: Tally, chunk: Chunk, response: httpx.Response) -> None:
    if response.status_code != 200:
        try:
            error = response.json()["error"]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            code, message = f"http_{response.status_code}", response.text[:200]
        tally.counts["error"] += len(chunk.rows)
        tally.failed += [(cells, line, code, message) for cells, line in zip(chunk.rows, chunk.lines, strict=True)]
        return
    for result in response.json()["results"]:
        tally.counts[result["status"]] += 1
        if result["status"] == "error":
            i = result["row"]
            tally.failed.append((chunk.rows[i], chunk.lines[i], result["error"]["code"], result["error"]["message"]))


def write_failed(path: Path, header: Sequence[str], failed: Sequence[tuple[Sequence[str], int, str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, "line", "error_code", "error_message"])
        for cells, line, code, message in sorted(failed, key=lambda f: f[1]):
            writer.writerow([*cells, *([""] * (len(header) - len(cells))), line, code, message])


async def run(args: argparse.Namespace, api_key: str) -> tuple[list[str], Tally]:
    header, rows = read_file(args.file)
    tally = Tally(Counter(), [])
    console = Console(stderr=True)
    auth = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=args.api, headers=auth, timeout=REQUEST_TIMEOUT_S) as client:
        with Progress(
            TextColumn("[bold]import"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        ) as progress:
            task = progress.add_task("", total=len(rows))

            def answered(chunk: Chunk, response: httpx.Response) -> None:
                progress.update(task, description="")
                record(tally, chunk, response)
                progress.advance(task, len(chunk.rows))
                if response.status_code != 200:
                    console.print(f"chunk refused: HTTP {response.status_code} {response.text[:200]}; stopping")

            not_sent = await send_all(
                client,
                header,
                chunks(rows, args.chunk_rows),
                parallel=args.parallel,
                say=lambda msg: progress.update(task, description=msg),
                answered=answered,
            )
            for later in not_sent:
                tally.counts["error"] += len(later.rows)
                tally.failed += [
                    (cells, line, "not_sent", "not sent: an earlier chunk was refused")
                    for cells, line in zip(later.rows, later.lines, strict=True)
                ]
    return header, tally


def _parser() -> argparse.ArgumentParser:
    port = os.environ.get("PUBLIC_HTTP_PORT", "8080")
    parser = argparse.ArgumentParser(
        prog="just import", description="Import links from a CSV file (a header row first)."
    )
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--workspace-key",
        type=Path,
        default=Path(".local/api-key"),
        help="a file holding the API key (links:write) of the workspace to import into (default: .local/api-key)",
    )
    parser.add_argument(
        "--api",
        default=os.environ.get("SHORTEN_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}"),
        help="the public entry point (default: SHORTEN_PUBLIC_BASE_URL)",
    )
    parser.add_argument("--chunk-rows", type=int, default=1000, help="rows per request (1-10000; default 1000)")
    parser.add_argument("--parallel", type=int, default=2, help=f"chunks in flight (1-{MAX_PARALLEL}; default 2)")
    parser.add_argument("--failed", type=Path, help="where the failed rows go (default: <file>.failed.csv)")
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.chunk_rows <= MAX_ROWS_PER_REQUEST:
        print(f"error: --chunk-rows must be 1-{MAX_ROWS_PER_REQUEST}", file=sys.stderr)
        return 2
    if not 1 <= args.parallel <= MAX_PARALLEL:
        print(f"error: --parallel must be 1-{MAX_PARALLEL}", file=sys.stderr)
        return 2
    try:
        api_key = args.workspace_key.read_text().strip()
        header, tally = asyncio.run(run(args, api_key))
    except (OSError, csv.Error, UnicodeDecodeError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed_path = args.failed or args.file.with_name(args.file.name + ".failed.csv")
    if tally.failed:
        write_failed(failed_path, header, tally.failed)
    counts = tally.counts
    print(f"created {counts['created']}, exists {counts['exists']}, error {counts['error']}")
    if tally.failed:
        print(f"failed rows with their error codes: {failed_path}")
    return 1 if tally.failed else 0
