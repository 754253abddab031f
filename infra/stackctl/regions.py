"""`just regions up|down|status`: region B next to the running default stack (region A), and
MirrorMaker 2 between their Kafka clusters (docs/regions.md).

Region B is the minimum a region needs to redirect and count: its own Kafka (KRaft, one broker),
one redirect replica, one aggregator worker and an analytics process. Its stores are separate
databases on region A's servers (one machine): PostgreSQL `<db>_b`, ClickHouse `<db>_b`, Redis
database 1. MirrorMaker 2 (Kafka's own, dedicated mode) mirrors `links`, `clicks` and `keys` both
ways with the default replication policy: region A's `links` is `A.links` in region B, B's
`clicks` is `B.clicks` in A. Remote topics are never mirrored back (the policy knows them by
their prefix), so two-way flows make no loop.

Clicks are counted where they happen (each region's aggregator reads its own `clicks`). For the
global total each region also counts the other's mirrored clicks, with the same aggregator code,
into a database of their own (`<db>_b_from_a` in B, `<db>_from_b` in A); each region's analytics
answers its own lifetime counts and the sum (ANALYTICS_REGION, ANALYTICS_REMOTE_TOTALS). The
aggregator's event-id ledger makes MirrorMaker's at-least-once copy count exactly once.

Everything of this module runs under a supervisord of its own (.local/regions/), so region B
starts and stops without touching region A's programs, except region A's `analytics`, which
`up` restarts with its region settings and `down` restarts without them.
"""

import argparse
import asyncio
import os
import sys
import time

from pydantic_settings import BaseSettings, SettingsConfigDict

from stackctl import checks, first_start, migrate, supervisor, topics
from stackctl.config import StackSettings
from stackctl.first_start import say
from stackctl.render import TEMPLATES, _env, _program, _write, render_text, service_environment, supervisord_header


