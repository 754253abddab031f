"""Use case: import many links at once (POST /api/v1/links/bulk, `just import`).

Rows arrive validated (each exactly as the single create validates its body) or as their
validation error. The valid ones are written in chunks of `chunk_rows`, each chunk ONE
transaction of the store's group-commit statement (every link with its `LinkCreated` in the
outbox, so the relay publishes each to `links` and the redirect replicas serve it). Per row:

- created: a new link (a generated code that happened to be taken is retried with a fresh
  one, as in the single create);
- exists: its alias names a live link of the SAME workspace with the SAME (normalised) target:
  nothing is written, so sending a file again creates nothing new for its alias rows;
- error: its validation error, or `alias_taken` when the alias is used by another target,
  another workspace or a deleted link (exactly the single create's 409).

Read your writes: after the last chunk the import waits ONCE (bounded) until every replica
serves every created link (visibility.wait_all: one position per partition), so each short URL
of the answer redirects the moment the answer arrives; `visible` says whether that was seen.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shorten.domain.bulk import RowResult, row_error
from shorten.domain.codes import DEFAULT_LENGTH, generate_code
from shorten.domain.errors import AliasTaken, CodeSpaceExhausted, ShortenError
from shorten.domain.model import CreateLink, Link, link_created, new_link
from shorten.ports import LinkStore, WriteVisibility
from shorten.service_layer.link_service import MAX_CODE_ATTEMPTS, new_event_id, utcnow
from shorten.service_layer.visibility import NoWait

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    rows: Sequence[RowResult]  # in input order
    visible: bool  # every created link was seen served by every live replica before answering


class LinkImporter:
    def __init__(
        self,
        *,
        store: LinkStore,
        visibility: WriteVisibility | None = None,
        chunk_rows: int = 1000,
        visible_timeout: float = 10.0,
        code_length: int = DEFAULT_LENGTH,
        clock: Callable[[], datetime] = utcnow,
        event_ids: Callable[[], str] = new_event_id,
        codes: Callable[[int], str] = generate_code,
    ) -> None:
        self._store = store
        self._visibility: WriteVisibility = visibility if visibility is not None else NoWait()
        self._chunk_rows = chunk_rows
        self._visible_timeout = visible_timeout
        self._code_length = code_length
        self._clock = clock
        self._event_ids = event_ids
        self._codes = codes

    async def import_links(self, rows: Sequence[CreateLink | ShortenError]) -> ImportResult:
        results: list[RowResult | None] = [None] * len(rows)
        pending: list[tuple[int, CreateLink]] = []
        for i, row in enumerate(rows):
            if isinstance(row, CreateLink):
                pending.append((i, row))
            else:
                results[i] = row_error(i, row)
        written: list[str] = []  # event ids of the links created
        for _ in range(MAX_CODE_ATTEMPTS):
            if not pending:
                break
            pending = await self._write(pending, results, written)
        for i, _cmd in pending:
            results[i] = row_error(i, CodeSpaceExhausted(f"no free code after {MAX_CODE_ATTEMPTS} attempts"))
        visible = await self._visibility.wait_all(written, timeout=self._visible_timeout) if written else True
        return ImportResult(rows=[r for r in results if r is not None], visible=visible)

    async def _write(
        self, pending: Sequence[tuple[int, CreateLink]], results: list[RowResult | None], written: list[str]
    ) -> list[tuple[int, CreateLink]]:
        """One pass over `pending` in chunks; the rows whose generated code was taken (to retry)."""
        retry: list[tuple[int, CreateLink]] = []
        taken: list[tuple[int, Link]] = []  # alias rows whose alias exists
        for start in range(0, len(pending), self._chunk_rows):
            chunk = pending[start : start + self._chunk_rows]
            made = []
            for _, cmd in chunk:
                code = cmd.alias if cmd.alias is not None else self._codes(self._code_length)
                link = new_link(cmd, code=code, now=self._clock())
                made.append((link, link_created(link, event_id=self._event_ids())))
            inserted = await self._store.insert_many(made)
            for (i, cmd), (link, event), ok in zip(chunk, made, inserted, strict=True):
                if ok:
                    results[i] = RowResult(row=i, status="created", code=link.code)
                    written.append(event.event_id)
                elif cmd.alias is not None:
                    taken.append((i, link))
                else:
                    log.warning("generated code collided, retrying with a new one")
                    retry.append((i, cmd))
        await self._resolve_taken(taken, results)
        return retry

    async def _resolve_taken(self, taken: Sequence[tuple[int, Link]], results: list[RowResult | None]) -> None:
        """exists (same workspace, same target, not deleted) or alias_taken, as the single create."""
        if not taken:
            return
        workspace = taken[0][1].workspace  # a request's rows are all the caller's workspace
        found = {
            link.code: link for link in await self._store.find([link.code for _, link in taken], workspace=workspace)
        }
        for i, wanted in taken:
            have = found.get(wanted.code)
            if have is not None and not have.is_deleted and have.url == wanted.url:
                results[i] = RowResult(row=i, status="exists", code=have.code)
            else:
                results[i] = row_error(i, AliasTaken(f"alias {wanted.code!r} is taken", field="alias"))
