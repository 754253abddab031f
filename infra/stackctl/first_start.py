"""First-start initialisation of the stack's data: idempotent, each step says what it does."""

import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from stackctl.config import StackSettings, read_secret
from stackctl.render import postgres_bin_dir


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def _ensure_secret(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """The secret stored at `path`, generated (owner-only file) when there is none; and whether
    it was generated now."""
    existing = read_secret(path)
    if existing:
        return existing, False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate()
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret, True


def ensure_api_key(s: StackSettings) -> str:
    key, generated = _ensure_secret(s.api_key_file, lambda: "sk_local_" + secrets.token_urlsafe(32))
    if generated:
        say(f"generated the local API key: {s.api_key_file} (use: Authorization: Bearer $(cat {s.api_key_file}))")
    return key


def ensure_visitor_key_secret(s: StackSettings) -> str:
    """The secret all redirect replicas share for anonymised visitor keys (generated once)."""
    secret, generated = _ensure_secret(s.visitor_key_secret_file, lambda: secrets.token_urlsafe(32))
    if generated:
        say(f"generated the visitor-key secret: {s.visitor_key_secret_file}")
    return secret


def fetch_jars(pom: Path, libs: Path, *, present: str, what: str) -> None:
    """The runtime jars of a Maven project (`pom`) copied into `libs`, unless a jar matching
    `present` is there already."""
    if any(libs.glob(present)):
        return
    say(f"fetching {what} with Maven ({pom})")
    libs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        check=True,
    )


def ensure_kafka_libs(s: StackSettings) -> None:
    fetch_jars(
        s.repo_root / "infra" / "kafka" / "pom.xml",
        s.path("kafka", "libs"),
        present="kafka_2.13-*.jar",
        what="Kafka jars",
    )


def ensure_kafka_storage(s: StackSettings) -> None:
    data = s.path("kafka", "data")
    if (data / "meta.properties").exists():
        return
    ensure_kafka_libs(s)
    say("formatting Kafka KRaft storage")
    data.mkdir(parents=True, exist_ok=True)
    cluster_id = kafka_storage_tool(s, "random-uuid").splitlines()[-1]
    kafka_storage_tool(
        s, "format", "-t", cluster_id, "-c", str(s.path("kafka", "server.properties")), "--ignore-formatted"
    )


def kafka_storage_tool(s: StackSettings, *args: str) -> str:
    """Run Kafka's StorageTool (from the Maven-fetched jars) with `args`; its standard output."""
    cp = f"{s.path('kafka', 'libs')}/*"
    log = f"-Dlog4j.configuration=file:{s.path('kafka', 'log4j.properties')}"
    done = subprocess.run(
        ["java", log, "-cp", cp, "kafka.tools.StorageTool", *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def run_as_postgres(cmd: list[str]) -> None:
    """Run a PostgreSQL tool as the postgres account when we are root (it refuses root)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _check_traversable_by(path: Path, user: str) -> None:
    pw = pwd.getpwnam(user)
    for parent in [path, *path.parents]:
        if not parent.exists():
            continue
        st = parent.stat()
        if st.st_uid == pw.pw_uid:
            continue
        if st.st_gid == pw.pw_gid and st.st_mode & 0o010:  # e.g. .local/: root:postgres 0710
            continue
        if not st.st_mode & 0o001:
            raise RuntimeError(
                f"{parent} is not traversable by the '{user}' user that PostgreSQL runs as; "
                f"move the checkout or set LOCAL_DIR to a path it can reach"
            )


def ensure_postgres_cluster(s: StackSettings) -> None:
    data = s.path("postgres", "data")
    run = s.path("postgres", "run")
    is_root = os.geteuid() == 0
    for d in (s.path("postgres"), data, run):
        d.mkdir(parents=True, exist_ok=True)
        if is_root:
            shutil.chown(d, "postgres", "postgres")
    data.chmod(0o700)
    if (data / "PG_VERSION").exists():
        return
    say("initialising the PostgreSQL cluster")
    if is_root:
        _check_traversable_by(data, "postgres")
    cmd = [
        str(postgres_bin_dir() / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    ]
    run_as_postgres(cmd)


async def ensure_postgres_database(s: StackSettings) -> None:
    """Create the application role and database (superuser over the local socket)."""
    import asyncpg

    conn = await asyncpg.connect(
        host=str(s.path("postgres", "run")), port=s.postgres_port, user="postgres", database="postgres"
    )
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", s.postgres_user)
        if not exists:
            say(f"creating PostgreSQL role {s.postgres_user}")
            password = s.postgres_password.replace("'", "''")
            await conn.execute(f"CREATE ROLE \"{s.postgres_user}\" LOGIN PASSWORD '{password}'")
        db = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", s.postgres_db)
        if not db:
            say(f"creating PostgreSQL database {s.postgres_db}")
            await conn.execute(f'CREATE DATABASE "{s.postgres_db}" OWNER "{s.postgres_user}"')
    finally:
        await conn.close()
