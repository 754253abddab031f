"""platformkit.clickhouse: what the shared client puts on the wire (the HTTP interface's
parameters, credentials, gzip bodies) and how it reads answers and refusals. The same client runs
against a real ClickHouse 18.16 in tests/integration/aggregator and on current ClickHouse (chDB)
in tests/unit/test_current_clickhouse.py."""

import base64
import gzip

import httpx
import pytest
from platformkit.clickhouse import ClickHouseClient, ClickHouseConfig, ClickHouseError, gzip_body, parse_tab_separated

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, answer: httpx.Response) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answer


def client(recorder: Recorder, url: str = "http://ch.example:8123", **config: object) -> ClickHouseClient:
    options: dict[str, object] = {"url": url, "database": "shortlink", **config}
    return ClickHouseClient(ClickHouseConfig(**options), transport=httpx.MockTransport(recorder))  # type: ignore[arg-type]


async def test_a_statement_goes_in_the_body_with_the_database_and_the_urls_credentials() -> None:
    recorder = Recorder(httpx.Response(200, text="1\n"))
    async with client(recorder, "http://app:s3cr%40t@ch.example:8123") as ch:
        assert await ch.execute("SELECT 1", settings={"max_threads": 2}, query_id="q-1") == "1\n"
    [request] = recorder.requests
    assert request.method == "POST" and request.content == b"SELECT 1"
    assert dict(request.url.params) == {"database": "shortlink", "max_threads": "2", "query_id": "q-1"}
    assert request.url.host == "ch.example" and "s3cr" not in str(request.url)  # not in the URL (logs)
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"app:s3cr@t").decode()


async def test_an_insert_carries_its_statement_as_a_parameter_and_a_gzip_body() -> None:
    recorder = Recorder(httpx.Response(200, text=""))
    rows = b'{"a":1}\n{"a":2}\n'
    async with client(recorder, compress_answers=True) as ch:
        await ch.insert("INSERT INTO t (a) FORMAT JSONEachRow", gzip_body(rows), query_id="sink-1", gzipped=True)
    [request] = recorder.requests
    assert request.url.params["query"] == "INSERT INTO t (a) FORMAT JSONEachRow"
    assert request.url.params["query_id"] == "sink-1" and request.url.params["enable_http_compression"] == "1"
    assert request.headers["content-encoding"] == "gzip" and gzip.decompress(request.content) == rows


def test_gzip_level_0_frames_without_compressing_and_a_cut_body_is_refused() -> None:
    body = b"x" * 10_000
    framed = gzip_body(body)
    assert gzip.decompress(framed) == body and len(framed) > len(body)
    with pytest.raises(EOFError):
        gzip.decompress(framed[:-4])
    assert len(gzip_body(body, level=6)) < 100


async def test_rows_are_read_as_tab_separated_and_unescaped() -> None:
    recorder = Recorder(httpx.Response(200, text="a\\tb\t1\nline\\nbreak \\\\ \\' \\0\t2\n"))
    async with client(recorder) as ch:
        rows = await ch.rows("SELECT s, n FROM t")
    assert rows == [("a\tb", "1"), ("line\nbreak \\ ' \0", "2")]
    assert recorder.requests[0].content == b"SELECT s, n FROM t\nFORMAT TabSeparated"
    assert parse_tab_separated("") == [] and parse_tab_separated("\t\n") == [("", "")]


async def test_json_rows() -> None:
    recorder = Recorder(httpx.Response(200, text='{"n":"18446744073709551615","s":"x"}\n{"n":"1","s":"y"}\n'))
    async with client(recorder) as ch:
        assert await ch.json_rows("SELECT n, s FROM t") == [
            {"n": "18446744073709551615", "s": "x"},
            {"n": "1", "s": "y"},
        ]
    assert recorder.requests[0].content.endswith(b"\nFORMAT JSONEachRow")


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        # 18.16
        (
            "Code: 60, e.displayText() = DB::Exception: Table shortlink.nope doesn't exist., "
            "e.what() = DB::Exception\n",
            60,
        ),
        # current servers
        ("Code: 516. DB::Exception: app: Authentication failed. (AUTHENTICATION_FAILED) (version 24.8.4.13)\n", 516),
        ("Bad Gateway", None),
    ],
)
async def test_a_refusal_carries_the_status_and_clickhouses_code(answer: str, code: int | None) -> None:
    async with client(Recorder(httpx.Response(500 if code else 502, text=answer))) as ch:
        with pytest.raises(ClickHouseError) as refused:
            await ch.execute("SELECT * FROM nope")
    assert refused.value.code == code and refused.value.status == (500 if code else 502)
    assert answer.strip() in str(refused.value)


async def test_a_statement_can_name_another_database() -> None:
    recorder = Recorder(httpx.Response(200, text=""))
    async with client(recorder) as ch:
        await ch.execute("CREATE DATABASE IF NOT EXISTS shortlink", database="default")
    assert recorder.requests[0].url.params["database"] == "default"
