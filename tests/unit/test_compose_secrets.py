"""The compose stack's secrets (`python -m composectl secrets`, compose/composectl/secrets.py):
made once, owner-only, kept across starts, never printed; and what it writes works: Redis
refuses clients without the password (and the replica links with it), ClickHouse refuses the
passwordless `default` while the services' clients and the healthcheck's client get in, and
the services' settings read the URLs with credentials through <NAME>_FILE."""

import asyncio
import importlib
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

SOURCE_SECRETS = {
    ("app", "api-key"),
    ("app", "visitor-key-secret"),
    ("postgres", "password"),
    ("redis", "password"),
    ("clickhouse", "password"),
    ("grafana", "admin-password"),
    ("grafana", "secret-key"),
}
DERIVED = {
    ("app", "postgres-dsn"),
    ("app", "redis-url"),
    ("app", "redis-replica-url"),
    ("app", "clickhouse-url"),
    ("redis", "redis.conf"),
    ("clickhouse", "users.xml"),
    ("clickhouse", "client.xml"),
}


@pytest.fixture
def composectl_secrets(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "compose"))
    return importlib.import_module("composectl.secrets")


def read(root: Path, consumer: str, name: str) -> str:
    return (root / consumer / name).read_text().strip()


def test_secrets_are_generated_once_owner_only_and_never_printed(
    composectl_secrets: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "secrets"
    composectl_secrets.ensure(root)
    values = {item: read(root, *item) for item in SOURCE_SECRETS}
    derived = {item: read(root, *item) for item in DERIVED}

    assert values[("app", "api-key")].startswith("sk_compose_")
    assert all(len(v) >= 32 for v in values.values())
    assert len(set(values.values())) == len(values)  # every secret its own
    assert stat.S_IMODE(root.stat().st_mode) == 0o711  # consumers pass through, list nothing
    for consumer, account in composectl_secrets.ACCOUNTS.items():
        directory = root / consumer
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        for path in [directory, *directory.iterdir()]:
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
            if os.geteuid() == 0:  # as in the container: each directory is its consumer's
                assert (path.stat().st_uid, path.stat().st_gid) == (account.uid, account.gid), path
    assert {(p.parent.name, p.name) for p in root.glob("*/*")} == SOURCE_SECRETS | DERIVED  # no leftovers

    composectl_secrets.ensure(root)  # a second start keeps every secret and derives the same
    assert {item: read(root, *item) for item in SOURCE_SECRETS} == values
    assert {item: read(root, *item) for item in DERIVED} == derived

    printed = capsys.readouterr()
    for value in values.values():
        assert value not in printed.out and value not in printed.err
    assert "generated" in printed.out  # it does say which files it made


def test_the_command_the_secrets_service_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "compose"))
    main = importlib.import_module("composectl.__main__").main
    assert main(["secrets", "--dir", str(tmp_path / "secrets")]) == 0
    assert {(p.parent.name, p.name) for p in (tmp_path / "secrets").glob("*/*")} == SOURCE_SECRETS | DERIVED