class RegionSettings(BaseSettings):
    """Region B's ports: the default ports + 700 (a port block no worktree uses); .env may move them."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    region_b_kafka_port: int = 9792
    region_b_kafka_controller_port: int = 9793
    region_b_redirect_port: int = 8711
    region_b_analytics_port: int = 8702
    # Aggregator web ports: region B's worker, B's counter of A's clicks, A's counter of B's clicks.
    region_b_aggregator_web_ports: str = "6761,6762,6763"
    region_b_redis_db: int = 1
    region_kafka_heap: str = "-Xms128m -Xmx256m"
    region_mirror_heap: str = "-Xms128m -Xmx256m"
    # Topics MirrorMaker 2 copies each way.
    region_mirror_topics: str = "links,clicks,keys"

    @property
    def aggregator_ports(self) -> list[int]:
        ports = [int(p) for p in self.region_b_aggregator_web_ports.split(",") if p.strip()]
        if len(ports) != 3:
            raise SystemExit("REGION_B_AGGREGATOR_WEB_PORTS takes three ports")
        return ports


def region_ports(r: RegionSettings) -> list[int]:
    return [
        r.region_b_kafka_port,
        r.region_b_kafka_controller_port,
        r.region_b_redirect_port,
        r.region_b_analytics_port,
        *r.aggregator_ports,
    ]


def regions_local(s: StackSettings) -> StackSettings:
    """The settings supervisord and the logs of the regions drill live under: .local/regions/."""
    return s.model_copy(update={"local_dir": s.local_dir / "regions"})


def _database(s: StackSettings, suffix: str) -> str:
    return f"{s.postgres_db}_{suffix}"


# The stores of each counting process: (PostgreSQL database, ClickHouse database) suffixes.
REGION_B_OWN = "b"
REGION_B_FROM_A = "b_from_a"
REGION_A_FROM_B = "from_b"


def kafka_b_bootstrap(r: RegionSettings) -> str:
    return f"127.0.0.1:{r.region_b_kafka_port}"


def mirror_properties(s: StackSettings, r: RegionSettings) -> str:
    topics_list = ", ".join(t.strip() for t in r.region_mirror_topics.split(",") if t.strip())
    return "\n".join(
        [
            "# Written by stackctl.regions (docs/regions.md). MirrorMaker 2, dedicated mode.",
            "clusters = A, B",
            f"A.bootstrap.servers = {s.kafka_bootstrap}",
            f"B.bootstrap.servers = {kafka_b_bootstrap(r)}",
            "A->B.enabled = true",
            f"A->B.topics = {topics_list}",
            "B->A.enabled = true",
            f"B->A.topics = {topics_list}",
            # The default policy: remote topics are `<source>.<topic>` and never mirrored back.
            "replication.policy.class = org.apache.kafka.connect.mirror.DefaultReplicationPolicy",
            "tasks.max = 1",
            # One broker per region: every topic MirrorMaker creates has one copy.
            "replication.factor = 1",
            "checkpoints.topic.replication.factor = 1",
            "heartbeats.topic.replication.factor = 1",
            "offset-syncs.topic.replication.factor = 1",
            "offset.storage.replication.factor = 1",
            "status.storage.replication.factor = 1",
            "config.storage.replication.factor = 1",
            "sync.topic.acls.enabled = false",
            # New topics in the source (and config changes) are picked up within seconds.
            "refresh.topics.interval.seconds = 5",
            "sync.topic.configs.interval.seconds = 30",
            # The drill asks a link to redirect in the other region within 2 s: short fetch waits
            # and a short linger (the defaults wait up to 500 ms on an idle topic).
            "A.consumer.fetch.max.wait.ms = 50",
            "B.consumer.fetch.max.wait.ms = 50",
            "A.producer.linger.ms = 5",
            "B.producer.linger.ms = 5",
            # Every connector plugin in the jars declares itself: no classpath scan at start.
            "plugin.discovery = service_load",
            "",
        ]
    )


def _service_env(s: StackSettings, r: RegionSettings, *, region_b: bool, **extra: str) -> str:
    env = service_environment(s)
    if region_b:
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=kafka_b_bootstrap(r),
            POSTGRES_DSN=s.dsn(s.postgres_port, _database(s, REGION_B_OWN)),
            CLICKHOUSE_DATABASE=_database(s, REGION_B_OWN),
            REDIS_URL=f"redis://127.0.0.1:{s.redis_port}/{r.region_b_redis_db}",
            REDIS_REPLICA_URL=f"redis://127.0.0.1:{s.redis_replica_port}/{r.region_b_redis_db}",
        )
    env.update(extra)
    return _env(env)


def supervisor_conf(s: StackSettings, r: RegionSettings) -> str:
    """supervisord of the drill: region B's programs, MirrorMaker 2 and region A's counter of B's clicks."""
    rs = regions_local(s)
    py = s.repo_root / ".venv" / "bin" / "python"
    kafka_libs = s.path("kafka", "libs")
    own, from_a, a_from_b = r.aggregator_ports
    parts = [
        *supervisord_header(rs, "`just regions up` (infra/stackctl/regions.py)"),
        _program(
            rs,
            "kafka-b",
            f"java {r.region_kafka_heap} -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true "
            f"-Dlog4j.configuration=file:{rs.path('kafka', 'log4j.properties')} "
            f"-cp {kafka_libs}/* kafka.Kafka {rs.path('kafka', 'server.properties')}",
            stopsignal="TERM",
            stopwaitsecs="60",
        ),
        _program(
            rs,
            "mirrormaker",
            f"java {r.region_mirror_heap} -XX:+UseG1GC -Djava.awt.headless=true "
            f"-Dlog4j.configuration=file:{rs.path('kafka', 'log4j.properties')} "
            f"-cp {s.path('kafka', 'mirror-libs')}/* org.apache.kafka.connect.mirror.MirrorMaker "
            f"{rs.path('mirrormaker', 'mm2.properties')}",
            stopsignal="TERM",
            stopwaitsecs="30",
        ),
        _program(
            rs,
            "redirect-b-1",
            f"{py} -m redirect serve",
            environment=_service_env(
                s,
                r,
                region_b=True,
                REDIRECT_PORT=str(r.region_b_redirect_port),
                REDIRECT_REPLICA_ID="1",
                TOPIC_LINKS_REMOTE="A.links",
            ),
        ),
    ]
    aggregators = [
        # (name, web port, region B's Kafka?, clicks topic, app id, stores suffix)
        ("aggregator-b-1", own, True, "clicks", "aggregator", REGION_B_OWN),
        ("aggregator-b-from-a", from_a, True, "A.clicks", "aggregator-from-a", REGION_B_FROM_A),
        ("aggregator-a-from-b", a_from_b, False, "B.clicks", "aggregator-from-b", REGION_A_FROM_B),
    ]
    for name, port, in_b, clicks_topic, app_id, suffix in aggregators:
        parts.append(
            _program(
                rs,
                name,
                f"{py} -m aggregator worker",
                environment=_service_env(
                    s,
                    r,
                    region_b=in_b,
                    POSTGRES_DSN=s.dsn(s.postgres_port, _database(s, suffix)),
                    CLICKHOUSE_DATABASE=_database(s, suffix),
                    TOPIC_CLICKS=clicks_topic,
                    TOPIC_LINKS_REMOTE="A.links" if in_b else "",
                    AGGREGATOR_APP_ID=app_id,
                    AGGREGATOR_WEB_PORT=str(port),
                    AGGREGATOR_WORKER_ID="1",
                    AGGREGATOR_DATA_DIR=str(rs.path(name)),
                ),
            )
        )
    parts.append(
        _program(
            rs,
            "analytics-b",
            f"{py} -m analytics serve",
            environment=_service_env(
                s,
                r,
                region_b=True,
                ANALYTICS_PORT=str(r.region_b_analytics_port),
                TOPIC_KEYS="A.keys",  # API keys are issued in region A (docs/regions.md)
                ANALYTICS_REGION="B",
                ANALYTICS_REMOTE_TOTALS=f"A={s.dsn(s.postgres_port, _database(s, REGION_B_FROM_A))}",
            ),
        )
    )
    return "\n".join(parts)


