"""One async ClickHouse client for every service: the HTTP interface over httpx (one keep-alive
connection pool per process), valid on 18.16 and current servers.

- `execute(sql)`: one statement in the request body, its answer as text (DDL, ALTER, a SELECT
  whose answer the caller reads itself);
- `rows(sql)`: a SELECT read as TabSeparated, each row a tuple of unescaped strings (the caller
  converts: ClickHouse's text is exact for every type, and a string costs nothing to make);
- `json_rows(sql)`: a SELECT read as JSONEachRow (64-bit integers arrive quoted, as strings);
- `insert(statement, body)`: `INSERT ... FORMAT <fmt>` in the `query` parameter, the rows in the
  body, optionally gzip-encoded (`gzip_body`); a fixed `query_id` makes the server itself refuse a
  second copy while an earlier one still runs.

Parameters are rendered into the SQL by the caller (18.16 has no server-side query parameters;
analytics compiles its statements with clickhouse-sqlalchemy's dialect). Settings go as URL
parameters. Credentials come from the URL's user info (HTTP basic auth). A refusal raises
`ClickHouseError` carrying the HTTP status and ClickHouse's exception code (`Code: N` in the
answer on every version); a transport failure raises httpx's own error.
"""

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpx
import msgspec

_CODE = re.compile(r"Code: (\d+)")
# TabSeparated escapes, as ClickHouse writes them.
_TSV_UNESCAPES = {
    "\\\\": "\\",
    "\\t": "\t",
    "\\n": "\n",
    "\\r": "\r",
    "\\0": "\0",
    "\\'": "'",
    "\\b": "\b",
    "\\f": "\f",
}
_TSV_ESCAPE = re.compile(r"\\.")
_JSON_LINES = msgspec.json.Decoder()


class ClickHouseError(RuntimeError):
    """The server refused a statement: `status` (HTTP), `code` (ClickHouse's exception code, e.g.
    60 = unknown table, 394 = query cancelled; None if the answer had none) and its message."""

    def __init__(self, status: int, message: str) -> None:
        found = _CODE.search(message)
        self.status = status
        self.code = int(found.group(1)) if found else None
        self.message = message
        super().__init__(f"ClickHouse {status}: {message}")


@dataclass(frozen=True, kw_only=True)
class ClickHouseConfig:
    url: str  # http(s)://[user[:password]@]host:port
    database: str
    timeout_s: float = 30.0  # per request: connect, each read and write, waiting for a connection
    max_connections: int = 20  # concurrent requests; more wait for a free connection
    compress_answers: bool = False  # ask the server to gzip its answers (remote servers)


def gzip_body(body: bytes, *, level: int = 0) -> bytes:
    """`body` gzip-encoded; level 0 (the default) is framing without compression: ~1 us a row, and
    a body cut anywhere fails its CRC or length, so the server inserts nothing of it."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    return packer.compress(body) + packer.flush()


def _unescape(field: str) -> str:
    return _TSV_ESCAPE.sub(lambda m: _TSV_UNESCAPES.get(m.group(0), m.group(0)[1]), field) if "\\" in field else field


def parse_tab_separated(text: str) -> list[tuple[str, ...]]:
    """ClickHouse's TabSeparated answer as rows of unescaped strings."""
    rows = []
    for line in text.split("\n"):
        if line:
            fields = line.split("\t")
            rows.append(tuple(map(_unescape, fields)) if "\\" in line else tuple(fields))
    return rows


class ClickHouseClient:
    def __init__(self, config: ClickHouseConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        url = httpx.URL(config.url)
        auth = httpx.BasicAuth(url.username, url.password) if url.username else None
        self._database = config.database
        self._base_params: dict[str, str] = {"database": config.database}
        if config.compress_answers:
            self._base_params["enable_http_compression"] = "1"
        self._http = httpx.AsyncClient(
            base_url=url.copy_with(username=None, password=None),
            auth=auth,
            timeout=config.timeout_s,
            limits=httpx.Limits(
                max_connections=config.max_connections, max_keepalive_connections=config.max_connections
            ),
            transport=transport,
        )

    @property
    def database(self) -> str:
        return self._database

    def _params(
        self, settings: Mapping[str, Any] | None, query_id: str | None, database: str | None = None
    ) -> dict[str, str]:
        if not settings and query_id is None and database is None:
            return self._base_params
        params = {**self._base_params, **{k: str(v) for k, v in (settings or {}).items()}}
        if query_id is not None:
            params["query_id"] = query_id
        if database is not None:
            params["database"] = database
        return params

    async def execute(
        self,
        sql: str,
        *,
        settings: Mapping[str, Any] | None = None,
        query_id: str | None = None,
        database: str | None = None,
    ) -> str:
        """Run one statement (in `database`, default the config's); its answer as text."""
        params = self._params(settings, query_id, database)
        response = await self._http.post("/", params=params, content=sql.encode())
        if response.status_code != 200:
            raise ClickHouseError(response.status_code, response.text[:1000])
        return response.text

    async def rows(self, sql: str, *, settings: Mapping[str, Any] | None = None) -> list[tuple[str, ...]]:
        """A SELECT's rows, read as TabSeparated (unescaped strings)."""
        return parse_tab_separated(await self.execute(f"{sql}\nFORMAT TabSeparated", settings=settings))

    async def json_rows(self, sql: str, *, settings: Mapping[str, Any] | None = None) -> list[Any]:
        """A SELECT's rows, read as JSONEachRow (one dict per row)."""
        text = await self.execute(f"{sql}\nFORMAT JSONEachRow", settings=settings)
        return [_JSON_LINES.decode(line) for line in text.splitlines() if line]

    async def insert(
        self,
        statement: str,
        body: bytes,
        *,
        query_id: str | None = None,
        gzipped: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """`statement` (INSERT INTO t (cols) FORMAT fmt) with its rows in `body` (gzip-encoded
        with `gzip_body` when `gzipped`)."""
        params = {**self._params(settings, query_id), "query": statement}
        headers = {"Content-Encoding": "gzip"} if gzipped else None
        response = await self._http.post("/", params=params, content=body, headers=headers)
        if response.status_code != 200:
            raise ClickHouseError(response.status_code, response.text[:1000])

    async def ping(self) -> None:
        await self.execute("SELECT 1")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