def test_a_missing_or_empty_secret_is_generated_and_the_others_kept(
    composectl_secrets: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "secrets"
    composectl_secrets.ensure(root)
    before = {item: read(root, *item) for item in SOURCE_SECRETS}
    (root / "redis" / "password").write_text("\n")
    (root / "grafana" / "secret-key").unlink()
    composectl_secrets.ensure(root)
    after = {item: read(root, *item) for item in SOURCE_SECRETS}
    changed = {item for item in SOURCE_SECRETS if after[item] != before[item]}
    assert changed == {("redis", "password"), ("grafana", "secret-key")}
    assert all(after.values())
    # What derives from a new password follows it.
    assert f":{after[('redis', 'password')]}@" in read(root, "app", "redis-url")
    assert f"requirepass {after[('redis', 'password')]}" in read(root, "redis", "redis.conf")


def test_the_services_read_urls_with_credentials_from_the_files(
    composectl_secrets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redirect.settings import RedirectSettings
    from shorten.settings import ShortenSettings

    root = tmp_path / "secrets"
    composectl_secrets.ensure(root)
    files = {
        "POSTGRES_DSN": "postgres-dsn",
        "REDIS_URL": "redis-url",
        "REDIS_REPLICA_URL": "redis-replica-url",
        "CLICKHOUSE_URL": "clickhouse-url",
        "REDIRECT_VISITOR_KEY_SECRET": "visitor-key-secret",
    }
    for name, file in files.items():
        monkeypatch.delenv(name, raising=False)  # a variable set directly would win over the file
        monkeypatch.setenv(f"{name}_FILE", str(root / "app" / file))
    settings = importlib.import_module("composectl.settings").ComposeSettings()
    shorten, redirect = ShortenSettings(), RedirectSettings()

    postgres, redis_pw, clickhouse = (read(root, c, "password") for c in ("postgres", "redis", "clickhouse"))
    assert settings.postgres_dsn_asyncpg() == f"postgresql://shortlink:{postgres}@postgres:5432/shortlink"
    assert settings.redis_url == redirect.redis_url == f"redis://:{redis_pw}@redis:6379/0"
    assert redirect.redis_replica_url == f"redis://:{redis_pw}@redis-replica:6379/0"
    assert settings.clickhouse_url == f"http://default:{clickhouse}@clickhouse:8123"
    assert shorten.postgres_dsn.get_secret_value() == read(root, "app", "postgres-dsn")
    assert redirect.visitor_secret() == read(root, "app", "visitor-key-secret").encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def wait_until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll `check` until it returns a truthy value without raising; fail after `timeout` s."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout}s (last error: {last!r})")


@contextmanager
def running(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_server(conf: Path, port: int, tmp: Path, *extra: str) -> list[str]:
    # The generated config first, as in docker-compose.yml; the test's own options after it
    # (loopback only, its own port and directory, nothing persisted, no wait at SIGTERM).
    return [
        shutil.which("redis-server") or "redis-server",
        str(conf),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp),
        "--save",
        "",
        "--appendonly",
        "no",
        "--shutdown-on-sigterm",
        "now",
        *extra,
    ]


async def services_redis_clients_get_in(url: str) -> bool:
    """shorten's rate limiter and redirect's link store connect with the URL's password."""
    from limits import parse
    from platformkit.ratelimit import RedisRateLimiter
    from redirect.adapters.redis_cache import connect

    limiter = RedisRateLimiter(redis_url=url, limit=parse("5/minute"), namespace="compose-secrets-test")
    links = connect(url)
    try:
        await limiter.ping()
        verdict = await limiter.hit("key")
        return verdict.allowed and bool(await links.ping()) and bool(await links.keys("compose-secrets-test:*"))
    finally:
        await limiter.aclose()
        await links.aclose()


def test_redis_from_the_generated_config_requires_the_password_and_the_replica_links_with_it(
    composectl_secrets: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "secrets"
    composectl_secrets.ensure(root)
    conf, password = root / "redis" / "redis.conf", read(root, "redis", "password")
    primary_port, replica_port = free_port(), free_port()
    (tmp_path / "primary").mkdir()
    (tmp_path / "replica").mkdir()
    # The primary sends its first snapshot at once (not after the default 5 s batching delay).
    primary_argv = redis_server(conf, primary_port, tmp_path / "primary", "--repl-diskless-sync-delay", "0")
    with (
        running(primary_argv, tmp_path / "primary.log"),
        running(
            redis_server(conf, replica_port, tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary_port)),
            tmp_path / "replica.log",
        ),
    ):
        # No retries: a refused AUTH must fail at once, not after redis-py's backoff.
        anonymous = redis.Redis(port=primary_port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        wait_until(lambda: accepts(primary_port), timeout=10, what="redis-server listening")
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=primary_port, password="wrong", socket_timeout=2, retry=Retry(NoBackoff(), 0)).ping()
        url = read(root, "app", "redis-url").replace("redis:6379", f"127.0.0.1:{primary_port}")
        primary = redis.Redis.from_url(url)
        assert primary.ping()
        assert primary.config_get("protected-mode") == {"protected-mode": "yes"}
        primary.set("compose-secrets-test", "1")
        assert asyncio.run(services_redis_clients_get_in(url))
        replica = redis.Redis(port=replica_port, password=password, socket_timeout=2)
        wait_until(
            lambda: replica.info("replication").get("master_link_status") == "up",
            timeout=15,
            what="the replica linked to its primary with masterauth",
        )
        assert wait_until(lambda: replica.get("compose-secrets-test"), timeout=5, what="replicated key") == b"1"


def clickhouse_config(tmp: Path, users: Path, http_port: int, tcp_port: int) -> Path:
    """A minimal server config whose users are the generated users.xml (Debian's ClickHouse:
    `users_config`; the compose image's current ClickHouse names the same file through
    compose/clickhouse/users-from-secrets.xml)."""
    path = tmp / "config.xml"
    path.write_text(f"""<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{tmp}/data/</path>
    <tmp_path>{tmp}/data/tmp/</tmp_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>5368709</mark_cache_size>
</yandex>
""")
    return path


def test_clickhouse_with_the_generated_users_refuses_no_password_and_admits_our_clients(
    composectl_secrets: ModuleType, tmp_path: Path
) -> None:
    from aggregator.adapters.clickhouse import ClickHouse, build_client
    from analytics.adapters import clickhouse as analytics_clickhouse
    from platformkit.clickhouse import ClickHouseError

    root = tmp_path / "secrets"
    composectl_secrets.ensure(root)
    users = root / "clickhouse" / "users.xml"
    password = read(root, "clickhouse", "password")
    assert password not in users.read_text()  # the server's file holds the SHA-256 only
    http_port, tcp_port = free_port(), free_port()
    config = clickhouse_config(tmp_path, users, http_port, tcp_port)
    server = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
    with running([server, f"--config-file={config}"], tmp_path / "clickhouse.log"):
        base = f"http://127.0.0.1:{http_port}"
        wait_until(
            lambda: httpx.get(f"{base}/ping", timeout=1).status_code == 200,
            timeout=30,
            what="clickhouse-server answering /ping",
        )
        refused = httpx.get(base, params={"query": "SELECT 1"}, timeout=5)
        assert refused.status_code in (401, 403, 500) and "assword" in refused.text  # Password required

        # The services' URL, pointed at this server: both clients send its credentials.
        url = read(root, "app", "clickhouse-url").replace("clickhouse:8123", f"127.0.0.1:{http_port}")

        async def aggregator_select() -> str:
            client = build_client(url, database="default", timeout_s=5)
            try:
                return (await ClickHouse(client).execute("SELECT 1")).strip()
            finally:
                await client.aclose()

        assert asyncio.run(aggregator_select()) == "1"

        async def wrong_password() -> None:
            client = build_client(url.replace(password, "wrong"), database="default", timeout_s=5)
            try:
                await ClickHouse(client).execute("SELECT 1")
            finally:
                await client.aclose()

        with pytest.raises(ClickHouseError):
            asyncio.run(wrong_password())

        async def analytics_select() -> list[tuple[str, ...]]:
            client = analytics_clickhouse.build_client(url, database="default", timeout_s=5, pool_size=1)
            try:
                return await client.rows("SELECT 1")
            finally:
                await client.aclose()

        assert asyncio.run(analytics_select()) == [("1",)]
        # The container healthcheck's client: user and password from client.xml, none on argv.
        client = shutil.which("clickhouse-client") or "/usr/bin/clickhouse-client"
        argv = [
            client,
            "--port",
            str(tcp_port),
            "--config-file",
            str(root / "clickhouse" / "client.xml"),
            "--query",
            "SELECT 'ok'",
        ]
        answer = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
        assert answer.stdout.strip() == "ok"