REGION_B_PROGRAMS = ("redirect-b-1", "aggregator-b-1", "aggregator-b-from-a", "aggregator-a-from-b", "analytics-b")


def region_a_analytics_env(s: StackSettings) -> dict[str, str]:
    """What region A's `analytics` gets while the drill runs: its region name and B's totals."""
    return {
        "ANALYTICS_REGION": "A",
        "ANALYTICS_REMOTE_TOTALS": f"B={s.dsn(s.postgres_port, _database(s, REGION_A_FROM_B))}",
    }


def ensure_mirror_libs(s: StackSettings) -> None:
    """MirrorMaker 2's jars (infra/kafka/mirror/pom.xml: connect-mirror and its runtime) from Maven."""
    first_start.fetch_jars(
        s.repo_root / "infra" / "kafka" / "mirror" / "pom.xml",
        s.path("kafka", "mirror-libs"),
        present="connect-mirror-*.jar",
        what="MirrorMaker 2's jars",
    )


def render(s: StackSettings, r: RegionSettings) -> None:
    rs = regions_local(s)
    values: dict[str, object] = {
        "kafka_port": r.region_b_kafka_port,
        "kafka_controller_port": r.region_b_kafka_controller_port,
        "kafka_data_dir": rs.path("kafka", "data"),
        "log_dir": rs.log_dir,
    }
    for template, target in [
        ("kafka-server.properties", rs.path("kafka", "server.properties")),
        ("kafka-log4j.properties", rs.path("kafka", "log4j.properties")),
    ]:
        _write(target, render_text((TEMPLATES / template).read_text(), values))
    _write(rs.path("mirrormaker", "mm2.properties"), mirror_properties(s, r))
    for sub in ("logs", "run", "kafka/data"):
        rs.path(*sub.split("/")).mkdir(parents=True, exist_ok=True)
    _write(rs.supervisor_conf, supervisor_conf(s, r))


def ensure_kafka_b_storage(s: StackSettings) -> None:
    rs = regions_local(s)
    if (rs.path("kafka", "data") / "meta.properties").exists():
        return
    say("formatting region B's Kafka KRaft storage")
    cluster_id = first_start.kafka_storage_tool(s, "random-uuid").splitlines()[-1]
    first_start.kafka_storage_tool(
        s, "format", "-t", cluster_id, "-c", str(rs.path("kafka", "server.properties")), "--ignore-formatted"
    )


async def ensure_stores(s: StackSettings) -> None:
    """The PostgreSQL and ClickHouse databases of the three counting processes, with the schema."""
    for suffix in (REGION_B_OWN, REGION_B_FROM_A, REGION_A_FROM_B):
        store = s.model_copy(update={"postgres_db": _database(s, suffix), "clickhouse_database": _database(s, suffix)})
        await first_start.ensure_postgres_database(store)
        await migrate.migrate_postgres(store)
        await migrate.migrate_clickhouse(store)


async def topic_exists(bootstrap_servers: str, name: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    await admin.start()
    try:
        return name in set(await admin.list_topics())
    finally:
        await admin.close()


def wait_for(what: str, probe: "checks.Probe", *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        error = asyncio.run(checks.run_probes({what: probe}, timeout=5.0))[what]
        if error is None:
            say(f"{what}: ready")
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"[regions] {what} not ready after {timeout:.0f}s: {error}")
        time.sleep(0.5)


def _topics_probe(bootstrap_servers: str, *names: str) -> "checks.Probe":
    async def probe() -> None:
        for name in names:
            if not await topic_exists(bootstrap_servers, name):
                raise RuntimeError(f"topic {name} not mirrored yet")

    return probe


def _restart_region_a_analytics(s: StackSettings, env: dict[str, str]) -> None:
    """Region A's `analytics`, restarted with (or without) its region settings: the stack's own
    restart, which renders the configuration from this environment first."""
    from stackctl.__main__ import restart

    for name in ("ANALYTICS_REGION", "ANALYTICS_REMOTE_TOTALS"):
        os.environ.pop(name, None)
    os.environ.update(env)
    restart(s, ["analytics"])


def up(s: StackSettings, r: RegionSettings) -> None:
    if supervisor.supervisord_pid(s) is None:
        raise SystemExit("[regions] region A (the default stack) is not running: `just up` first")
    rs = regions_local(s)
    if supervisor.supervisord_pid(rs) is None:
        busy = [port for port in region_ports(r) if checks.port_in_use(port)]
        if busy:
            raise SystemExit(
                f"[regions] ports in use by processes this drill does not run: {busy} (REGION_B_* in .env)"
            )
    first_start.ensure_kafka_libs(s)
    ensure_mirror_libs(s)
    render(s, r)
    ensure_kafka_b_storage(s)
    asyncio.run(ensure_stores(s))
    supervisor.ensure_running(rs)
    supervisor.start(rs, "kafka-b")
    kafka_b = s.model_copy(update={"kafka_port": r.region_b_kafka_port})
    wait_for("kafka-b", lambda: checks.kafka_broker(kafka_b), timeout=120)
    asyncio.run(topics.ensure_topics(kafka_b_bootstrap(r), replication_factor=1))
    supervisor.start(rs, "mirrormaker")
    wait_for(
        "mirrormaker: A.links, A.clicks, A.keys in region B",
        _topics_probe(kafka_b_bootstrap(r), "A.links", "A.clicks", "A.keys"),
        timeout=600,  # MirrorMaker 2 takes minutes to start on a busy machine
    )
    wait_for(
        "mirrormaker: B.links, B.clicks in region A",
        _topics_probe(s.kafka_bootstrap, "B.links", "B.clicks"),
        timeout=300,
    )
    say("starting region B: " + ", ".join(REGION_B_PROGRAMS))
    supervisor.start(rs, *REGION_B_PROGRAMS)
    probes: dict[str, checks.Probe] = {
        "redirect-b-1": lambda: checks._http_ok(f"http://127.0.0.1:{r.region_b_redirect_port}/readyz"),
        "analytics-b": lambda: checks._http_ok(f"http://127.0.0.1:{r.region_b_analytics_port}/readyz"),
    }
    for name, port in zip(REGION_B_PROGRAMS[1:4], r.aggregator_ports, strict=True):
        probes[name] = lambda port=port: checks._http_ok(f"http://127.0.0.1:{port}/readyz")  # type: ignore[misc]
    for name, probe in probes.items():
        wait_for(name, probe, timeout=300)
    _restart_region_a_analytics(s, region_a_analytics_env(s))
    wait_for(
        "analytics (region A)", lambda: checks._http_ok(f"http://127.0.0.1:{s.analytics_port}/readyz"), timeout=300
    )
    say(
        f"region B is up: redirect http://127.0.0.1:{r.region_b_redirect_port}/<code>, "
        f"analytics http://127.0.0.1:{r.region_b_analytics_port} (region A: the default stack)"
    )


def down(s: StackSettings) -> None:
    rs = regions_local(s)
    if supervisor.supervisord_pid(rs) is None:
        say("region B is not running")
    else:
        say("stopping region B, MirrorMaker 2 and the mirrored-click counter of region A")
        pids = [int(p) for p in supervisor.ctl(rs, "pid", "all").stdout.split() if p.isdigit() and int(p) > 0]
        supervisor.shutdown(rs)
        deadline = time.monotonic() + 30
        while (alive := [p for p in pids if supervisor._alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.3)
        if alive:
            raise SystemExit(f"[regions] still running after down: pids {alive}")
    if supervisor.supervisord_pid(s) is not None:
        _restart_region_a_analytics(s, {})
    say("region B is down")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackctl.regions", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    s = StackSettings()
    if s.is_cluster:
        raise SystemExit("[regions] the drill runs next to the default stack, not the cluster profile")
    r = RegionSettings()
    if args.command == "up":
        up(s, r)
    elif args.command == "down":
        down(s)
    else:
        result = supervisor.ctl(regions_local(s), "status")
        print(result.stdout or "region B is not running", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
